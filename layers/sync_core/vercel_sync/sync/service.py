"""The sync of one batch of changes: decode, coalesce, guard, import, retry, and route failures.

:class:`SyncService` is handed its adapters (``VercelApi``, ``SecretStore``,
``FailedRecordSink``, and optionally a ``StateStore`` and a ``RateLimiter``), so tests and the
local runner swap them without patching.

A batch (:meth:`SyncService.sync_batch`) goes like this:
1. Each change is parsed; one that can never make a payload is parked at once.
2. Changes are grouped per resource (installation + resource id). Only the newest of each
   group is sent (by ``version`` when all of them carry one, else by source order); the others
   are *coalesced* into it and share its fate: if it fails, they are all reported failed (for a
   stream, the earliest of them bounds the checkpoint).
3. Resources run concurrently (at most ``max_concurrency`` at once, over one pooled HTTP
   client); one resource's calls never overlap. Worker threads are added while every worker
   waits (:class:`Crew`), so work with nothing to wait for is not split over threads.
4. With a state store, a resource is *claimed* first: a change older than or equal to the
   version already applied is skipped as stale, one whose payload digest equals the last
   imported is skipped as unchanged (no call), and no other invocation calls for it meanwhile.
5. The call is retried inside the invocation on transient failures (429, 5xx, timeouts,
   connection errors) with exponential backoff and full jitter, never sooner than Vercel's
   ``Retry-After``, and only while the remaining time allows the call and parking after it. A
   429 pauses every call of that installation in this invocation (and, through the rate
   limiter, in the others). A 401 re-reads the token once, past the cache. A 403, 404 or 410
   stops the installation for the rest of the batch: its records are parked without a call.

Per change, :class:`RecordResult`: ``imported``, ``unchanged``, ``stale``, ``coalesced``,
``parked`` (a permanent failure, now in the failed-records queue), or failed with a
:class:`TransientSyncError` (back to its source; also when a permanent failure cannot be
parked, so nothing is lost).
"""

from __future__ import annotations

import contextlib
import copy
import random
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from vercel_sync.calls import RetryPolicy
from vercel_sync.changes import SourceChange
from vercel_sync.deadline import Deadline, TimeBudget, too_short_function_timeout_ms
from vercel_sync.errors import (
    INSTALLATION_HTTP_STATUSES,
    InstallationUnavailableError,
    PermanentSyncError,
    RetriesExhaustedError,
    TransientSyncError,
)
from vercel_sync.failed_record import build_failed_record_message
from vercel_sync.ports import (
    FailedRecordSink,
    NullObserver,
    RateLimiter,
    SecretStore,
    SourceQueue,
    StateStore,
    SyncObserver,
    VercelApi,
)
from vercel_sync.redaction import scrub_error_body, scrub_text, truncate
from vercel_sync.sync.crew import Crew, Wait
from vercel_sync.sync.plan import (
    DONE,
    FifoGroup,
    Outcome,
    Parking,
    ParsedChange,
    RecordResult,
    ResourceWork,
    Unit,
    parse,
    plan_tasks,
    result_failed,
)
from vercel_sync.sync_state import ImportedState, payload_digest
from vercel_sync.transform import build_import_body, needs_secrets


@dataclass(slots=True)
class _Tries:
    calls: int = 0  # Vercel calls made for the record in this invocation


class Installation:
    """One installation's state in this invocation: its token, a 429 pause, a stop."""

    def __init__(self, installation_id: str) -> None:
        self.id = installation_id
        self.lock = threading.Lock()
        self.token: str | None = None
        self.tokens_used: list[str] = []
        self.token_error: Exception | None = None
        self.refreshed = False
        self.paused_until = 0.0  # monotonic
        self.deferred = 0  # records sent back for want of a call under the rate limit
        self.stopped: InstallationUnavailableError | None = None


class SyncService:
    def __init__(
        self,
        *,
        vercel: VercelApi,
        secrets: SecretStore,
        failed_records: FailedRecordSink | None,
        observer: SyncObserver | None = None,
        state_store: StateStore | None = None,
        rate_limiter: RateLimiter | None = None,
        max_concurrency: int = 16,
        retry_policy: RetryPolicy = RetryPolicy(),  # noqa: B008 - frozen
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        time_budget: TimeBudget | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        uniform: Callable[[float, float], float] = random.uniform,
        park_stream_records_after_seconds: float | None = None,
        wrap_task: Callable[[Callable[[], Any]], Callable[[], Any]] | None = None,
        call_interval_seconds: float = 0.6,
        source_queue: SourceQueue | None = None,
    ) -> None:
        self.vercel = vercel
        self.secrets = secrets
        # Without a failed-records queue, permanent failures go back to the source, whose own
        # dead-letter path then holds them: never dropped.
        self.failed_records = failed_records
        self.observer: SyncObserver = observer or NullObserver()
        # Without a state store there is no version guard or change suppression across batches.
        self.state_store = state_store
        self.rate_limiter = rate_limiter
        self.max_concurrency = max(1, max_concurrency)
        self.retry_policy = retry_policy
        self._clock = clock
        # Without a budget (unit tests, or a caller that cannot tell the time left) no step is
        # refused for lack of time.
        self.time_budget = time_budget
        self._monotonic = monotonic
        self._sleep = sleep
        self._uniform = uniform
        # A stream keeps a record for 24 h; one that still fails transiently when it is this old
        # is parked with its whole record (replayable) rather than retried until it expires.
        self.park_stream_records_after_seconds = park_stream_records_after_seconds
        # Runs each worker-thread task inside the caller's trace context, when tracing is on.
        self._wrap_task = wrap_task
        # The rate limit's spacing of one installation's calls (seconds / calls): records sent
        # back for want of a call are told when to come back, one interval apart.
        self.call_interval_seconds = call_interval_seconds
        # The queue function's source, to defer messages sent back under the rate limit.
        self.source_queue = source_queue
        # Per worker thread: the crew of the batch it works for (see Crew).
        self._local = threading.local()
        self._timeout_checked = False  # at the first batch, whose time left is the function's timeout

    # ------------------------------------------------------------------ the batch

    def sync(self, change: SourceChange, *, time_left_ms: int | None = None) -> Outcome:
        """One change on its own: its outcome, or :class:`TransientSyncError` (keep it at its source)."""
        result = self.sync_batch([change], time_left_ms=time_left_ms)[0]
        if result.error is not None:
            raise result.error
        assert result.outcome is not None
        return result.outcome

    def sync_batch(self, changes: Sequence[SourceChange], *, time_left_ms: int | None = None) -> list[RecordResult]:
        """Each change's result, in the order given."""
        deadline = Deadline(time_left_ms, self.time_budget, self._monotonic)
        if not self._timeout_checked:
            self._timeout_checked = True
            too_short_ms = too_short_function_timeout_ms(time_left_ms, self.time_budget)
            if too_short_ms is not None and self.time_budget is not None:
                self.observer.function_timeout_too_short(function_timeout_ms=too_short_ms, budget=self.time_budget)
        results: list[RecordResult | None] = [None] * len(changes)
        # Units of work in batch order: a resource's changes, or a record to park.
        units: list[Unit] = []
        works: dict[tuple[str | None, str, str], ResourceWork] = {}
        installations: dict[str, Installation] = {}
        for index, change in enumerate(changes):
            group = change.position.message_group_id
            try:
                parsed = parse(index, change)
            except PermanentSyncError as error:
                units.append(Parking(group, index, change, error))
                continue
            except Exception as error:  # noqa: BLE001 - a bug in parsing: this record goes back
                results[index] = self._bug(change, error, deadline)
                continue
            # A FIFO group keeps its own order, so a resource is coalesced within its group only.
            key = (group, parsed.record.integration_configuration_id, parsed.record.resource_id)
            work = works.get(key)
            if work is None:
                installation = installations.get(key[1])
                if installation is None:
                    installation = installations[key[1]] = Installation(key[1])
                work = works[key] = ResourceWork(group, installation)
                units.append(work)  # its place in the batch: its first change's
            work.changes.append(parsed)
        del works, installations
        try:
            self._run(plan_tasks(units), lambda task: self._run_task(task, results, deadline))
        finally:
            self.observer.batch_finished(len(changes))
        return [result or self._lost(changes[i]) for i, result in enumerate(results)]

    def _run_task(self, task: Unit | FifoGroup, results: list[RecordResult | None], deadline: Deadline) -> None:
        if isinstance(task, ResourceWork):
            self._run_resource(task, results, deadline)
        elif isinstance(task, Parking):
            self._run_parking(task, results, deadline)
        else:
            self._run_group(task, results, deadline)

    def _run_group(self, group: FifoGroup, results: list[RecordResult | None], deadline: Deadline) -> None:
        failed = False
        for unit in group.members:
            indexes = unit.indexes()
            if failed:
                for index in indexes:
                    results[index] = RecordResult(
                        None, TransientSyncError("not sent: an earlier message of its FIFO group failed")
                    )
                continue
            self._run_task(unit, results, deadline)
            failed = any(result_failed(results[index]) for index in indexes)

    def _run(self, tasks: Sequence[Any], run_task: Callable[[Any], None]) -> None:
        """Runs every task, starting them in order, at most ``max_concurrency`` at once (see :class:`Crew`)."""
        crew = Crew(tasks, run_task, self.max_concurrency, self._wrap_task, self._local)
        crew.work()

    def _waiting(self, kind: str, seconds: float | None = None) -> Wait | contextlib.nullcontext[None]:
        """Around a call that may wait (the network, a sleep): lets the batch's crew start another
        worker meanwhile. ``seconds``: a sleep's length, known beforehand."""
        crew: Crew | None = getattr(self._local, "crew", None)
        if crew is None:
            return contextlib.nullcontext()
        return Wait(crew, kind, seconds)

    def _sleep_waiting(self, seconds: float) -> None:
        with self._waiting("sleep", seconds):
            self._sleep(seconds)

    def _lost(self, change: SourceChange) -> RecordResult:  # pragma: no cover - every path sets a result
        return RecordResult(None, TransientSyncError("the record was not processed (a bug): back to the source"))

    def _run_parking(self, unit: Parking, results: list[RecordResult | None], deadline: Deadline) -> None:
        try:
            results[unit.index] = self._park(unit.change, unit.error, [], deadline, calls=0)
        except Exception as bug:  # noqa: BLE001 - never lose the record to a bug
            results[unit.index] = self._bug(unit.change, bug, deadline)

    def _run_resource(self, work: ResourceWork, results: list[RecordResult | None], deadline: Deadline) -> None:
        newest = work.newest()
        try:
            result = self._sync_resource(newest, work.installation, deadline)
        except Exception as bug:  # noqa: BLE001 - never lose the record to a bug
            result = self._bug(newest.change, bug, deadline, work.installation.tokens_used)
        results[newest.index] = result
        for other in work.changes:
            if other is newest:
                continue
            # Superseded by the newest: it shares that one's fate.
            results[other.index] = result if result.failed else DONE["coalesced"]
            if not result.failed:
                self.observer.skipped(other.change, "coalesced")

    # ------------------------------------------------------------------ one resource

    def _sync_resource(self, item: ParsedChange, installation: Installation, deadline: Deadline) -> RecordResult:
        change, record = item.change, item.record
        secret_values: list[str] = []
        tries = _Tries()
        claim_id: str | None = None
        try:
            deadline.require("record", "a record")
            if installation.stopped is not None:
                stopped = installation.stopped
                raise InstallationUnavailableError(
                    f"not sent: {stopped.message} (for another resource of this installation in this batch)",
                    http_status=stopped.http_status,
                )
            secret_document = None
            if needs_secrets(record, removed=change.removed):
                assert record.secrets_arn is not None
                installation_id = record.integration_configuration_id
                # Two steps, each one AWS read at most: whose the secret is (none for a secret in
                # the installation's folder), then its value, only if it is the installation's.
                with (
                    deadline.bound("aws_read", "checking whose the resource secret is"),
                    self._waiting("secret_owner"),  # a kind of its own: most checks make no call
                ):
                    self.secrets.check_owner(record.secrets_arn, installation_id)
                with deadline.bound("aws_read", "reading the resource secret"), self._waiting("secret"):
                    secret_document = self.secrets.resource_secrets(record.secrets_arn, installation_id=installation_id)
            payload, body = build_import_body(record, removed=change.removed, secret_document=secret_document)
            secret_values.extend(payload.secret_values())
            del payload
            token = self._token(installation, deadline)
            secret_values.append(token)

            digest = ""
            if self.state_store is not None:
                digest = payload_digest(body, key=token)
                claim_id, unchanged = self._claim(item, digest, deadline)
                if claim_id is None:
                    self.observer.skipped(change, "stale")
                    return DONE["stale"]
                if unchanged:
                    self._record_state(item, claim_id, digest, body, deadline)
                    claim_id = None
                    self.observer.skipped(change, "unchanged")
                    return DONE["unchanged"]

            latency_ms = self._call_with_retries(item, installation, body, deadline, tries)
            if self.state_store is not None:
                # Recorded before the record counts as done: unrecorded, a stale change could pass
                # the guard later. If this fails the record goes back and is sent again.
                self._record_state(item, claim_id, digest, body, deadline)
                claim_id = None
            self.observer.imported(change, latency_ms=latency_ms, calls=tries.calls)
            return DONE["imported"]
        except PermanentSyncError as error:
            self._release(item, claim_id, deadline)
            if error.http_status in INSTALLATION_HTTP_STATUSES and not isinstance(error, InstallationUnavailableError):
                error = self._stop_installation(installation, error)
            secret_values.extend(installation.tokens_used)
            return self._park(change, error, secret_values, deadline, calls=tries.calls)
        except TransientSyncError as error:
            self._release(item, claim_id, deadline)
            secret_values.extend(installation.tokens_used)
            return self._after_transient(change, error, secret_values, deadline, calls=tries.calls)

    def _token(self, installation: Installation, deadline: Deadline) -> str:
        """The installation's token, read once per batch (the secrets adapter caches it longer)."""
        token = installation.token  # once read (the usual case), no lock: one attribute read is atomic
        if token is not None:
            return token
        with installation.lock:
            if installation.token is not None:
                return installation.token
            if installation.token_error is not None:
                raise installation.token_error
            deadline.require("aws_read", "reading the installation token")
            try:
                with deadline.limit("aws_read"), self._waiting("token"):
                    token = self.secrets.installation_token(installation.id)
            except (PermanentSyncError, TransientSyncError) as error:
                installation.token_error = error  # the rest of the batch gets the same answer
                raise
            installation.token = token
            installation.tokens_used.append(token)
            return token

    def _refresh_token(self, installation: Installation, used: str, deadline: Deadline) -> bool:
        """After a 401 with ``used``: True if a newer token is now at hand (re-read once per batch)."""
        with installation.lock:
            if installation.token != used:
                return True  # another resource of this installation has re-read it already
            if installation.refreshed:
                return False
            installation.refreshed = True
            with deadline.bound("aws_read", "re-reading the installation token"), self._waiting("token"):
                token = self.secrets.installation_token(installation.id, force_fetch=True)
            installation.token = token
            installation.tokens_used.append(token)
        self.observer.token_refreshed(installation.id)
        return True

    def _stop_installation(self, installation: Installation, error: PermanentSyncError) -> PermanentSyncError:
        with installation.lock:
            if installation.stopped is None:
                # The reason the installation's other records get: the status alone (the rest is
                # this record's, and may quote its secret values).
                installation.stopped = InstallationUnavailableError(
                    f"Vercel refused the installation ({error.http_status})", http_status=error.http_status
                )
        return InstallationUnavailableError(
            f"Vercel refused the installation ({error.http_status}): {error.message}",
            http_status=error.http_status,
            vercel_error=error.vercel_error,
            vercel_error_complete=error.vercel_error_complete,
        )

    def _claim(self, item: ParsedChange, digest: str, deadline: Deadline) -> tuple[str | None, bool]:
        """(claim id, whether the payload is unchanged); claim id None: the change is stale."""
        assert self.state_store is not None
        installation_id, resource_id = item.record.integration_configuration_id, item.record.resource_id
        while True:
            with deadline.bound("aws_read", "claiming the resource in the sync-state table"), self._waiting("state"):
                claim = self.state_store.claim(
                    installation_id, resource_id, item.version, lease_seconds=deadline.lease_seconds()
                )
            if claim.status == "stale":
                return None, False
            if claim.status == "claimed":
                return claim.claim_id, claim.state.payload_digest == digest
            # Another invocation's call for this resource is in flight: wait for it to end.
            wait = max(0.05, (claim.busy_until or 0) - time.time()) + self._uniform(0.0, 0.05)
            if wait > deadline.spare_seconds("aws_read") or wait > self.retry_policy.max_delay_seconds:
                raise TransientSyncError("another invocation is syncing this resource: back to the source")
            self._sleep_waiting(wait)

    def _record_state(
        self, item: ParsedChange, claim_id: str | None, digest: str, body: Mapping[str, Any], deadline: Deadline
    ) -> None:
        assert self.state_store is not None
        record = item.record
        uses_secret = record.secrets_arn is not None and "secrets" in body
        # Parking's share of the time: the call's bound kept it free for this write.
        with deadline.bound("park", "recording the import in the sync-state table"), self._waiting("state"):
            self.state_store.record(
                claim_id,
                ImportedState(
                    installation_id=record.integration_configuration_id,
                    resource_id=record.resource_id,
                    version=item.version,
                    payload_digest=digest,
                    product_id=record.product_id,
                    status=str(body.get("status")),
                    secret_name=record.secrets_arn if uses_secret else None,
                    secrets_prefix=record.secrets_prefix if uses_secret else None,
                    imported_at=self._clock(),
                ),
            )

    def _release(self, item: ParsedChange, claim_id: str | None, deadline: Deadline) -> None:
        if claim_id is None or self.state_store is None or not deadline.allows_best_effort_aws_call():
            return
        # Best effort: the lease lapses on its own, and the record's fate is already decided.
        with contextlib.suppress(Exception), deadline.limit("aws_read"), self._waiting("state"):
            self.state_store.release(item.record.integration_configuration_id, item.record.resource_id, claim_id)

    def _call_with_retries(
        self, item: ParsedChange, installation: Installation, body: Mapping[str, Any], deadline: Deadline, tries: _Tries
    ) -> float:
        """Call until accepted (counting calls in ``tries``); returns the last call's latency in ms."""
        failed_calls = 0
        while True:
            self._wait_while_paused(installation, deadline)
            if self.rate_limiter is not None and not self._acquire_call(installation, deadline):
                raise TransientSyncError(
                    "no call left under the rate limit in this invocation: back to the source",
                    retry_after_seconds=self._come_back_in(installation, 0.0),
                )
            deadline.require("vercel_call", "the Vercel call")
            token = installation.token
            assert token is not None
            started = time.perf_counter()
            tries.calls += 1
            try:
                with deadline.limit("vercel_call"), self._waiting("vercel"):
                    self.vercel.import_resource(installation.id, item.record.resource_id, body, token=token)
                return (time.perf_counter() - started) * 1000
            except TransientSyncError as error:
                if error.http_status == 401:
                    if self._refresh_token(installation, token, deadline):
                        self.observer.call_failed(item.change, error, retry_in_seconds=0.0)
                        continue
                    self.observer.call_failed(item.change, error, retry_in_seconds=None)
                    raise
                failed_calls += 1
                if error.http_status == 429:
                    self._pause(installation, error, failed_calls, deadline)
                delay = self.retry_policy.delay_seconds(failed_calls, error.retry_after_seconds, self._uniform)
                if failed_calls >= self.retry_policy.max_calls or delay > deadline.spare_seconds("vercel_call"):
                    self.observer.call_failed(item.change, error, retry_in_seconds=None)
                    raise
                self.observer.call_failed(item.change, error, retry_in_seconds=delay)
                self._sleep_waiting(delay)

    def _acquire_call(self, installation: Installation, deadline: Deadline) -> bool:
        assert self.rate_limiter is not None
        with self._waiting("limiter"):
            return self.rate_limiter.acquire(installation.id, max_wait_seconds=deadline.spare_seconds("vercel_call"))

    def _pause(
        self, installation: Installation, error: TransientSyncError, failed_calls: int, deadline: Deadline
    ) -> None:
        seconds = error.retry_after_seconds
        if seconds is None:
            seconds = self.retry_policy.backoff_seconds(failed_calls, lambda _low, high: high)
        with installation.lock:
            installation.paused_until = max(installation.paused_until, self._monotonic() + seconds)
        # Shared with the other instances (best effort: the bucket's own spacing still holds).
        if self.rate_limiter is not None and deadline.allows_best_effort_aws_call():
            with deadline.limit("aws_read"):
                self.rate_limiter.pause(installation.id, seconds)

    def _wait_while_paused(self, installation: Installation, deadline: Deadline) -> None:
        while True:
            # Read without the lock (one attribute: atomic), as every call does; only writers take it.
            wait = installation.paused_until - self._monotonic()
            if wait <= 0:
                return
            if wait > deadline.spare_seconds("vercel_call"):
                raise TransientSyncError(
                    f"Vercel asked to wait {wait:.1f} s (429) and this invocation cannot: back to the source",
                    http_status=429,
                    retry_after_seconds=self._come_back_in(installation, wait),
                )
            self._sleep_waiting(wait)

    def _come_back_in(self, installation: Installation, wait: float) -> float:
        """When a record sent back for want of a call should return: after ``wait``, one call
        interval after the installation's previous one sent back."""
        with installation.lock:
            installation.deferred += 1
            return wait + installation.deferred * self.call_interval_seconds

    # ------------------------------------------------------------------ failures

    def _after_transient(
        self,
        change: SourceChange,
        error: TransientSyncError,
        secret_values: list[str],
        deadline: Deadline,
        *,
        calls: int,
    ) -> RecordResult:
        parked = self._park_if_old(change, error, secret_values, deadline, calls=calls)
        if parked is not None:
            return parked
        error = copy.copy(error)  # may be shared by several records
        error.message = truncate(scrub_text(error.message, secret_values))
        self.observer.retrying(change, error)
        return RecordResult(None, error)

    def _bug(
        self, change: SourceChange, error: Exception, deadline: Deadline, tokens: Iterable[str] = ()
    ) -> RecordResult:
        # A bug, not a verdict on the record: back to the source (after its retries, its dead-letter
        # path holds it until a fix is deployed), or parked if too old for that. Nothing quotes or
        # chains the original error: its text may quote a secret.
        self.observer.unexpected(change, error)
        transient = TransientSyncError(f"unexpected {type(error).__name__} (a bug; see the error log)")
        try:
            parked = self._park_if_old(change, transient, tokens, deadline, calls=0)
        except Exception:  # noqa: BLE001 - parking hit a bug too: the source keeps the record
            parked = None
        return parked or RecordResult(None, transient)

    def _park_if_old(
        self,
        change: SourceChange,
        error: TransientSyncError,
        secret_values: Iterable[str],
        deadline: Deadline,
        *,
        calls: int,
    ) -> RecordResult | None:
        """A stream record still failing this close to the end of the stream's 24 h is parked whole
        (replayable) rather than sent back to hold its shard until it expires."""
        age = change.position.stream_age_seconds(self._clock())
        limit = self.park_stream_records_after_seconds
        if age is None or limit is None or age < limit:
            return None
        return self._park(change, RetriesExhaustedError.in_stream(error, age), secret_values, deadline, calls=calls)

    def _park(
        self,
        change: SourceChange,
        error: PermanentSyncError,
        secret_values: Iterable[str],
        deadline: Deadline,
        *,
        calls: int,
    ) -> RecordResult:
        secret_values = list(secret_values)
        # A copy: one error may be shared by several records (a token read's, a coalesced call's).
        error = copy.copy(error)
        if error.vercel_error is not None:
            error.vercel_error = scrub_error_body(
                error.vercel_error, secret_values, complete=error.vercel_error_complete
            )
        error.message = truncate(scrub_text(error.message, secret_values))
        if self.failed_records is None:
            return self._back_to_source(
                change,
                f"{error.reason}: {error.message} (no failed-records queue configured: back to the source)",
                error,
            )
        message = build_failed_record_message(
            change, error, failed_at=self._clock(), secret_values=secret_values, calls=calls
        )
        refused: str | None = None
        try:
            with deadline.bound("park", "sending it to the failed-records queue"), self._waiting("park"):
                self.failed_records.park(message)
        except TransientSyncError as exc:
            refused = exc.message
        except Exception as exc:  # noqa: BLE001 - any failure to park means the source must keep the record
            refused = f"the failed-records queue did not take it ({type(exc).__name__})"
        if refused is not None:
            return self._back_to_source(change, f"{error.reason}: {error.message}; {refused}", error)
        self.observer.parked(change, error)
        return DONE["parked"]

    def _back_to_source(self, change: SourceChange, message: str, error: PermanentSyncError) -> RecordResult:
        transient = TransientSyncError(message, http_status=error.http_status)
        self.observer.retrying(change, transient)
        return RecordResult(None, transient)
