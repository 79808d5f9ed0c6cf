"""A batch's plan (``sync/plan.py``): changes to one resource coalesced to the newest, by version or
else by source order, within a FIFO group only; invalid changes take no part."""

from __future__ import annotations

import pytest

from tests.builders import make_service, parsing_hits_a_bug_for, record_without_secret, sqs, stream
from tests.fakes import FakeFailedRecords, FakeVercel, vercel_unavailable
from vercel_sync.calls import RetryPolicy
from vercel_sync.changes import SourceChange, SourcePosition


def test_changes_to_one_resource_are_coalesced_to_the_newest_by_version() -> None:
    vercel = FakeVercel()
    service = make_service(vercel, max_concurrency=1)
    # Out of order on a standard queue: version 3 arrives before version 2.
    changes = [
        sqs(record_without_secret("r1", name="v1", version=1), "a"),
        sqs(record_without_secret("r1", name="v3", version=3), "b"),
        sqs(record_without_secret("r1", name="v2", version=2), "c"),
        sqs(record_without_secret("r2", name="only"), "d"),
    ]

    results = service.sync_batch(changes)

    assert [r.outcome for r in results] == ["coalesced", "imported", "coalesced", "imported"]
    assert [(c.resource_id, c.body["name"]) for c in vercel.calls] == [("r1", "v3"), ("r2", "only")]


def test_without_versions_the_last_change_in_source_order_wins() -> None:
    vercel = FakeVercel()
    service = make_service(vercel)
    changes = [stream(record_without_secret(name="first"), "100"), stream(record_without_secret(name="second"), "200")]

    service.sync_batch(changes)

    assert [c.body["name"] for c in vercel.calls] == ["second"]


def test_when_the_newest_fails_every_change_it_coalesced_is_reported_failed() -> None:
    vercel = FakeVercel(failing={"r1": vercel_unavailable(503)})
    service = make_service(vercel, retry_policy=RetryPolicy(max_calls=2))
    changes = [
        stream(record_without_secret(name="a"), "100"),
        stream(record_without_secret("r2"), "150"),
        stream(record_without_secret(name="b"), "200"),
    ]

    results = service.sync_batch(changes)

    assert [r.failed for r in results] == [True, False, True]
    assert len(vercel.calls) == 3  # r1 twice (one retry), r2 once


def test_invalid_changes_do_not_take_part_in_coalescing() -> None:
    vercel = FakeVercel()
    failed = FakeFailedRecords()
    service = make_service(vercel, failed=failed)
    changes = [sqs(record_without_secret(name="good"), "a"), sqs(record_without_secret(status="exploding"), "b")]

    results = service.sync_batch(changes)

    assert [r.outcome for r in results] == ["imported", "parked"]
    assert [c.body["name"] for c in vercel.calls] == ["good"]
    assert failed.reasons() == ["invalid_record"]


def test_a_resource_is_coalesced_within_its_fifo_group_only() -> None:
    vercel = FakeVercel()
    service = make_service(vercel, max_concurrency=1)
    position = SourcePosition
    changes = [
        SourceChange(
            position("sqs", "arn:q.fifo", "m0", message_group_id="g1"), record_without_secret("a", name="one")
        ),
        SourceChange(
            position("sqs", "arn:q.fifo", "m1", message_group_id="g2"), record_without_secret("a", name="two")
        ),
    ]

    results = service.sync_batch(changes)

    assert [r.outcome for r in results] == ["imported", "imported"]
    assert [c.body["name"] for c in vercel.calls] == ["one", "two"]


def test_a_stream_batch_with_a_versioned_change_then_its_remove_coalesces_to_the_remove() -> None:
    """The REMOVE is ordered by its sequence number, the MODIFY by its version: two kinds, never
    weighed against each other, so the last in the shard wins."""
    vercel = FakeVercel()
    service = make_service(vercel, max_concurrency=1)
    changes = [
        stream(record_without_secret(version=7), "100"),
        stream(record_without_secret(version=7), "200", removed=True),
    ]

    results = service.sync_batch(changes)

    assert [r.outcome for r in results] == ["coalesced", "imported"]
    assert [c.body["status"] for c in vercel.calls] == ["uninstalled"]


def fifo(item: dict[str, object], message_id: str, group: str) -> SourceChange:
    return SourceChange(SourcePosition("sqs", "arn:q.fifo", message_id, message_group_id=group), item)


def test_a_fifo_group_stops_at_its_first_failure_and_holds_the_rest() -> None:
    vercel = FakeVercel(failing={"r1": vercel_unavailable(503)})
    service = make_service(vercel, max_concurrency=1, retry_policy=RetryPolicy(max_calls=1))
    changes = [
        fifo(record_without_secret("r1"), "m0", "g1"),
        fifo(record_without_secret("r2"), "m1", "g1"),
        fifo(record_without_secret("r3"), "m2", "g2"),
    ]

    results = service.sync_batch(changes)

    assert [r.outcome for r in results] == [None, None, "imported"]
    assert vercel.resources_called() == ["r1", "r3"]
    assert results[1].error is not None
    assert results[1].error.message == "not sent: an earlier message of its FIFO group failed"


def test_a_change_whose_parsing_hits_a_bug_stops_its_fifo_group(monkeypatch: pytest.MonkeyPatch) -> None:
    parsing_hits_a_bug_for("buggy", monkeypatch)
    vercel = FakeVercel()
    service = make_service(vercel, max_concurrency=1)

    results = service.sync_batch(
        [fifo(record_without_secret("buggy"), "m0", "g"), fifo(record_without_secret("b"), "m1", "g")]
    )

    assert [r.failed for r in results] == [True, True]
    assert vercel.calls == []
