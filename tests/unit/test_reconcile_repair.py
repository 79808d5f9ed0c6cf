"""A reconcile repair (the SQS message attribute ``repair`` = ``true``) gets past change suppression,
because Vercel lost what the sync-state table says was sent; the version guard still holds."""

from __future__ import annotations

from typing import Any

import pytest

from tests.fakes import FakeFailedRecords, FakeSecrets, FakeStateStore, FakeVercel, make_sync_service, sync_one
from vercel_sync.adapters.queue_sender import SqsSender
from vercel_sync.adapters.source_queue import send_attributes
from vercel_sync.backfill.engine import OutboundMessage
from vercel_sync.sources import change_from_sqs_record, change_from_stream_record
from vercel_sync.sync.service import SyncService

RECORD: dict[str, Any] = {
    "integrationConfigurationId": "icfg_repair",
    "resourceId": "orders",
    "productId": "postgres",
    "name": "orders-db",
    "status": "active",
}


def sqs_record(body: dict[str, Any], message_id: str, *, repair: bool) -> dict[str, Any]:
    import json

    attributes = {"repair": {"stringValue": "true", "dataType": "String"}} if repair else {}
    return {
        "messageId": message_id,
        "body": json.dumps(body),
        "attributes": {"ApproximateReceiveCount": "1"},
        "messageAttributes": attributes,
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:partner-events",
    }


def service(vercel: FakeVercel) -> SyncService:
    return make_sync_service(
        vercel=vercel, secrets=FakeSecrets(), failed_records=FakeFailedRecords(), state_store=FakeStateStore()
    )


def test_the_marker_is_read_from_the_message_attributes() -> None:
    assert change_from_sqs_record(sqs_record(RECORD, "m1", repair=True)).repair is True
    assert change_from_sqs_record(sqs_record(RECORD, "m1", repair=False)).repair is False


def test_a_repair_of_an_unchanged_payload_is_sent_where_a_plain_resend_is_skipped() -> None:
    vercel = FakeVercel()
    sync = service(vercel)
    outcomes = [
        sync_one(sync, change_from_sqs_record(sqs_record(RECORD, "m1", repair=False))),
        sync_one(sync, change_from_sqs_record(sqs_record(RECORD, "m2", repair=False))),
        sync_one(sync, change_from_sqs_record(sqs_record(RECORD, "m3", repair=True))),
    ]
    assert outcomes == ["imported", "unchanged", "imported"]
    assert len(vercel.calls) == 2


def test_a_repair_resends_the_version_applied_but_never_an_older_one() -> None:
    vercel = FakeVercel()
    sync = service(vercel)
    newer = {**RECORD, "version": 5, "name": "orders-v5"}
    assert sync_one(sync, change_from_sqs_record(sqs_record(newer, "m1", repair=False))) == "imported"
    assert sync_one(sync, change_from_sqs_record(sqs_record(newer, "m2", repair=False))) == "stale"
    assert sync_one(sync, change_from_sqs_record(sqs_record(newer, "m3", repair=True))) == "imported"
    older = {**RECORD, "version": 4, "name": "orders-v4"}
    assert sync_one(sync, change_from_sqs_record(sqs_record(older, "m4", repair=True))) == "stale"
    assert [call.body["name"] for call in vercel.calls] == ["orders-v5", "orders-v5"]


class RecordingSqs:
    def __init__(self) -> None:
        self.entries: list[dict[str, Any]] = []

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        self.entries.extend(Entries)
        return {"Successful": [{"Id": e["Id"]} for e in Entries], "Failed": []}


def test_the_sender_marks_repairs_and_keeps_them_apart_from_backfill_duplicates() -> None:
    message = OutboundMessage("icfg_repair", "orders", '{"a":1}', "icfg_repair/orders", "d" * 64)
    backfill, repair = RecordingSqs(), RecordingSqs()
    SqsSender("https://sqs/q.fifo", client=backfill).send_batch([message])
    SqsSender("https://sqs/q.fifo", repair=True, client=repair).send_batch([message])
    assert "repair" not in backfill.entries[0]["MessageAttributes"]
    assert repair.entries[0]["MessageAttributes"]["repair"] == {"DataType": "String", "StringValue": "true"}
    assert repair.entries[0]["MessageDeduplicationId"] != backfill.entries[0]["MessageDeduplicationId"]


@pytest.mark.parametrize("record", [RECORD, {**RECORD, "version": 5}], ids=["no-version", "version"])
def test_a_repair_coalesced_with_a_plain_duplicate_in_one_batch_is_still_sent(record: dict[str, Any]) -> None:
    """A repair and a plain message of the same state for one resource in one batch: the batch sends the
    resource once, and as a repair (else the duplicate's suppression would drop what Vercel lost)."""
    vercel = FakeVercel()
    sync = service(vercel)
    assert sync_one(sync, change_from_sqs_record(sqs_record(record, "m0", repair=False))) == "imported"
    batch = [
        change_from_sqs_record(sqs_record(record, "m1", repair=True)),
        change_from_sqs_record(sqs_record(record, "m2", repair=False)),
    ]
    outcomes = [str(result.outcome) for result in sync.sync_batch(batch, time_left_ms=None)]
    assert outcomes == ["coalesced", "imported"]
    assert len(vercel.calls) == 2


def test_a_repair_coalesced_with_a_newer_change_sends_the_newer_state_never_the_older() -> None:
    vercel = FakeVercel()
    sync = service(vercel)
    v6 = {**RECORD, "version": 6, "name": "orders-v6"}
    assert sync_one(sync, change_from_sqs_record(sqs_record(v6, "m0", repair=False))) == "imported"
    batch = [
        change_from_sqs_record(sqs_record({**RECORD, "version": 5, "name": "orders-v5"}, "m1", repair=True)),
        change_from_sqs_record(sqs_record(v6, "m2", repair=False)),
    ]
    assert [str(r.outcome) for r in sync.sync_batch(batch, time_left_ms=None)] == ["coalesced", "imported"]
    assert [call.body["name"] for call in vercel.calls] == ["orders-v6", "orders-v6"]


def test_a_repair_resent_for_the_rate_limit_stays_a_repair_and_a_stream_record_is_never_one() -> None:
    raw = sqs_record(RECORD, "m1", repair=True)
    assert send_attributes(raw["messageAttributes"]) == {"repair": {"DataType": "String", "StringValue": "true"}}
    for value in ("True", "1", "yes", None):
        forged = {**raw, "messageAttributes": {"repair": {"stringValue": value, "dataType": "String"}}}
        assert change_from_sqs_record(forged).repair is False
    stream = {
        "eventName": "MODIFY",
        "messageAttributes": raw["messageAttributes"],
        "dynamodb": {"SequenceNumber": "100", "NewImage": {k: {"S": v} for k, v in RECORD.items()}},
    }
    assert change_from_stream_record(stream).repair is False
