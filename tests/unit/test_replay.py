"""The replay commands' logic with an in-memory SQS: what is deleted, kept and released, in which
order; how a failed-records message becomes a change again."""

from __future__ import annotations

import argparse
import io
import json
from dataclasses import dataclass, field
from typing import Any

import pytest

from operations.redrive import change_from_failed_record, failure_detail
from operations.replay import FailedRecordsQueue, Selection, replay, run
from operations.stream_failures import stream_range
from vercel_sync.errors import TransientSyncError


def failed(n: int, reason: str, installation: str, *, record: bool = True, **extra: Any) -> dict[str, Any]:
    return {
        "schemaVersion": 1,
        "failedAt": f"2026-11-27T10:00:{n:02}+00:00",
        "reason": reason,
        "detail": f"detail {n}",
        "integrationConfigurationId": installation,
        "resourceId": f"res_{n}",
        "source": {"kind": "sqs", "eventSourceARN": "arn:aws:sqs:us-east-1:1:partner.fifo", "messageId": f"m{n}"},
        "removed": False,
        "record": {"integrationConfigurationId": installation, "resourceId": f"res_{n}"} if record else None,
        **extra,
    }


@dataclass
class FakeSqs:
    bodies: dict[str, str]
    deleted: list[str] = field(default_factory=list)
    visibility: list[tuple[str, int]] = field(default_factory=list)
    _handed: set[str] = field(default_factory=set)

    def receive_message(self, **request: Any) -> dict[str, Any]:
        ready = [i for i in self.bodies if i not in self._handed and i not in self.deleted]
        batch = ready[: request["MaxNumberOfMessages"]]
        self._handed.update(batch)
        return {"Messages": [{"MessageId": i, "ReceiptHandle": f"h-{i}", "Body": self.bodies[i]} for i in batch]}

    def delete_message(self, QueueUrl: str, ReceiptHandle: str) -> None:
        self.deleted.append(ReceiptHandle.removeprefix("h-"))

    def change_message_visibility_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> None:
        self.visibility.extend((e["ReceiptHandle"].removeprefix("h-"), e["VisibilityTimeout"]) for e in Entries)


def queue_of(*documents: dict[str, Any] | str) -> FakeSqs:
    return FakeSqs({f"id{i}": d if isinstance(d, str) else json.dumps(d) for i, d in enumerate(documents)})


def test_replay_deletes_what_is_done_keeps_what_fails_again_oldest_first() -> None:
    sqs = queue_of(
        failed(3, "vercel_rejected", "a"), failed(1, "token_unavailable", "b"), failed(2, "x", "c", record=False)
    )
    queue = FailedRecordsQueue(sqs, "url", wait_seconds=0)
    messages = queue.receive_all(lease_seconds=300)
    seen: list[str] = []

    def redrive(document: dict[str, Any]) -> str:
        seen.append(document["resourceId"])
        if document["resourceId"] == "res_3":
            raise TransientSyncError("vercel_rejected: still 404")
        return "imported"

    outcomes = replay(queue, messages, redrive)
    assert seen == ["res_1", "res_3"]  # oldest first; the one without a record is not re-driven
    assert [(o.message.resource_id, o.outcome) for o in outcomes] == [
        ("res_1", "imported"),
        ("res_2", "not replayable"),
        ("res_3", "failed again"),
    ]
    assert sqs.deleted == ["id1"]
    assert sorted(sqs.visibility) == [("id0", 0), ("id2", 0)]  # the rest released at once, unchanged


def test_replay_renews_the_lease_of_the_waiting_messages() -> None:
    now = [0.0]
    sqs = queue_of(failed(1, "r", "a"), failed(2, "r", "a"))
    queue = FailedRecordsQueue(sqs, "url", wait_seconds=0, clock=lambda: now[0])
    messages = queue.receive_all(lease_seconds=100)

    def slow(document: dict[str, Any]) -> str:
        now[0] += 60
        return "imported"

    replay(queue, messages, slow, lease_seconds=100)
    assert ("id1", 100) in sqs.visibility  # the second was kept invisible while the first took its time


def test_selection_and_unreadable_messages() -> None:
    sqs = queue_of(failed(1, "vercel_rejected", "a"), "not json", failed(2, "invalid_record", "b"))
    messages = FailedRecordsQueue(sqs, "url", wait_seconds=0).receive_all(lease_seconds=30)
    assert [m.reason for m in messages] == ["vercel_rejected", "(unreadable message)", "invalid_record"]
    chosen = Selection(reasons=frozenset({"vercel_rejected"}), installations=frozenset({"a"}))
    assert [m.resource_id for m in messages if m in chosen] == ["res_1"]
    assert Selection().describe() == "all"


def args(**overrides: Any) -> argparse.Namespace:
    values = {
        "queue_url": "url",
        "reason": [],
        "installation": [],
        "resource": [],
        "list": False,
        "apply": False,
        "discard": False,
        "max_messages": 100,
        "wait_seconds": 0,
    }
    return argparse.Namespace(**{**values, **overrides})


def test_the_dry_run_releases_everything_and_deletes_nothing() -> None:
    sqs = queue_of(
        failed(1, "vercel_rejected", "a"), failed(2, "vercel_rejected", "a"), failed(3, "token_unavailable", "b")
    )
    out = io.StringIO()
    assert run(args(), out=out, err=io.StringIO(), sqs=sqs) == 0
    assert "by reason:\n        2  vercel_rejected\n        1  token_unavailable\n" in out.getvalue()
    assert sqs.deleted == []
    assert sorted(sqs.visibility) == [("id0", 0), ("id1", 0), ("id2", 0)]


def test_a_wrong_setting_stops_the_replay_before_anything_and_releases_the_messages(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("VERCEL_API_URL", "http://vercel.example")  # plain http off loopback: refused
    sqs = queue_of(failed(1, "vercel_rejected", "a"))
    err = io.StringIO()
    assert run(args(apply=True), out=io.StringIO(), err=err, sqs=sqs) == 2
    assert "VERCEL_API_URL" in err.getvalue()
    assert sqs.deleted == []
    assert ("id0", 0) in sqs.visibility


def test_discard_needs_apply() -> None:
    err = io.StringIO()
    assert run(args(discard=True), out=io.StringIO(), err=err, sqs=queue_of()) == 2
    assert "needs --apply" in err.getvalue()


def test_a_failed_record_becomes_its_change_again_with_its_source_position() -> None:
    stream = failed(
        1,
        "vercel_rejected",
        "a",
        removed=True,
        source={
            "kind": "dynamodb-stream",
            "eventSourceARN": "arn:s",
            "sequenceNumber": "000123",
            "eventName": "REMOVE",
        },
    )
    change = change_from_failed_record(stream)
    assert change is not None
    assert change.removed
    assert change.position.kind == "dynamodb-stream"
    assert change.position.item_identifier == "000123"  # the version guard compares it as the original
    assert change.position.created_at is None  # not "too old for the stream" any more
    queued = change_from_failed_record(failed(2, "r", "b"))
    assert queued is not None
    assert queued.position.message_group_id is None
    assert queued.position.item_identifier == "m2"
    assert change_from_failed_record(failed(3, "r", "b", record=False)) is None
    assert failure_detail("x (no failed-records queue configured: back to the source)") == "x"


def test_stream_positions_are_read_from_the_on_failure_message() -> None:
    position = stream_range(
        {
            "DDBStreamBatchInfo": {
                "shardId": "shardId-1",
                "startSequenceNumber": "100",
                "endSequenceNumber": "105",
                "batchSize": 3,
                "streamArn": "arn:aws:dynamodb:us-east-1:1:table/partner/stream/2026",
            }
        }
    )
    assert position is not None
    assert position.table_name == "partner"
    assert position.describe() == "partner shardId-1 100..105 (3 records)"
    assert stream_range({"something": "else"}) is None
