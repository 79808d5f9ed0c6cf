"""The sync of one batch of changes (docs/architecture.md): plan it, then each resource on a crew."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from vercel_sync.calls import Calls, Clock, RetryPolicy
from vercel_sync.changes import SourceChange
from vercel_sync.deadline import Deadline, TimeBudget, check_function_timeout
from vercel_sync.errors import TransientSyncError
from vercel_sync.mapping import PartnerMapping, default_mapping
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
from vercel_sync.settings import RemovalMode
from vercel_sync.sync import crew
from vercel_sync.sync.failures import Failures
from vercel_sync.sync.plan import DONE, Broken, Ignored, Parking, RecordResult, ResourceWork, Task, Unit, plan
from vercel_sync.sync.resource import ResourceSync


@dataclass(frozen=True)
class Adapters:
    """What the sync is handed. Without a failed-records queue, permanent failures go back to their
    source; without a state store, no version guard or change suppression across batches."""

    vercel: VercelApi
    secrets: SecretStore
    failed_records: FailedRecordSink | None
    observer: SyncObserver = field(default_factory=NullObserver)
    state_store: StateStore | None = None
    rate_limiter: RateLimiter | None = None
    source_queue: SourceQueue | None = None  # the queue function's, to defer messages sent back
    wrap_task: crew.Wrap | None = None  # runs a helper thread's work in the caller's trace context


@dataclass(frozen=True)
class Tuning:
    max_concurrency: int = 16
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    time_budget: TimeBudget | None = None  # None: no step is refused for lack of time
    park_stream_records_after_seconds: float | None = None
    call_interval_seconds: float = 0.6  # the rate limit's spacing of one installation's calls
    removal_mode: RemovalMode = "uninstalled"  # how a removed resource reaches Vercel (settings.py)


class SyncService:
    def __init__(
        self,
        adapters: Adapters,
        tuning: Tuning | None = None,
        clock: Clock | None = None,
        mapping: PartnerMapping | None = None,
    ) -> None:
        self.adapters = adapters
        self.tuning = tuning or Tuning()
        self.clock = clock or Clock()
        self.mapping = mapping or default_mapping()  # how the partner's items read as partner records
        self._timeout_checked = False  # at the first batch, whose time left is the function's timeout

    def sync_batch(self, changes: Sequence[SourceChange], *, time_left_ms: int | None = None) -> list[RecordResult]:
        """Each change's result, in the order given."""
        adapters, tuning, clock = self.adapters, self.tuning, self.clock
        deadline = Deadline(time_left_ms, tuning.time_budget, clock.monotonic)
        if not self._timeout_checked:
            self._timeout_checked = True
            check_function_timeout(time_left_ms, tuning.time_budget, adapters.observer.function_timeout_too_short)
        failures = Failures(
            adapters.failed_records,
            adapters.observer,
            clock,
            deadline,
            tuning.park_stream_records_after_seconds,
            mapping=self.mapping,
        )
        calls = Calls(
            adapters.secrets,
            adapters.rate_limiter,
            tuning.retry,
            clock,
            deadline,
            call_interval_seconds=tuning.call_interval_seconds,
        )
        batch = _Batch(
            [_LOST] * len(changes), ResourceSync(adapters, calls, failures, deadline, tuning.removal_mode), failures
        )
        try:
            crew.Crew(plan(changes, self.mapping), batch.run, tuning.max_concurrency, adapters.wrap_task).work()
        finally:
            adapters.observer.batch_finished(len(changes))
        return batch.results


# Every path sets a result; were one missed, the record goes back to its source.
_LOST = RecordResult(None, TransientSyncError("the record was not processed (a bug): back to the source"))
_HELD = RecordResult(None, TransientSyncError("not sent: an earlier message of its FIFO group failed"))


@dataclass(slots=True)
class _Batch:
    """One batch's run: the crew's workers write each change's result."""

    results: list[RecordResult]
    resources: ResourceSync
    failures: Failures

    def run(self, task: Task) -> None:
        if isinstance(task, ResourceWork):
            self.resources.run(task, self.results)
        elif isinstance(task, Broken):
            self.results[task.index] = self.failures.bug(task.change, task.error)
        elif isinstance(task, Ignored):
            self.failures.observer.skipped(task.change, "not_a_resource")
            self.results[task.index] = DONE["ignored"]
        elif isinstance(task, Parking):
            try:
                self.results[task.index] = self.failures.park(task.change, task.error, [], calls=0)
            except Exception as bug:  # noqa: BLE001 - never lose the record to a bug
                self.results[task.index] = self.failures.bug(task.change, bug)
        else:
            self._run_group(task)

    def _run_group(self, group: list[Unit]) -> None:
        """Stops at the group's first failure: the rest is reported and comes back after it."""
        failed = False
        for unit in group:
            indexes = unit.indexes()
            if failed:
                for index in indexes:
                    self.results[index] = _HELD
                continue
            self.run(unit)
            failed = any(self.results[index].failed for index in indexes)
