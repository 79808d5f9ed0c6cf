"""The workers of one batch: bounded concurrency, started only when they can help."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any


class Crew:
    """The workers of one batch: the calling thread, and more threads (``limit`` in all at most)
    started only when they can help, i.e. when every worker is waiting (on the network, a backoff).

    Each worker takes the next task in batch order until none is left (``deque.popleft`` is
    thread-safe): the order and the bound of one executor task per unit, without a future per unit.
    A worker about to wait calls :meth:`begin_wait`; if every worker is then waiting, tasks are left
    and the wait is expected to be long (the last wait of its kind took over ``SLOW_SECONDS``, or
    it is a sleep that long), another worker starts. So a batch whose calls take 100 ms soon has
    ``limit`` workers, each waiting on its own call, while a batch with nothing to wait for (a
    zero-latency client) runs on the calling thread alone: threads that all want the GIL only
    hand it to each other, which cost here about 40 µs per record (16 threads, no network). An
    extra worker that finds the waits short stops at its next task.
    """

    SLOW_SECONDS = 0.001

    def __init__(
        self,
        tasks: Sequence[Any],
        run_task: Callable[[Any], None],
        limit: int,
        wrap: Callable[[Callable[[], Any]], Callable[[], Any]] | None,
        local: threading.local,
    ) -> None:
        self._pending: deque[Any] = deque(tasks)
        self._run_task = run_task
        self._limit = max(1, min(limit, len(tasks)))
        self._wrap = wrap
        self._local = local
        self._lock = threading.Lock()
        self._workers = 1  # the calling thread
        self._waiting = 0
        self._long_sleeps = 0  # workers now in a sleep of known, long length (a backoff, a pause)
        self._closed = False
        # Whether the last wait of each kind took long; unknown kinds count as long.
        self._slow: dict[str, bool] = {}
        self._pool: ThreadPoolExecutor | None = None
        self._helpers: list[Future[None]] = []

    def work(self) -> None:
        """Works in the calling thread until no task is left, then waits for the other workers."""
        try:
            # Not wrapped: the calling thread already has its context (X-Ray's wrapper would clear
            # it when done, and the handler's own subsegment with it); only pool threads need it.
            self._work_as_caller()
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

    def _wrapped(self, function: Callable[[], None]) -> Callable[[], Any]:
        return self._wrap(function) if self._wrap is not None else function

    def _work_as_caller(self) -> None:
        previous = getattr(self._local, "crew", None)
        self._local.crew = self
        try:
            self._take_tasks(helper=False)
        finally:
            self._local.crew = previous

    def _work_as_helper(self) -> None:
        self._local.crew = self
        try:
            self._take_tasks(helper=True)
        finally:
            self._local.crew = None
            with self._lock:
                self._workers -= 1

    def _take_tasks(self, *, helper: bool) -> None:
        while True:
            if helper and not self._waits_are_slow():
                return  # nothing to wait for: the other workers do without this one
            try:
                task = self._pending.popleft()
            except IndexError:
                return
            self._run_task(task)

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
            if (
                long
                and self._waiting >= self._workers
                and self._workers < self._limit
                and self._pending
                and not self._closed
            ):
                self._workers += 1
                if self._pool is None:
                    self._pool = ThreadPoolExecutor(max_workers=self._limit - 1, thread_name_prefix="sync")
                try:
                    self._helpers.append(self._pool.submit(self._wrapped(self._work_as_helper)))
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
    """A wait of a worker of a :class:`Crew` (a context manager)."""

    __slots__ = ("_crew", "_kind", "_seconds", "_started")

    def __init__(self, crew: Crew, kind: str, seconds: float | None) -> None:
        self._crew, self._kind, self._seconds = crew, kind, seconds
        self._started = 0.0

    def __enter__(self) -> None:
        self._crew.begin_wait(self._kind, self._seconds)
        self._started = time.monotonic()

    def __exit__(self, *exc: object) -> None:
        self._crew.end_wait(self._kind, self._seconds, time.monotonic() - self._started)
