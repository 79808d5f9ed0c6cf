"""The invocation's deadline and each slow step's share of it (docs/architecture.md, "Deadline"). Pure."""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Literal

from vercel_sync.errors import TransientSyncError

# time.monotonic() at which the current step must be done; None outside any bounded step.
_STEP_ENDS_AT: ContextVar[float | None] = ContextVar("vercel_sync_step_ends_at", default=None)

# A cold start's building, and a record's steps before its slowest, in the shortest function timeout.
START_ALLOWANCE_MS = 1_000


def seconds_left() -> float | None:
    """What the current step has left (negative once it is over); None outside any bounded step."""
    ends_at = _STEP_ENDS_AT.get()
    return None if ends_at is None else ends_at - time.monotonic()


class within:  # a class, not a generator: entered once per call, it costs half as much
    """Bounds what runs inside to ``seconds`` from now, and to the enclosing bound, if any."""

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
    """The least time each kind of slow step is worth starting with (floors, not reservations)."""

    aws_call_ms: int  # one AWS call at its shortest timeouts (parking a record is one SQS send)
    vercel_call_ms: int  # the shortest Vercel call worth making
    margin_ms: int = 1_000  # returning the batch response and flushing logs and metrics

    @property
    def park_ms(self) -> int:  # parking a record (or recording an import): kept free after every step
        return self.aws_call_ms

    @property
    def record_ms(self) -> int:  # a record's slowest kind of step, then parking, then the margin
        return max(self.aws_call_ms, self.vercel_call_ms) + self.park_ms + self.margin_ms

    @property
    def least_function_timeout_ms(self) -> int:  # the template's floor
        return self.record_ms + START_ALLOWANCE_MS


def time_left_ms(context: Any) -> int | None:
    """Milliseconds left in this invocation, if the Lambda context can tell."""
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    return int(remaining()) if callable(remaining) else None


def check_function_timeout(time_left_ms: int | None, budget: TimeBudget | None, report: Callable[..., None]) -> None:
    """At the first invocation (whose time left is the function's timeout): reports a timeout no record fits in."""
    if time_left_ms is None or budget is None:
        return
    timeout_ms = math.ceil(time_left_ms / 1000) * 1000
    if timeout_ms < budget.least_function_timeout_ms:
        report(function_timeout_ms=timeout_ms, budget=budget)


Step = Literal["record", "aws_read", "vercel_call", "park"]


class Deadline:
    """The invocation's remaining time, shared by its worker threads (read-only after creation)."""

    def __init__(self, time_left_ms: int | None, budget: TimeBudget | None, monotonic: Callable[[], float]) -> None:
        self._budget = budget if time_left_ms is not None else None
        self._monotonic = monotonic
        self._ends_at = monotonic() + (time_left_ms or 0) / 1000
        # What must stay free after each step (parking, then the margin), and what each needs to start.
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
                self._after_ms[step] = budget.margin_ms + (0 if step == "park" else budget.park_ms)
                self._needs_ms[step] = least_ms + self._after_ms[step]

    def _left_ms(self) -> int:
        return int((self._ends_at - self._monotonic()) * 1000)

    def require(self, step: Step, what: str) -> None:
        if self._budget is None:
            return
        needed_ms, left_ms = self._needs_ms[step], self._left_ms()
        if left_ms < needed_ms:
            raise TransientSyncError(
                f"only {left_ms} ms left in this invocation; {what} needs {needed_ms} ms: back to the source"
            )

    @contextlib.contextmanager
    def bound(self, step: Step, what: str) -> Iterator[None]:
        """Runs a step (raising, as :meth:`require`, if it cannot start) bounded by :meth:`limit`."""
        self.require(step, what)
        with self.limit(step):
            yield

    def limit(self, step: Step) -> contextlib.AbstractContextManager[None]:
        """Bounds what runs inside to the time left minus what must stay free after ``step``."""
        if self._budget is None:
            return contextlib.nullcontext()
        return within((self._left_ms() - self._after_ms[step]) / 1000)

    def spare_seconds(self, before: Step) -> float:
        """How long one may wait and still have time for ``before`` (infinite without a budget)."""
        if self._budget is None:
            return float("inf")
        return max(0.0, (self._left_ms() - self._needs_ms[before]) / 1000)

    def allows(self, step: Step) -> bool:
        """Whether ``step`` can still start, with what must stay free after it."""
        return self._budget is None or self._left_ms() >= self._needs_ms[step]

    def allows_best_effort_aws_call(self) -> bool:
        """Whether one more AWS call that decides nothing still fits (else it is skipped)."""
        return self._budget is None or self._left_ms() >= self._needs_ms["aws_read"]

    def lease_seconds(self) -> float:
        """How long a claim must hold: the rest of this invocation (without a deadline, Lambda's longest)."""
        return 900.0 if self._budget is None else max(1.0, self._left_ms() / 1000 + 5)
