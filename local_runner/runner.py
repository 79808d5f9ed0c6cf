"""Drives several pollers in turn, one invocation at a time, until idle or until told to stop."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from local_runner.invocation import PollResult


class Poller(Protocol):
    name: str

    def poll_once(self) -> PollResult: ...

    def is_drained(self) -> bool: ...


@dataclass
class RunSummary:
    """What a run did: iterate over it for each invocation's result, in order; totals below."""

    results: list[PollResult] = field(default_factory=list)

    def add(self, result: PollResult) -> None:
        if result.delivered:
            self.results.append(result)

    def __iter__(self) -> Iterator[PollResult]:
        return iter(self.results)

    def __len__(self) -> int:
        return len(self.results)

    @property
    def invocations(self) -> int:
        return len(self.results)

    @property
    def records(self) -> int:
        return sum(result.records for result in self.results)

    @property
    def reported_failures(self) -> int:
        return sum(len(result.reported) for result in self.results)

    @property
    def failed_invocations(self) -> int:
        """Invocations that raised, timed out, or gave an invalid response."""
        return sum(result.error is not None for result in self.results)

    def describe(self) -> str:
        return (
            f"{self.invocations} invocations, {self.records} records, "
            f"{self.reported_failures} reported failed, {self.failed_invocations} failed invocations"
        )


class RunnerTimeout(TimeoutError):
    """``run_until_idle`` ran out of time before its sources went idle (``summary`` says what it did)."""

    def __init__(self, message: str, summary: RunSummary) -> None:
        super().__init__(message)
        self.summary = summary


class Runner:
    """Polls each poller in turn; sleeps ``idle_sleep_seconds`` after a round that delivered nothing.

    One invocation at a time, in this thread: the handlers share process-wide state (the
    Powertools logger and metrics), which Lambda never shares between concurrent invocations.
    ``on_invocation`` is called with the result of each invocation (e.g. to print a line).
    """

    def __init__(
        self,
        pollers: Sequence[Poller],
        *,
        idle_sleep_seconds: float = 0.25,
        on_invocation: Callable[[PollResult], None] | None = None,
    ) -> None:
        if not pollers:
            raise ValueError("a runner needs at least one poller")
        self.pollers = list(pollers)
        self.idle_sleep_seconds = idle_sleep_seconds
        self.on_invocation = on_invocation

    def run_round(self, summary: RunSummary | None = None, stop_event: threading.Event | None = None) -> bool:
        """Poll every poller once; True if any delivered records."""
        delivered = False
        for poller in self.pollers:
            if stop_event is not None and stop_event.is_set():
                break
            result = poller.poll_once()
            if result.delivered:
                delivered = True
                if summary is not None:
                    summary.add(result)
                if self.on_invocation is not None:
                    self.on_invocation(result)
        return delivered

    def run_until_idle(
        self, idle_seconds: float = 1.0, timeout_seconds: float = 60.0, stop_event: threading.Event | None = None
    ) -> RunSummary:
        """Poll until every source stays drained for ``idle_seconds``; returns each invocation's result.

        Raises :class:`RunnerTimeout` if that takes longer than ``timeout_seconds``.

        Drained: the stream has no record left to deliver nor a failed batch waiting for its
        retry; the queue holds no message, visible, in flight or delayed (so a message reported
        failed keeps the run going until it succeeds or SQS moves it to the dead-letter queue).
        Returns early, without raising, once ``stop_event`` is set.
        """
        summary = RunSummary()
        deadline = time.monotonic() + timeout_seconds
        idle_since: float | None = None
        while stop_event is None or not stop_event.is_set():
            if time.monotonic() >= deadline:
                raise RunnerTimeout(f"sources not idle after {timeout_seconds:g} s ({summary.describe()})", summary)
            if self.run_round(summary, stop_event):
                idle_since = None
                continue
            if all(poller.is_drained() for poller in self.pollers):
                idle_since = idle_since if idle_since is not None else time.monotonic()
                if time.monotonic() - idle_since >= idle_seconds:
                    break
            else:
                idle_since = None
            self._sleep(stop_event)
        return summary

    def run_forever(self, stop_event: threading.Event) -> RunSummary:
        """Poll until ``stop_event`` is set; the invocation under way when it is set is finished first."""
        summary = RunSummary()
        while not stop_event.is_set():
            if not self.run_round(summary, stop_event):
                self._sleep(stop_event)
        return summary

    def _sleep(self, stop_event: threading.Event | None) -> None:
        if stop_event is None:
            time.sleep(self.idle_sleep_seconds)
        else:
            stop_event.wait(self.idle_sleep_seconds)
