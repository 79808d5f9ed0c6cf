"""Order per resource, at its edges: ties between versions, versions of both kinds, sequence numbers
of different lengths."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from tests.fakes import FakeFailedRecords, FakeSecrets, FakeStateStore, FakeVercel, make_sync_service, sync_one
from vercel_sync.changes import SourceChange, SourcePosition
from vercel_sync.sync.service import SyncService
from vercel_sync.sync_state import partner_version, sequence_version

INSTALLATION = "icfg_order"


def record(name: str, **fields: Any) -> dict[str, Any]:
    return {
        "integrationConfigurationId": INSTALLATION,
        "resourceId": "r1",
        "productId": "prod",
        "name": name,
        "status": "active",
        **fields,
    }


def sqs(item: dict[str, Any], message_id: str) -> SourceChange:
    return SourceChange(SourcePosition("sqs", "arn:aws:sqs:us-east-1:1:q", message_id), item)


def stream(item: dict[str, Any], sequence_number: str) -> SourceChange:
    position = SourcePosition(
        "dynamodb-stream", "arn:aws:dynamodb:us-east-1:1:table/t/stream/x", sequence_number, event_name="MODIFY"
    )
    return SourceChange(position, item)


def make_service(vercel: FakeVercel, state: FakeStateStore | None = None) -> SyncService:
    return make_sync_service(
        vercel=vercel, secrets=FakeSecrets(), failed_records=FakeFailedRecords(), state_store=state, max_concurrency=1
    )


# ------------------------------------------------------------------ coalescing ties


@pytest.mark.parametrize(
    "versions",
    [
        (5, 5),
        (Decimal("5"), Decimal("5.000")),  # equal numbers written differently
        ("2026-11-26T10:00:00Z", "2026-11-26T10:00:00+00:00"),  # one moment, two spellings
    ],
)
def test_equal_versions_the_later_change_in_source_order_wins(versions: tuple[Any, Any]) -> None:
    vercel = FakeVercel()
    first, later = versions
    changes = [sqs(record("first", version=first), "a"), sqs(record("later", version=later), "b")]

    results = make_service(vercel).sync_batch(changes)

    assert [r.outcome for r in results] == ["coalesced", "imported"]
    assert [c.body["name"] for c in vercel.calls] == ["later"]


def test_a_tie_for_the_newest_version_goes_to_the_later_of_the_tied_changes() -> None:
    vercel = FakeVercel()
    changes = [
        sqs(record("v7 first", version=7), "a"),
        sqs(record("v5", version=5), "b"),
        sqs(record("v7 later", version=7), "c"),
        sqs(record("v6", version=6), "d"),
    ]

    results = make_service(vercel).sync_batch(changes)

    assert [r.outcome for r in results] == ["coalesced", "coalesced", "imported", "coalesced"]
    assert [c.body["name"] for c in vercel.calls] == ["v7 later"]


def test_equal_versions_in_a_stream_batch_the_later_sequence_number_wins() -> None:
    vercel = FakeVercel()
    changes = [stream(record("first", version=3), "100"), stream(record("later", version=3), "200")]

    make_service(vercel).sync_batch(changes)

    assert [c.body["name"] for c in vercel.calls] == ["later"]


def test_when_some_changes_carry_no_version_the_last_in_source_order_wins() -> None:
    """Versions decide only when every change has one; else a bigger version earlier in the batch
    would beat a change the partner made after it."""
    vercel = FakeVercel()
    changes = [sqs(record("versioned", version=9), "a"), sqs(record("unversioned"), "b")]

    results = make_service(vercel).sync_batch(changes)

    assert [r.outcome for r in results] == ["coalesced", "imported"]
    assert [c.body["name"] for c in vercel.calls] == ["unversioned"]


# ------------------------------------------------------------------ the version guard's two kinds


def test_versions_of_the_two_kinds_are_never_compared() -> None:
    sequence = sequence_version("900")
    assert sequence is not None
    partner = partner_version(Decimal(1))

    assert partner.newer_than(sequence)  # a partner version is only ever weighed against a partner one
    assert sequence.newer_than(partner)
    assert partner.newer_than(None)
    assert not partner.newer_than(partner_version(Decimal(1)))
    assert not partner_version(Decimal(1)).newer_than(partner_version(Decimal(2)))


def test_a_stream_guarded_by_sequence_numbers_then_by_versions_keeps_each_guard() -> None:
    vercel = FakeVercel()
    service = make_service(vercel, FakeStateStore())

    assert sync_one(service, stream(record("seq 900"), "900")) == "imported"
    # The partner starts setting version: 1 is not weighed against sequence number 900.
    assert sync_one(service, stream(record("v1", version=1), "901")) == "imported"
    assert sync_one(service, stream(record("v1 again", version=1), "902")) == "stale"
    # A redelivered change without a version is still guarded by its sequence number.
    assert sync_one(service, stream(record("seq 800"), "800")) == "stale"
    assert [c.body["name"] for c in vercel.calls] == ["seq 900", "v1"]


# ------------------------------------------------------------------ sequence numbers


@pytest.mark.parametrize(
    ("older", "newer"),
    [
        ("99", "100"),
        ("9" * 21, "1" + "0" * 21),  # DynamoDB's numbers are 21 to 40 digits, and grow in length
        ("9" * 21, "1" + "0" * 39),  # the shortest and the longest
    ],
)
def test_a_longer_sequence_number_is_newer(older: str, newer: str) -> None:
    older_key, newer_key = sequence_version(older), sequence_version(newer)
    assert older_key is not None
    assert newer_key is not None
    assert newer_key.newer_than(older_key)
    assert not older_key.newer_than(newer_key)


def test_a_stream_record_with_a_longer_sequence_number_is_not_taken_as_stale() -> None:
    vercel = FakeVercel()
    service = make_service(vercel, FakeStateStore())

    assert sync_one(service, stream(record("at 99"), "99")) == "imported"
    assert sync_one(service, stream(record("at 100"), "100")) == "imported"
    assert sync_one(service, stream(record("at 99 redelivered"), "99")) == "stale"
    assert [c.body["name"] for c in vercel.calls] == ["at 99", "at 100"]
