"""The failed-records message: complete enough to replay, and free of secret values."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from tests.builders import change, make_service, record_with_secret, record_without_secret, sqs
from tests.fakes import FakeFailedRecords, FakeVercel, sync_one, vercel_unavailable
from vercel_sync.changes import SourceChange, SourcePosition
from vercel_sync.errors import InvalidRecordError, PermanentSyncError
from vercel_sync.failed_record import build_failed_record_message
from vercel_sync.redaction import REDACTED, scrub, scrub_text, truncate

SECRET = "hunter2-but-longer"


def test_message_shape_and_scrubbing() -> None:
    change = SourceChange(
        SourcePosition("sqs", "arn:aws:sqs:us-east-1:1:q.fifo", "m-1", message_group_id="g", receive_count=3),
        {"integrationConfigurationId": "i", "resourceId": "r", "metadata": {"note": f"pw={SECRET}"}},
    )
    error = PermanentSyncError("rejected", reason="vercel_rejected", http_status=422, vercel_error=f"echo {SECRET}")

    message = build_failed_record_message(
        change, error, failed_at=datetime(2026, 11, 26, tzinfo=UTC), secret_values=[SECRET]
    )

    assert SECRET not in json.dumps(message)
    assert message == {
        "schemaVersion": 1,
        "failedAt": "2026-11-26T00:00:00+00:00",
        "reason": "vercel_rejected",
        "detail": "rejected",
        "httpStatus": 422,
        "vercelError": f"echo {REDACTED}",
        "attempts": 3,
        "vercelCalls": 0,
        "integrationConfigurationId": "i",
        "resourceId": "r",
        "source": {
            "kind": "sqs",
            "eventSourceARN": "arn:aws:sqs:us-east-1:1:q.fifo",
            "messageId": "m-1",
            "receiveCount": 3,
            "messageGroupId": "g",
        },
        "removed": False,
        "record": {"integrationConfigurationId": "i", "resourceId": "r", "metadata": {"note": f"pw={REDACTED}"}},
    }


def test_scrub_longest_first_and_ignores_tiny_values() -> None:
    assert scrub_text("abcdef and abcd", ["abcd", "abcdef"]) == f"{REDACTED} and {REDACTED}"
    assert scrub_text("a b c", ["a", ""]) == "a b c"  # too short to be anybody's secret
    assert scrub({"k-abcd": ["abcd", 1, None]}, ["abcd"]) == {f"k-{REDACTED}": [REDACTED, 1, None]}


def test_truncate() -> None:
    assert truncate("x" * 10, limit=20) == "x" * 10
    assert truncate("x" * 30, limit=20) == "x" * 20 + "... [10 more characters]"


def test_failed_records_keep_only_partner_record_fields() -> None:
    item = record_with_secret(internalNotes="do not copy", customerEmail="someone@example.com")
    message = build_failed_record_message(
        change(item), InvalidRecordError("nope"), failed_at=datetime(2026, 1, 1, tzinfo=UTC)
    )
    assert set(message["record"]) == set(record_with_secret())
    assert "customerEmail" not in json.dumps(message)


def test_failed_record_detail_and_ids_are_bounded() -> None:
    item = record_with_secret(resourceId="r" * 100_000)
    message = build_failed_record_message(
        change(item), InvalidRecordError("d" * 100_000), failed_at=datetime(2026, 1, 1, tzinfo=UTC)
    )
    assert len(message["detail"]) < 2200
    assert len(message["resourceId"]) < 1100


def test_the_failed_record_counts_attempts_across_deliveries_and_calls() -> None:
    from tests.fakes import vercel_rejects

    failed = FakeFailedRecords()
    vercel = FakeVercel(script={"r1": [vercel_unavailable(503), vercel_rejects(422)]})
    service = make_service(vercel, failed=failed)

    assert sync_one(service, sqs(record_without_secret(), receive_count=3)) == "parked"

    (message,) = failed.messages
    assert (message["attempts"], message["vercelCalls"]) == (4, 2)
