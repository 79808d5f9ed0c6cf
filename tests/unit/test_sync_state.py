"""What the sync-state table remembers (``sync_state.py``): the payload digest and the versions it
can store."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.fakes import ROTATED_TOKEN, TOKEN
from vercel_sync.errors import InvalidRecordError
from vercel_sync.sync_state import partner_version, payload_digest, sequence_version


def test_the_digest_covers_secret_values_and_is_keyed_by_the_token() -> None:
    body = {"name": "x", "secrets": [{"name": "A", "value": "one"}]}
    changed = {"name": "x", "secrets": [{"name": "A", "value": "two"}]}

    assert payload_digest(body, key=TOKEN) != payload_digest(changed, key=TOKEN)
    assert payload_digest(body, key=TOKEN) != payload_digest(body, key=ROTATED_TOKEN)
    assert payload_digest(body, key=TOKEN) == payload_digest(dict(reversed(body.items())), key=TOKEN)
    assert "one" not in payload_digest(body, key=TOKEN)


def test_versions_are_checked_for_what_the_table_can_store() -> None:
    assert partner_version(Decimal("1e5")).value == Decimal("1e5")
    assert partner_version(Decimal("1" * 38)).value == Decimal("1" * 38)  # kept exact, not rounded
    with pytest.raises(InvalidRecordError, match="38 significant digits"):
        partner_version(Decimal("1" * 39))
    assert sequence_version("12345") is not None
    assert sequence_version("not-a-number") is None
    key = sequence_version("9" * 21)
    assert key is not None
    assert key.newer_than(sequence_version("1" * 20))


def test_a_version_whose_exponent_the_table_cannot_hold_is_refused() -> None:
    assert partner_version(Decimal("1e120")).value == Decimal("1e120")
    assert partner_version(Decimal("1e-120")).value == Decimal("1e-120")
    for too_far in ("1e121", "1e-121"):
        with pytest.raises(InvalidRecordError):
            partner_version(Decimal(too_far))
