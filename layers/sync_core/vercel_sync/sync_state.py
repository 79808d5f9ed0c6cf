"""What the sync-state table remembers per resource, and the rules that use it. Pure.

- **Version guard.** A change carries a version: the record's own ``version`` (a number, or an
  ISO-8601 time taken as epoch seconds), or, for a stream record without one, its sequence
  number (DynamoDB orders an item's changes by it). The table keeps the newest applied of each
  kind; a change whose version is older than or equal to it is skipped as stale. The two kinds
  are never compared with each other (a partner that sets ``version`` on some changes only is
  guarded on those).
- **Change suppression.** The table keeps a digest of the last payload imported (never the
  payload): an import whose digest matches costs no call. The digest is an HMAC keyed by the
  installation token, so a reader of the table cannot test guesses of a secret value against
  it; a rotated token makes every digest differ once (one re-import per resource).
- **Claims.** While a call for a resource is in flight its item holds a short lease, so two
  concurrent invocations (a standard queue) never call Vercel for one resource at once and the
  newer version is the one that lands last.
"""

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
# DynamoDB numbers keep 38 significant digits; a partner version must fit in one.
MAX_VERSION_DIGITS = 38
# Stream sequence numbers are 21 to 40 digits: stored as text padded to this width, so they
# compare as numbers.
SEQUENCE_WIDTH = 40
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Wide enough that normalising never rounds a version DynamoDB can hold.
_EXACT = Context(prec=MAX_VERSION_DIGITS + 12)


@dataclass(frozen=True, slots=True)
class VersionKey:
    """A comparable version: ``value`` is a Decimal (partner) or a padded digit string (sequence)."""

    kind: VersionKind
    value: Any

    def newer_than(self, other: VersionKey | None) -> bool:
        return other is None or other.kind != self.kind or self.value > other.value


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
    """A partner version as the table holds it (a DynamoDB number's text)."""
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
    """The outcome of claiming a resource for one call.

    ``status``: ``"claimed"`` (ours until ``lease_until``; ``state`` is what the table held),
    ``"stale"`` (a version at least as new is already applied: skip), ``"busy"`` (another
    invocation's call is in flight until ``busy_until``, epoch seconds).
    """

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
