"""The sync of one change: decode, transform, read secrets, import, and route any failure.

:class:`SyncService` is handed its adapters (``VercelApi``, ``SecretStore``,
``FailedRecordSink``), so tests and the local runner swap them without patching.

Outcome of :meth:`SyncService.sync`:
- returns ``"imported"``: Vercel accepted the payload;
- returns ``"parked"``: a permanent failure, now in the failed-records queue (the source moves on);
- raises :class:`TransientSyncError`: the record goes back to its source for another try
  (also when a permanent failure cannot be parked, so nothing is lost).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, NoReturn, Protocol

from vercel_sync.changes import SourceChange
from vercel_sync.errors import InvalidRecordError, PermanentSyncError, RetriesExhaustedError, TransientSyncError
from vercel_sync.failed_record import build_failed_record_message
from vercel_sync.redaction import scrub_text, truncate
from vercel_sync.transform import build_import_payload, needs_secrets, parse_partner_record

SyncOutcome = Literal["imported", "parked"]


class VercelApi(Protocol):
    def import_resource(
        self, integration_configuration_id: str, resource_id: str, body: Mapping[str, Any], *, token: str
    ) -> dict[str, Any]: ...


class SecretStore(Protocol):
    def installation_token(self, integration_configuration_id: str, *, force_fetch: bool = False) -> str: ...

    def resource_secrets(self, secret_id: str) -> Any: ...


class FailedRecordSink(Protocol):
    def park(self, message: dict[str, Any]) -> None: ...


class SyncObserver(Protocol):
    """Where the pipeline reports what happened (logs and metrics in Lambda; nothing in tests)."""

    def imported(self, change: SourceChange, *, latency_ms: float) -> None: ...

    def parked(self, change: SourceChange, error: PermanentSyncError) -> None: ...

    def retrying(self, change: SourceChange, error: TransientSyncError) -> None: ...

    def token_refreshed(self, integration_configuration_id: str) -> None: ...

    def unexpected(self, change: SourceChange, error: Exception) -> None: ...


class NullObserver:
    def imported(self, change: SourceChange, *, latency_ms: float) -> None:
        pass

    def parked(self, change: SourceChange, error: PermanentSyncError) -> None:
        pass

    def retrying(self, change: SourceChange, error: TransientSyncError) -> None:
        pass

    def token_refreshed(self, integration_configuration_id: str) -> None:
        pass

    def unexpected(self, change: SourceChange, error: Exception) -> None:
        pass


@dataclass(frozen=True)
class TimeBudget:
    """The worst-case time of each slow step of a sync, so no step starts that could outlast
    the invocation (Lambda would then fail the whole batch instead of returning a correct
    partial response). A step without enough time left sends the record back to its source.
    """

    aws_read_ms: int  # one Secrets Manager read or SQS send, every attempt and backoff included
    vercel_call_ms: int  # one Vercel call, every timeout phase included
    margin_ms: int = 1_000  # returning the batch response and flushing logs and metrics

    @property
    def park_ms(self) -> int:
        """Sending a record to the failed-records queue (an SQS call, like a secrets read)."""
        return self.aws_read_ms

    @property
    def record_ms(self) -> int:
        """What a record needs to start at all: a secrets read and one Vercel call (and, as for
        every step, the time to park the record if the answer says it can never succeed)."""
        return self.aws_read_ms + self.vercel_call_ms


class _Deadline:
    def __init__(self, time_left_ms: int | None, budget: TimeBudget | None, monotonic: Callable[[], float]) -> None:
        self._budget = budget if time_left_ms is not None else None
        self._monotonic = monotonic
        self._ends_at = monotonic() + (time_left_ms or 0) / 1000

    def require(self, step: Literal["record", "aws_read", "vercel_call", "park"], what: str) -> None:
        if self._budget is None:
            return
        # Every step leaves time to park the record after it, if it fails for good.
        after_ms = 0 if step == "park" else self._budget.park_ms
        needed_ms = getattr(self._budget, f"{step}_ms") + after_ms + self._budget.margin_ms
        left_ms = int((self._ends_at - self._monotonic()) * 1000)
        if left_ms < needed_ms:
            raise TransientSyncError(
                f"only {left_ms} ms left in this invocation; {what} may take {needed_ms} ms: back to the source"
            )


class SyncService:
    def __init__(
        self,
        *,
        vercel: VercelApi,
        secrets: SecretStore,
        failed_records: FailedRecordSink | None,
        observer: SyncObserver | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        time_budget: TimeBudget | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        park_stream_records_after_seconds: float | None = None,
    ) -> None:
        self.vercel = vercel
        self.secrets = secrets
        # Without a failed-records queue, permanent failures go back to the source, whose own
        # dead-letter path then holds them: never dropped.
        self.failed_records = failed_records
        self.observer: SyncObserver = observer or NullObserver()
        self._clock = clock
        # Without a budget (unit tests, or a caller that cannot tell the time left) no step is
        # refused for lack of time.
        self.time_budget = time_budget
        self._monotonic = monotonic
        # A stream keeps a record for 24 h; one that still fails transiently when it is this old
        # is parked with its whole record (replayable) rather than retried until it expires.
        self.park_stream_records_after_seconds = park_stream_records_after_seconds

    def sync(self, change: SourceChange, *, time_left_ms: int | None = None) -> SyncOutcome:
        secret_values: list[str] = []
        deadline = _Deadline(time_left_ms, self.time_budget, self._monotonic)
        bug: type[Exception] | None = None
        try:
            deadline.require("record", "a record")
            self._import(change, secret_values, deadline)
        except PermanentSyncError as error:
            self._park(change, error, secret_values, deadline)
            return "parked"
        except TransientSyncError as error:
            age = self._stream_record_age_seconds(change)
            limit = self.park_stream_records_after_seconds
            if age is not None and limit is not None and age >= limit:
                exhausted = RetriesExhaustedError(
                    f"still failing after {age / 3600:.1f} h in the stream, which keeps records 24 h: {error.message}",
                    http_status=error.http_status,
                )
                self._park(change, exhausted, secret_values, deadline)
                return "parked"
            self.observer.retrying(change, error)
            raise
        except Exception as error:  # noqa: BLE001 - any bug: logged, then the record goes back to its source
            # A bug, not a verdict on the record: report it and let the source retry it (after
            # its retries, its dead-letter path holds the record until a fix is deployed).
            self.observer.unexpected(change, error)
            bug = type(error)
        if bug is not None:
            # Raised outside the handler, so the original is neither the cause nor the context:
            # its text may quote a secret, and Powertools and X-Ray record what they are given.
            raise TransientSyncError(f"unexpected {bug.__name__} (a bug; see the error log)")
        return "imported"

    def _stream_record_age_seconds(self, change: SourceChange) -> float | None:
        created = change.position.created_at
        if change.position.kind != "dynamodb-stream" or created is None:
            return None
        return (self._clock() - created).total_seconds()

    def _import(self, change: SourceChange, secret_values: list[str], deadline: _Deadline) -> None:
        if change.decode_error is not None or change.item is None:
            raise InvalidRecordError(change.decode_error or "the change carries no record")
        record = parse_partner_record(change.item)
        secret_document = None
        if needs_secrets(record, removed=change.removed):
            assert record.secrets_arn is not None
            deadline.require("aws_read", "reading the resource secret")
            secret_document = self.secrets.resource_secrets(record.secrets_arn)
        payload = build_import_payload(record, removed=change.removed, secret_document=secret_document)
        secret_values.extend(payload.secret_values())
        body = payload.to_body()

        installation = record.integration_configuration_id
        deadline.require("aws_read", "reading the installation token")
        token = self.secrets.installation_token(installation)
        secret_values.append(token)
        deadline.require("vercel_call", "the Vercel call")
        started = time.perf_counter()
        try:
            self.vercel.import_resource(installation, record.resource_id, body, token=token)
        except TransientSyncError as error:
            if getattr(error, "http_status", None) != 401:
                raise
            # The token may have been rotated: re-read it past the cache, once.
            deadline.require("aws_read", "re-reading the installation token")
            token = self.secrets.installation_token(installation, force_fetch=True)
            secret_values.append(token)
            self.observer.token_refreshed(installation)
            deadline.require("vercel_call", "the Vercel call with the new token")
            started = time.perf_counter()
            self.vercel.import_resource(installation, record.resource_id, body, token=token)
        self.observer.imported(change, latency_ms=(time.perf_counter() - started) * 1000)

    def _park(
        self, change: SourceChange, error: PermanentSyncError, secret_values: list[str], deadline: _Deadline
    ) -> None:
        # Scrub first, then cut: a cut through a secret would leave a piece no scrub can find.
        if error.vercel_error is not None:
            scrubbed = scrub_text(error.vercel_error, secret_values, cut_at_end=not error.vercel_error_complete)
            error.vercel_error = truncate(scrubbed)
        error.message = truncate(scrub_text(error.message, secret_values))
        if self.failed_records is None:
            self._back_to_source(
                change,
                f"{error.reason}: {error.message} (no failed-records queue configured: back to the source)",
                error,
            )
        message = build_failed_record_message(change, error, failed_at=self._clock(), secret_values=secret_values)
        refused: str | None = None
        try:
            deadline.require("park", "sending it to the failed-records queue")
            self.failed_records.park(message)
        except TransientSyncError as exc:
            refused = exc.message
        except Exception as exc:  # noqa: BLE001 - any failure to park means the source must keep the record
            refused = f"the failed-records queue did not take it ({type(exc).__name__})"
        if refused is not None:  # outside the handler: the queue's error is not chained
            self._back_to_source(change, f"{error.reason}: {error.message}; {refused}", error)
        self.observer.parked(change, error)

    def _back_to_source(self, change: SourceChange, message: str, error: PermanentSyncError) -> NoReturn:
        transient = TransientSyncError(message, http_status=error.http_status)
        self.observer.retrying(change, transient)
        raise transient
