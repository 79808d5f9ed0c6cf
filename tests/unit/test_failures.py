"""Failure routing (``sync/failures.py``): a bug goes back to its source without its message; a
stream record still failing near the end of the stream's retention is parked whole."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.builders import change, record_with_secret
from tests.fakes import DB_PASSWORD, FakeFailedRecords, FakeSecrets, FakeVercel, make_sync_service, sync_one
from vercel_sync.changes import SourceChange, SourcePosition
from vercel_sync.errors import TransientSyncError


def test_a_bug_goes_back_to_the_source_without_its_message() -> None:
    vercel = FakeVercel(script={"db_primary": [KeyError(f"quoting {DB_PASSWORD}")]})
    service = make_sync_service(vercel=vercel, secrets=FakeSecrets(), failed_records=FakeFailedRecords())

    with pytest.raises(TransientSyncError) as caught:
        sync_one(service, change(record_with_secret()))

    assert "KeyError" in str(caught.value)
    assert DB_PASSWORD not in str(caught.value)
    # Neither chained nor attached as context: nothing that walks the chain can reach it.
    assert caught.value.__cause__ is None
    assert caught.value.__context__ is None


def stream_change(item: dict[str, Any], created_at: datetime) -> SourceChange:
    position = SourcePosition(
        kind="dynamodb-stream", event_source_arn="arn:stream", item_identifier="100", created_at=created_at
    )
    return SourceChange(position, item)


def test_a_stream_record_still_failing_near_the_end_of_its_retention_is_parked_whole() -> None:
    now = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
    failed = FakeFailedRecords()
    vercel = FakeVercel(failing={"db_primary": TransientSyncError("Vercel answered 503", http_status=503)})
    service = make_sync_service(
        vercel=vercel,
        secrets=FakeSecrets(),
        failed_records=failed,
        sleep=lambda _seconds: None,
        clock=lambda: now,
        park_stream_records_after_seconds=20 * 3600,
    )
    young = stream_change(record_with_secret(), now - timedelta(hours=19, minutes=59))
    old = stream_change(record_with_secret(), now - timedelta(hours=20))

    with pytest.raises(TransientSyncError):
        sync_one(service, young)
    assert sync_one(service, old) == "parked"

    (message,) = failed.messages
    assert message["reason"] == "retries_exhausted"
    assert message["httpStatus"] == 503
    assert message["record"] == record_with_secret()
    assert message["source"]["approximateCreationDateTime"] == "2026-11-26T16:00:00+00:00"


def test_an_old_record_whose_parking_hits_a_bug_too_goes_back_to_its_source() -> None:
    from vercel_sync.ports import NullObserver

    now = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)

    class BrokenVercel:
        def import_resource(self, *_: Any, **__: Any) -> dict[str, Any]:
            raise RuntimeError("a bug in the call")

    class BrokenObserver(NullObserver):
        def parked(self, *_: Any, **__: Any) -> None:
            raise KeyError("a bug in reporting the parking")

    service = make_sync_service(
        vercel=BrokenVercel(),
        secrets=FakeSecrets(),
        failed_records=FakeFailedRecords(),
        observer=BrokenObserver(),
        clock=lambda: now,
        park_stream_records_after_seconds=20 * 3600,
    )

    (result,) = service.sync_batch([stream_change(record_with_secret(), now - timedelta(hours=21))])

    assert result.failed
    assert result.error is not None
    assert "unexpected RuntimeError" in result.error.message


def test_a_long_failure_is_cut_once_in_the_failed_records_message() -> None:
    from vercel_sync.errors import PermanentSyncError
    from vercel_sync.redaction import MAX_ERROR_TEXT

    detail = "Vercel refused the record: " + "x" * (MAX_ERROR_TEXT + 100)
    vercel = FakeVercel(script={"db_primary": [PermanentSyncError(detail, reason="vercel_rejected", http_status=400)]})
    failed = FakeFailedRecords()
    service = make_sync_service(vercel=vercel, secrets=FakeSecrets(), failed_records=failed)

    assert sync_one(service, change(record_with_secret())) == "parked"

    (message,) = failed.messages
    assert message["detail"] == detail[:MAX_ERROR_TEXT] + f"... [{len(detail) - MAX_ERROR_TEXT} more characters]"
