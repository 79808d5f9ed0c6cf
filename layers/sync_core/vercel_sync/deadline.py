"""The invocation's deadline, and each slow step's share of it.

Lambda ends an invocation at its timeout and then fails its whole batch, so no step may outlast
it. Rather than reserve each step's worst case before starting it, every step (an AWS call, a
Vercel call) runs *bounded*: :meth:`Deadline.bound` sets the time it may take, which is the time
left minus what parking the record after it needs and the margin for returning the response.
The adapters read that bound (:func:`seconds_left`) and cut their own timeouts to it, so a
healthy record (milliseconds) runs in any function timeout that fits parking; a step that cannot
get even its shortest useful timeout does not start, and the record goes back to its source.
The README ("Timeouts") has the figures.

The bound is a context variable: each worker thread sees its own step's. Pure: no AWS or HTTP
library here.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Literal

from vercel_sync.errors import TransientSyncError

# time.monotonic() at which the current step must be done; None outside any bounded step.
_STEP_ENDS_AT: ContextVar[float | None] = ContextVar("vercel_sync_step_ends_at", default=None)

# A cold start builds the service and its first clients inside the first invocation, and a record
# has steps before its slowest one: the shortest function timeout leaves this much for them.
START_ALLOWANCE_MS = 1_000


def seconds_left() -> float | None:
    """What the current step has left (negative once it is over); None outside any bounded step."""
    ends_at = _STEP_ENDS_AT.get()
    return None if ends_at is None else ends_at - time.monotonic()


def within(seconds: float) -> contextlib.AbstractContextManager[None]:
    """Bounds what runs inside to ``seconds`` from now, and to the enclosing bound, if any."""
    return _Within(seconds)


class _Within:
    """A class, not a generator: it is entered once per call, and costs half as much so."""

    __slots__ = ("_seconds", "_token")

    def __init__(self, seconds: float) -> None:
        self._seconds = seconds

    def __enter__(self) -> None:
        ends_at = time.monotonic() + self._seconds
        outer = _STEP_ENDS_AT.get()
        self._token = _STEP_ENDS_AT.set(ends_at if outer is None or ends_at < outer else outer)

    def __exit__(self, *exc: object) -> None:
        _STEP_ENDS_AT.reset(self._token)


@dataclass(frozen=True)
class TimeBudget:
    """The least time each kind of slow step is worth starting with (its shortest timeouts), and the
    margin kept for returning the batch response. A step never waits longer than it is bounded
    to, so these are floors, not reservations: a healthy step takes milliseconds of them."""

    aws_call_ms: int  # one AWS call at its shortest timeouts (parking a record is one SQS send)
    vercel_call_ms: int  # the shortest Vercel call worth making
    margin_ms: int = 1_000  # returning the batch response and flushing logs and metrics

    @property
    def park_ms(self) -> int:
        """Sending a record to the failed-records queue (or recording an import): kept free after
        every other step."""
        return self.aws_call_ms

    @property
    def record_ms(self) -> int:
        """What a record needs to start at all: its slowest kind of step, then parking, then the margin."""
        return max(self.aws_call_ms, self.vercel_call_ms) + self.park_ms + self.margin_ms

    @property
    def least_function_timeout_ms(self) -> int:
        """The shortest function timeout in which a healthy record syncs (the template's floor)."""
        return self.record_ms + START_ALLOWANCE_MS


def too_short_function_timeout_ms(time_left_ms: int | None, budget: TimeBudget | None) -> int | None:
    """The function's timeout (whole seconds, from the time left at the start of its first
    invocation), when it is shorter than a record needs; else None."""
    if time_left_ms is None or budget is None:
        return None
    timeout_ms = math.ceil(time_left_ms / 1000) * 1000  # Lambda's timeouts are whole seconds
    return timeout_ms if timeout_ms < budget.least_function_timeout_ms else None


def check_function_timeout(time_left_ms: int | None, budget: TimeBudget | None, report: Callable[..., None]) -> None:
    """At the first invocation: ``report(function_timeout_ms=..., budget=...)`` if no record fits the timeout."""
    too_short_ms = too_short_function_timeout_ms(time_left_ms, budget)
    if too_short_ms is not None and budget is not None:
        report(function_timeout_ms=too_short_ms, budget=budget)


Step = Literal["record", "aws_read", "vercel_call", "park"]


class Deadline:
    """The invocation's remaining time, shared by its worker threads (read-only after creation).
    Used by every service that must return before the invocation ends (sync, rotation)."""

    def __init__(self, time_left_ms: int | None, budget: TimeBudget | None, monotonic: Callable[[], float]) -> None:
        self._budget = budget if time_left_ms is not None else None
        self._monotonic = monotonic
        self._ends_at = monotonic() + (time_left_ms or 0) / 1000
        # What must stay free after each step, and what each needs to start, worked out once.
        self._after_ms: dict[str, int] = {}
        self._needs_ms: dict[str, int] = {}
        if self._budget is not None:
            budget = self._budget
            least = {
                "record": max(budget.aws_call_ms, budget.vercel_call_ms),
                "aws_read": budget.aws_call_ms,
                "vercel_call": budget.vercel_call_ms,
                "park": budget.park_ms,
            }
            for step, least_ms in least.items():
                # Every step leaves time to park the record after it (or record its import), then return.
                self._after_ms[step] = budget.margin_ms + (0 if step == "park" else budget.park_ms)
                self._needs_ms[step] = least_ms + self._after_ms[step]

    def _left_ms(self) -> int:
        return int((self._ends_at - self._monotonic()) * 1000)

    def require(self, step: Step, what: str) -> None:
        if self._budget is None:
            return
        needed_ms = self._needs_ms[step]
        left_ms = self._left_ms()
        if left_ms < needed_ms:
            raise TransientSyncError(
                f"only {left_ms} ms left in this invocation; {what} needs {needed_ms} ms: back to the source"
            )

    @contextlib.contextmanager
    def bound(self, step: Step, what: str) -> Iterator[None]:
        """Runs a step (raising, as :meth:`require`, if it cannot start) bounded to the time left
        minus what must stay free after it: the adapters cut their timeouts to that."""
        self.require(step, what)
        with self.limit(step):
            yield

    def limit(self, step: Step) -> contextlib.AbstractContextManager[None]:
        """Bounds what runs inside to the time ``step`` may take, without checking that it can
        start (for a step :meth:`require` has passed, whose failures the caller tells apart)."""
        if self._budget is None:
            return contextlib.nullcontext()
        return within((self._left_ms() - self._after_ms[step]) / 1000)

    def spare_seconds(self, before: Step) -> float:
        """How long one may wait and still have time for ``before`` (infinite without a budget)."""
        if self._budget is None:
            return float("inf")
        return max(0.0, (self._left_ms() - self._needs_ms[before]) / 1000)

    def allows_best_effort_aws_call(self) -> bool:
        """Whether one more AWS call that decides nothing (releasing a claim, sharing a 429's pause,
        deferring messages) still fits: else it is skipped, as its failure would be."""
        if self._budget is None:
            return True
        return self._left_ms() >= self._needs_ms["aws_read"]

    def lease_seconds(self) -> float:
        """How long a claim must hold: at most the rest of this invocation."""
        if self._budget is None:
            return 900.0  # Lambda's longest invocation
        return max(1.0, self._left_ms() / 1000 + 5)
