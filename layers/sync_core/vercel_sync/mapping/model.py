"""The partner mapping document (``schemaVersion: 1``) as pydantic models: where each field of the
partner record comes from, which items are resources, how a removal and the version are read.
docs/configuration.md, "The partner mapping"."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    StrictBool,
    StrictStr,
    Tag,
    field_validator,
    model_validator,
)

from vercel_sync.payload import RESOURCE_STATUSES, BillingPlan, ResourceStatus

_STRICT = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
PATH_PATTERN = r"^[^.]+(\.[^.]+)*$"
Path = Annotated[StrictStr, Field(min_length=1, pattern=PATH_PATTERN)]
PLACEHOLDER = re.compile(r"\{([^{}]+)\}")  # a template's ``{attribute.path}``


class Condition(BaseModel):
    """A test of one attribute: ``equals`` a value, ``startsWith`` a prefix, or ``present`` (true or false)."""

    model_config = _STRICT

    attribute: Path
    equals: Any = None
    starts_with: StrictStr | None = Field(default=None, alias="startsWith")
    present: StrictBool | None = None

    @model_validator(mode="after")
    def _one_test(self) -> Condition:
        tests = {"equals", "starts_with", "present"} & self.model_fields_set
        if len(tests) != 1:
            raise ValueError("give exactly one of: equals, startsWith, present")
        return self


class Flag(BaseModel):
    """A boolean attribute marking a removal when true; any other type there is an invalid record."""

    model_config = _STRICT

    flag: Path


class Typed(BaseModel):
    """A metadata entry: an attribute, converted to one of the types Vercel's metadata holds."""

    model_config = _STRICT

    attribute: Path
    type: Literal["string", "number", "boolean"] | None = None


def _form(value: Any) -> str:
    """Which form an entry of a list or map is (so an error names that form's keys only)."""
    if isinstance(value, dict):
        return "flag" if "flag" in value else "entry"
    return "path"


# A metadata entry: an attribute path, or {attribute, type}.
MetadataEntry = Annotated[Annotated[Path, Tag("path")] | Annotated[Typed, Tag("entry")], Discriminator(_form)]
# A removal form: a condition, or {flag}.
RemovalForm = Annotated[Annotated[Condition, Tag("entry")] | Annotated[Flag, Tag("flag")], Discriminator(_form)]
# The tags above, as they appear in an error's location (not keys of the document).
FORM_TAGS = frozenset({"path", "entry", "flag"})


class Source(BaseModel):
    """Where one field comes from: an ``attribute`` path or a ``constant``."""

    model_config = _STRICT

    attribute: Path | None = None
    constant: Any = None

    @model_validator(mode="after")
    def _one_origin(self) -> Source:
        origins = {"attribute", "constant", "template", "attributes"} & self.model_fields_set
        if len(origins) != 1:
            allowed = [
                name for name in ("attribute", "constant", "template", "attributes") if name in type(self).model_fields
            ]
            raise ValueError(f"give exactly one of: {', '.join(allowed)}")
        lookup = getattr(self, "words", None) or getattr(self, "plans", None)
        if lookup is not None and "attribute" not in origins:
            raise ValueError("words and plans look up an attribute's value: give attribute")
        return self


class NameSource(Source):
    """``name`` can also be a ``template`` over attributes: ``"{attrs.region}/{displayName}"``."""

    template: Annotated[StrictStr, Field(min_length=1)] | None = None

    @field_validator("template")
    @classmethod
    def _placeholders_are_paths(cls, template: str | None) -> str | None:
        if template is not None and any(not re.match(PATH_PATTERN, p) for p in PLACEHOLDER.findall(template)):
            raise ValueError("a template's placeholder must be an attribute path: {name} or {a.b}, no empty segment")
        return template


class StatusSource(Source):
    """``status``, with ``words``: Vercel status -> the partner's words meaning it."""

    words: dict[ResourceStatus, list[StrictStr]] | None = None

    @field_validator("words")
    @classmethod
    def _one_status_per_word(cls, words: dict[str, list[str]] | None) -> dict[str, list[str]] | None:
        """Words are read case-insensitively, so each, folded, means one status; Vercel's own mean themselves."""
        meaning: dict[str, str] = {}
        for status, given in (words or {}).items():
            for word in given:
                folded = word.strip().lower()
                if not folded:
                    raise ValueError(f"an empty word under {status}")
                if folded in RESOURCE_STATUSES and folded != status:
                    raise ValueError(f"{word!r} is Vercel's own status {folded}: it cannot mean {status}")
                if meaning.setdefault(folded, status) != status:
                    raise ValueError(f"{word!r} means {meaning[folded]} and {status}")
        return words


class PlanSource(Source):
    """``billingPlan``, with ``plans``: the partner's plan id -> the whole billing plan object."""

    plans: dict[StrictStr, BillingPlan] | None = None


class MetadataSource(Source):
    """``metadata``, also from ``attributes``: metadata key -> attribute path, or ``{attribute, type}``."""

    attributes: dict[Annotated[StrictStr, Field(min_length=1)], MetadataEntry] | None = None


class Fields(BaseModel):
    """The partner record's fields, each from its source; the first five are required."""

    model_config = _STRICT

    integration_configuration_id: Source = Field(alias="integrationConfigurationId")
    resource_id: Source = Field(alias="resourceId")
    product_id: Source = Field(alias="productId")
    name: NameSource
    status: StatusSource
    ownership: Source | None = None
    metadata: MetadataSource | None = None
    billing_plan: PlanSource | None = Field(default=None, alias="billingPlan")
    notification: Source | None = None
    extras: Source | None = None
    secrets_arn: Source | None = Field(default=None, alias="secretsArn")
    secrets_prefix: Source | None = Field(default=None, alias="secretsPrefix")

    def sources(self) -> dict[str, Source]:
        """Each mapped field's source, by the partner record's name for it."""
        found = {}
        for name, field in type(self).model_fields.items():
            source = getattr(self, name)
            if source is not None:
                found[field.alias or name] = source
        return found


class Version(BaseModel):
    """The version: an attribute holding a number or an ISO-8601 time, or the stream's order."""

    model_config = _STRICT

    attribute: Path | None = None
    stream_order: Literal[True] | None = Field(default=None, alias="streamOrder")

    @model_validator(mode="after")
    def _one_origin(self) -> Version:
        if (self.attribute is None) == (self.stream_order is None):
            raise ValueError("give exactly one of: attribute, streamOrder")
        return self


class MappingDocument(BaseModel):
    model_config = _STRICT

    schema_version: Literal[1] = Field(alias="schemaVersion")
    resources: list[Condition] = []
    fields: Fields
    version: Version = Version(streamOrder=True)
    removal: list[RemovalForm] = []
