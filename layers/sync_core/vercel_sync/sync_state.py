"""What the sync-state table remembers per resource: the version guard, change suppression and
claims (docs/architecture.md, "Sync state"). Pure."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Context, Decimal
from typing import Any, Literal

from vercel_sync.errors import InvalidRecordError

VersionKind = Literal["partner", "sequence"]
# The status recorded for a resource deleted at Vercel (REMOVAL_MODE=delete), beside Vercel's own words.
DELETED_STATUS = "deleted"
# A resource recorded with one of these is gone from Vercel's view: rotation pushes nothing to it.
REMOVED_STATUSES = frozenset({"uninstalled", DELETED_STATUS})
MAX_VERSION_DIGITS = 38  # a DynamoDB number's
SEQUENCE_WIDTH = 40  # stream sequence numbers (21 to 40 digits) padded to compare as numbers
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EXACT = Context(prec=MAX_VERSION_DIGITS + 12)  # normalising never rounds a version DynamoDB holds


@dataclass(frozen=True, slots=True)
class VersionKey:
    """A comparable version: ``value`` is a Decimal (partner) or a padded digit string (sequence)."""

    kind: VersionKind
    value: Any

    def newer_than(self, other: VersionKey | None) -> bool:
        return other is None or other.kind != self.kind or self.value > other.value


def is_stale(version: VersionKey, applied: VersionKey | None, *, repair: bool = False) -> bool:
    """The version guard: a change not newer than the version applied is stale; a repair only when older."""
    if repair:
        return applied is not None and applied.kind == version.kind and applied.value > version.value
    return not version.newer_than(applied)


def partner_version(version: Decimal | datetime) -> VersionKey:
    """The record's ``version`` as a key; a time counts as its epoch seconds (microseconds kept)."""
    if isinstance(version, datetime):
        delta = version - _EPOCH
        number = Decimal(delta.days * 86_400 + delta.seconds) + Decimal(delta.microseconds).scaleb(-6)
    else:
        number = version
    if not number.is_finite():
        raise InvalidRecordError("version: must be a finite number")
    exact = _EXACT.normalize(number)  # the default context (28 digits) would round
    if len(exact.as_tuple().digits) > MAX_VERSION_DIGITS or abs(exact.adjusted()) > 120:
        raise InvalidRecordError(f"version: must have at most {MAX_VERSION_DIGITS} significant digits")
    return VersionKey("partner", exact)


def stored_partner_version(text: str) -> VersionKey:
    """A partner version from the table's text."""
    return VersionKey("partner", _EXACT.normalize(Decimal(text)))


def sequence_version(sequence_number: str) -> VersionKey | None:
    """A stream sequence number as a key (``None`` if it is not one)."""
    if not sequence_number.isdigit() or not sequence_number.isascii() or len(sequence_number) > SEQUENCE_WIDTH:
        return None
    return VersionKey("sequence", sequence_number.zfill(SEQUENCE_WIDTH))


def payload_digest(body: Mapping[str, Any], *, key: str) -> str:
    """HMAC-SHA256 of the body's canonical JSON (sorted keys, no spaces), keyed by ``key``."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hmac.new(key.encode("utf-8"), canonical.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class ResourceState:
    """The table's memory of one resource (what a claim returns)."""

    partner_version: VersionKey | None = None
    sequence_version: VersionKey | None = None
    payload_digest: str | None = None

    def applied(self, kind: VersionKind) -> VersionKey | None:
        return self.partner_version if kind == "partner" else self.sequence_version


@dataclass(frozen=True)
class Claim:
    """Claiming a resource for one call: ``claimed`` (``state``: what the table held), ``stale``, or
    ``busy`` (another call is in flight until ``busy_until``, epoch seconds)."""

    status: Literal["claimed", "stale", "busy"]
    claim_id: str | None = None
    state: ResourceState = ResourceState()
    busy_until: float | None = None


@dataclass(frozen=True)
class ImportedState:
    """What is recorded once Vercel has accepted an import (or the payload was unchanged)."""

    installation_id: str
    resource_id: str
    version: VersionKey | None
    payload_digest: str
    product_id: str
    status: str
    secret_name: str | None
    secrets_prefix: str | None
    imported_at: datetime
