"""One invocation, as Lambda makes it: a fresh context whose clock runs down, the handler's outcome."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tools.lambda_local import LambdaContext

Handler = Callable[[dict[str, Any], Any], Any]
"""A Lambda handler: ``(event, context) -> response`` (the real ones return ``{"batchItemFailures": [...]}``)."""

DEFAULT_FUNCTION_TIMEOUT_SECONDS = 60.0  # the template's Globals.Function.Timeout


@dataclass
class CountdownContext(LambdaContext):
    """The harness's LambdaContext, with the remaining time counting down from the invocation's start."""

    deadline: float = 0.0  # time.monotonic() at which Lambda would stop the invocation

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.monotonic()) * 1000))


@dataclass(frozen=True)
class Invocation:
    """How one call of the handler ended: its response, or why Lambda would count it as an error."""

    request_id: str
    function_arn: str
    response: Any = None
    error: str | None = None  # e.g. "raised ValueError", "timed out after 60 s"


def invoke(handler: Handler, event: dict[str, Any], *, function_name: str, timeout_seconds: float) -> Invocation:
    """Call ``handler(event, context)`` once, as Lambda does.

    An exception becomes an error (its type only: messages can hold secrets). Lambda would stop a
    handler at its timeout; this cannot stop a Python call, so one that returns late is counted
    as timed out, and its response ignored, as Lambda would.
    """
    started = time.monotonic()
    context = CountdownContext(
        function_name=function_name,
        aws_request_id=str(uuid.uuid4()),
        remaining_ms=int(timeout_seconds * 1000),
        deadline=started + timeout_seconds,
    )
    base = {"request_id": context.aws_request_id, "function_arn": context.invoked_function_arn}
    try:
        response = handler(event, context)
    except Exception as exc:  # noqa: BLE001 - any exception is a function error to Lambda
        return Invocation(**base, error=f"raised {type(exc).__name__}")
    if time.monotonic() > context.deadline:
        return Invocation(**base, error=f"timed out after {timeout_seconds:g} s")
    return Invocation(**base, response=response)


@dataclass(frozen=True)
class PollResult:
    """What one ``poll_once`` did. ``records == 0``: there was nothing to deliver (no invocation)."""

    source: str
    records: int = 0
    reported: tuple[str, ...] = ()  # item identifiers the handler reported failed
    error: str | None = None  # the invocation failed as a whole (raised, timed out, invalid response)
    outcome: str = "idle"  # idle | ok | partial | failed | bisected | gave up
    notes: tuple[str, ...] = field(default_factory=tuple)  # what the poller did about it

    @property
    def delivered(self) -> bool:
        return self.records > 0

    def describe(self) -> str:
        """One line, for humans: counts and identifiers only, never record contents."""
        if not self.delivered:
            return f"{self.source}: nothing to deliver"
        parts = [f"{self.records} record{'s' if self.records != 1 else ''} in"]
        if self.error:
            parts.append(f"handler {self.error}")
        elif self.reported:
            parts.append(f"{len(self.reported)} reported failed")
        else:
            parts.append("no failures")
        return f"{self.source}: {', '.join([*parts, *self.notes])}"
