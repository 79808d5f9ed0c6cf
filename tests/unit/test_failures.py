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


def test_a_long_failure_sent_back_for_want_of_a_failed_records_queue_is_cut() -> None:
    from vercel_sync.errors import PermanentSyncError
    from vercel_sync.redaction import MAX_ERROR_TEXT

    detail = "Vercel refused the record: " + "x" * (MAX_ERROR_TEXT + 100)
    vercel = FakeVercel(script={"db_primary": [PermanentSyncError(detail, reason="vercel_rejected", http_status=400)]})
    service = make_sync_service(vercel=vercel, secrets=FakeSecrets(), failed_records=None)

    (result,) = service.sync_batch([change(record_with_secret())])

    assert result.error is not None
    assert f"... [{len(detail) - MAX_ERROR_TEXT} more characters]" in result.error.message
    assert len(result.error.message) < MAX_ERROR_TEXT + 200


def test_parking_leaves_the_error_it_is_handed_as_it_was() -> None:
    """One error may park several records (a token read's): each is scrubbed and cut from the original."""
    from vercel_sync.calls import Clock
    from vercel_sync.deadline import Deadline
    from vercel_sync.errors import PermanentSyncError
    from vercel_sync.ports import NullObserver
    from vercel_sync.sync.failures import Failures

    failed = FakeFailedRecords()
    failures = Failures(failed, NullObserver(), Clock(), Deadline(None, None, Clock().monotonic), None)
    body = "Vercel said: " + "y" * 200  # cut where it was read: its end is dropped when scrubbed
    error = PermanentSyncError(
        f"refused {DB_PASSWORD}", reason="vercel_rejected", vercel_error=body, vercel_error_complete=False
    )

    for identifier in ("m-1", "m-2"):
        assert (
            failures.park(change(record_with_secret(), identifier), error, [DB_PASSWORD], calls=1).outcome == "parked"
        )

    assert error.message == f"refused {DB_PASSWORD}"
    assert error.vercel_error == body
    first, second = failed.messages
    assert first["vercelError"] == second["vercelError"]


def test_sending_back_leaves_the_error_it_is_handed_as_it_was() -> None:
    """One transient error may send several records back (a token read's): each is scrubbed from the original."""
    from vercel_sync.calls import Clock
    from vercel_sync.deadline import Deadline
    from vercel_sync.ports import NullObserver
    from vercel_sync.sync.failures import Failures

    failures = Failures(None, NullObserver(), Clock(), Deadline(None, None, Clock().monotonic), None)
    error = TransientSyncError(f"timed out reading {DB_PASSWORD}", http_status=503)

    result = failures.transient(change(record_with_secret()), error, [DB_PASSWORD], calls=1)

    assert result.error is not None
    assert DB_PASSWORD not in result.error.message
    assert error.message == f"timed out reading {DB_PASSWORD}"
