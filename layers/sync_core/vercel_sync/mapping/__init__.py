"""The partner mapping: a YAML document saying where each partner-record field comes from in the
provider's own items (docs/configuration.md, "The partner mapping"). Pure core: no AWS, no HTTP."""

from vercel_sync.mapping.engine import NOT_A_RESOURCE, NotAResource, NotAResourceError, PartnerMapping
from vercel_sync.mapping.load import (
    DEFAULT_MAPPING_FILE,
    MappingError,
    default_mapping,
    parse_mapping,
    read_mapping_file,
)

__all__ = [
    "DEFAULT_MAPPING_FILE",
    "NOT_A_RESOURCE",
    "MappingError",
    "NotAResource",
    "NotAResourceError",
    "PartnerMapping",
    "default_mapping",
    "parse_mapping",
    "read_mapping_file",
]
