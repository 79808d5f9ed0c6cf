"""Bounded concurrency for a batch: workers start only when every worker waits (docs/architecture.md)."""

from __future__ import annotations

import contextlib
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

Wrap = Callable[[Callable[[], Any]], Callable[[], Any]]

_local = threading.local()  # per thread: the crew it works for
_NOT_IN_A_CREW = contextlib.nullcontext()


def waiting(kind: str, seconds: float | None = None) -> contextlib.AbstractContextManager[None]:
    """Around a call that may wait (the network, a sleep of ``seconds``): the crew may start a worker."""
    crew: Crew | None = getattr(_local, "crew", None)
    return _NOT_IN_A_CREW if crew is None else Wait(crew, kind, seconds)


class Crew:
    """Runs the tasks in order: the calling thread, and up to ``limit - 1`` helpers (``wrap`` their work)."""

    SLOW_SECONDS = 0.001

    def __init__(self, tasks: Sequence[Any], run_task: Callable[[Any], None], limit: int, wrap: Wrap | None) -> None:
        self._pending: deque[Any] = deque(tasks)  # popleft is thread-safe
        self._run_task = run_task
        self._limit = max(1, min(limit, len(tasks)))
        self._wrap = wrap
        self._lock = threading.Lock()
        self._workers = 1  # the calling thread
        self._waiting = 0
        self._long_sleeps = 0  # workers now in a sleep of known, long length (a backoff, a pause)
        self._closed = False
        self._slow: dict[str, bool] = {}  # whether the last wait of each kind took long (unknown: long)
        self._pool: ThreadPoolExecutor | None = None
        self._helpers: list[Future[None]] = []

    def work(self) -> None:
        """Works in the calling thread until no task is left, then waits for the other workers."""
        try:
            # Not wrapped: X-Ray's wrapper would clear the calling thread's own context when done.
            self._take_tasks(helper=False)
        finally:
            with self._lock:
                self._closed = True  # no worker starts after this
                helpers, pool = list(self._helpers), self._pool
            try:
                for helper in helpers:
                    helper.result()  # tasks catch their own errors; this only waits
            finally:
                if pool is not None:
                    pool.shutdown(wait=True)

    def _work_as_helper(self) -> None:
        try:
            self._take_tasks(helper=True)
        finally:
            with self._lock:
                self._workers -= 1

    def _take_tasks(self, *, helper: bool) -> None:
        previous = getattr(_local, "crew", None)
        _local.crew = self
        try:
            while not helper or self._waits_are_slow():  # else the other workers do without this one
                try:
                    task = self._pending.popleft()
                except IndexError:
                    return
                self._run_task(task)
        finally:
            _local.crew = previous

    def _waits_are_slow(self) -> bool:
        with self._lock:
            # A worker sleeping out a backoff holds no task up only if another runs meanwhile.
            return self._long_sleeps > 0 or not self._slow or any(self._slow.values())

    def begin_wait(self, kind: str, seconds: float | None) -> None:
        with self._lock:
            self._waiting += 1
            long = self._slow.get(kind, True) if seconds is None else seconds > self.SLOW_SECONDS
            if seconds is not None and long:
                self._long_sleeps += 1
            everyone_waits = self._waiting >= self._workers
            if not (long and everyone_waits and self._workers < self._limit and self._pending and not self._closed):
                return
            self._workers += 1
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=self._limit - 1, thread_name_prefix="sync")
            work = self._work_as_helper if self._wrap is None else self._wrap(self._work_as_helper)
            try:
                self._helpers.append(self._pool.submit(work))
            except RuntimeError:  # no thread could start: the workers there are carry on
                self._workers -= 1

    def end_wait(self, kind: str, seconds: float | None, elapsed: float) -> None:
        with self._lock:
            self._waiting -= 1
            if seconds is not None and seconds > self.SLOW_SECONDS:
                self._long_sleeps -= 1
            if seconds is None:
                self._slow[kind] = elapsed > self.SLOW_SECONDS


class Wait:
    """A worker's wait (a context manager)."""

    __slots__ = ("_crew", "_kind", "_seconds", "_started")

    def __init__(self, crew: Crew, kind: str, seconds: float | None) -> None:
        self._crew, self._kind, self._seconds = crew, kind, seconds
        self._started = 0.0

    def __enter__(self) -> None:
        self._crew.begin_wait(self._kind, self._seconds)
        self._started = time.monotonic()

    def __exit__(self, *exc: object) -> None:
        self._crew.end_wait(self._kind, self._seconds, time.monotonic() - self._started)
