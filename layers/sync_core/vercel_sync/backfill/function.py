"""BackfillFunction: one invocation at a time works on a run, holding its lease, and hands both on to
a fresh invocation of itself when its time runs short (docs/operations.md, "BackfillFunction")."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

from vercel_sync.backfill.checkpoints import (
    DEFAULT_SEGMENTS,
    BackfillError,
    BackfillPlan,
    LeaseStore,
    RunState,
    new_run_id,
    start_or_resume,
    validate_run_id,
)
from vercel_sync.backfill.engine import Backfill, BackfillResult, ItemSource, MessageSink
from vercel_sync.backfill.settings import BackfillSettings
from vercel_sync.mapping import PartnerMapping
from vercel_sync.ratelimit.limiter import InstallationPacer


class Invoker(Protocol):
    def invoke_async(self, function_arn: str, payload: Mapping[str, Any]) -> None: ...


@dataclass(frozen=True)
class BackfillRequest:
    """The function's event; ``lease`` and ``invocation`` are set only when the function hands a run on."""

    run_id: str
    segments: int = DEFAULT_SEGMENTS
    installation_id: str | None = None
    product_id: str | None = None
    dry_run: bool = False
    lease: str | None = None
    invocation: int = 1
    plan_given: bool = True  # False: only a runId (resume the run with its stored plan)

    @classmethod
    def parse(cls, event: Mapping[str, Any]) -> BackfillRequest:
        if not isinstance(event, Mapping):
            raise BackfillError("the event must be a JSON object")
        run_id = event.get("runId") or new_run_id()
        if not isinstance(run_id, str):
            raise BackfillError("runId must be a string")
        segments = event.get("segments", DEFAULT_SEGMENTS)
        if not isinstance(segments, int) or isinstance(segments, bool):
            raise BackfillError("segments must be a whole number")
        for name in ("installation", "product", "lease"):
            if event.get(name) is not None and not isinstance(event.get(name), str):
                raise BackfillError(f"{name} must be a string")
        return cls(
            run_id=validate_run_id(run_id),
            plan_given=any(event.get(name) is not None for name in ("segments", "installation", "product")),
            segments=segments,
            installation_id=event.get("installation") or None,
            product_id=event.get("product") or None,
            dry_run=bool(event.get("dryRun", False)),
            lease=event.get("lease") or None,
            invocation=int(event.get("invocation", 1)),
        )


@dataclass(frozen=True)
class BackfillRunner:
    """BackfillFunction's work, on the edges it is handed (``wiring.backfill_runner`` builds them)."""

    settings: BackfillSettings
    source: ItemSource
    sink_for: Callable[[str], MessageSink]  # the run id -> the queue's sender for that run
    store: LeaseStore
    invoker: Invoker
    log: Callable[[str, dict[str, Any]], None] = lambda message, extra: None
    mapping: PartnerMapping | None = None  # the partner mapping (None: the default)

    def __call__(self, event: Mapping[str, Any], context: Any) -> dict[str, Any]:
        """One invocation, as Lambda makes it."""
        return self.handle(
            event,
            function_arn=str(context.invoked_function_arn),
            time_left_ms=lambda: int(context.get_remaining_time_in_millis()),
        )

    def handle(self, event: Mapping[str, Any], *, function_arn: str, time_left_ms: Callable[[], int]) -> dict[str, Any]:
        request = BackfillRequest.parse(event)
        plan = BackfillPlan(
            table_name=self.settings.table_name,
            queue_url=self.settings.queue_url or "",
            total_segments=request.segments,
            installation_id=request.installation_id,
            product_id=request.product_id,
        )
        if request.dry_run:
            state = RunState.new(request.run_id, plan)
            with _stop_before_the_end(time_left_ms, self.settings.stop_margin_seconds) as stop:
                result = Backfill(
                    state,
                    source=self.source,
                    sink=None,
                    checkpoints=None,
                    dry_run=True,
                    stop=stop,
                    mapping=self.mapping,
                ).run()
            return {**result.to_dict(), "dryRun": True}

        owner = request.lease or uuid.uuid4().hex
        existing = self.store.load(request.run_id)
        if existing is not None and (request.lease is not None or not request.plan_given):
            state = existing  # a continuation, or a resume by runId alone: the stored plan
        else:
            state, _ = start_or_resume(self.store, request.run_id, plan)
        if not self.store.claim(request.run_id, owner, seconds=time_left_ms() / 1000 + 60):
            raise BackfillError(f"run {request.run_id} is being worked on by another invocation")
        try:
            with _stop_before_the_end(time_left_ms, self.settings.stop_margin_seconds) as stop:
                rate = self.settings.rate
                result = Backfill(
                    state,
                    source=self.source,
                    sink=self.sink_for(request.run_id),
                    checkpoints=self.store,
                    pacer=InstallationPacer(rate) if rate else None,
                    stop=stop,
                    mapping=self.mapping,
                ).run()
        except BaseException:
            self.store.release(request.run_id, owner)  # so a retry or a new invocation can take the run at once
            raise
        return self._finish(request, plan, owner, result, function_arn)

    def _finish(
        self, request: BackfillRequest, plan: BackfillPlan, owner: str, result: BackfillResult, function_arn: str
    ) -> dict[str, Any]:
        """Done, failed, or handed to the next invocation by name."""
        summary = {**result.to_dict(), "invocation": request.invocation}
        self.log("backfill invocation finished", summary)
        run_id = request.run_id
        if result.complete:
            self.store.release(run_id, owner)
            return summary
        if not result.progressed:
            self.store.release(run_id, owner)
            why = "; ".join(result.errors)[:500] or "no time to work (is the function timeout above the stop margin?)"
            raise BackfillError(f"run {run_id} made no progress: {why}")
        if request.invocation >= self.settings.max_invocations:
            self.store.release(run_id, owner)
            raise BackfillError(
                f"run {run_id} not finished after {request.invocation} invocations; invoke again with its runId"
            )
        next_owner = uuid.uuid4().hex
        if not self.store.hand_over(run_id, owner, next_owner, seconds=300):
            raise BackfillError(f"run {run_id}: lost the lease before handing it on")
        self.invoker.invoke_async(
            function_arn,
            {
                "runId": run_id,
                "segments": plan.total_segments,
                "installation": plan.installation_id,
                "product": plan.product_id,
                "lease": next_owner,
                "invocation": request.invocation + 1,
            },
        )
        return {**summary, "continued": True}


@contextmanager
def _stop_before_the_end(time_left_ms: Callable[[], int], margin_seconds: float) -> Iterator[threading.Event]:
    """An event set when only ``margin_seconds`` of the invocation are left."""
    stop = threading.Event()
    timer = threading.Timer(max(0.0, time_left_ms() / 1000 - margin_seconds), stop.set)
    timer.daemon = True
    timer.start()
    try:
        yield stop
    finally:
        timer.cancel()
