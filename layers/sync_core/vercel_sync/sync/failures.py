"""Where a change that is not imported goes: parked (scrubbed) or back to its source (docs/architecture.md)."""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from vercel_sync.calls import Clock
from vercel_sync.changes import SourceChange
from vercel_sync.deadline import Deadline
from vercel_sync.errors import PermanentSyncError, RetriesExhaustedError, SyncError, TransientSyncError
from vercel_sync.failed_record import build_failed_record_message
from vercel_sync.mapping import PartnerMapping
from vercel_sync.ports import FailedRecordSink, SyncObserver
from vercel_sync.redaction import scrub_error_body, scrub_text, truncate
from vercel_sync.sync.crew import waiting
from vercel_sync.sync.plan import DONE, RecordResult


def send_to_failed_records(sink: FailedRecordSink, message: dict[str, Any], deadline: Deadline) -> str | None:
    """Parks one message (rotation's too); None once the queue has it, else why not."""
    try:
        with deadline.bound("park", "sending it to the failed-records queue"), waiting("park"):
            sink.park(message)
    except TransientSyncError as exc:
        return exc.message
    except Exception as exc:  # noqa: BLE001 - any failure to park means the source must keep the record
        return f"the failed-records queue did not take it ({type(exc).__name__})"
    return None


def scrubbed[E: SyncError](error: E, secret_values: list[str]) -> E:
    """A copy of ``error`` fit to log and queue (rotation's too): its message, and Vercel's error body,
    scrubbed of ``secret_values`` and cut. A copy, since one error may be shared by several records."""
    shown = copy.copy(error)
    shown.message = truncate(scrub_text(error.message, secret_values))
    if isinstance(shown, PermanentSyncError) and shown.vercel_error is not None:
        shown.vercel_error = scrub_error_body(shown.vercel_error, secret_values, complete=shown.vercel_error_complete)
    return shown


@dataclass
class Failures:
    """One batch's failure routing; without ``failed_records`` permanent failures go back to the source too."""

    failed_records: FailedRecordSink | None
    observer: SyncObserver
    clock: Clock
    deadline: Deadline
    park_stream_records_after_seconds: float | None
    mapping: PartnerMapping | None = None  # what a failed record keeps of the item, and its ids

    def park(
        self, change: SourceChange, error: PermanentSyncError, secret_values: Iterable[str], *, calls: int
    ) -> RecordResult:
        secret_values = list(secret_values)
        error = scrubbed(error, secret_values)
        if self.failed_records is None:
            why = f"{error.reason}: {error.message} (no failed-records queue configured: back to the source)"
            return self._back_to_source(change, why, error)
        message = build_failed_record_message(
            change,
            error,
            failed_at=self.clock.now(),
            secret_values=secret_values,
            calls=calls,
            mapping=self.mapping,
        )
        refused = send_to_failed_records(self.failed_records, message, self.deadline)
        if refused is not None:
            return self._back_to_source(change, f"{error.reason}: {error.message}; {refused}", error)
        self.observer.parked(change, error)
        return DONE["parked"]

    def transient(
        self, change: SourceChange, error: TransientSyncError, secret_values: list[str], *, calls: int
    ) -> RecordResult:
        parked = self._park_if_old(change, error, secret_values, calls=calls)
        if parked is not None:
            return parked
        error = scrubbed(error, secret_values)
        self.observer.retrying(change, error)
        return RecordResult(None, error)

    def bug(self, change: SourceChange, error: Exception, tokens: Iterable[str] = ()) -> RecordResult:
        # Not a verdict on the record: back to the source, or parked if too old for that. Nothing
        # quotes or chains the original error: its text may quote a secret.
        self.observer.unexpected(change, error)
        transient = TransientSyncError(f"unexpected {type(error).__name__} (a bug; see the error log)")
        try:
            parked = self._park_if_old(change, transient, tokens, calls=0)
        except Exception:  # noqa: BLE001 - parking hit a bug too: the source keeps the record
            parked = None
        return parked or RecordResult(None, transient)

    def _park_if_old(
        self, change: SourceChange, error: TransientSyncError, secret_values: Iterable[str], *, calls: int
    ) -> RecordResult | None:
        """Parks a stream record old enough (the stream keeps it 24 h) rather than send it back."""
        age = change.position.stream_age_seconds(self.clock.now())
        limit = self.park_stream_records_after_seconds
        if age is None or limit is None or age < limit:
            return None
        return self.park(change, RetriesExhaustedError.in_stream(error, age), secret_values, calls=calls)

    def _back_to_source(self, change: SourceChange, message: str, error: PermanentSyncError) -> RecordResult:
        transient = TransientSyncError(message, http_status=error.http_status)
        self.observer.retrying(change, transient)
        return RecordResult(None, transient)
