"""Call slots for waiting threads, from a bucket per installation (``acquire``, ``pause``: docs/rate-limiter.md)."""

from __future__ import annotations

import logging
import math
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from vercel_sync.ratelimit.bucket import (
    MICROSECONDS,
    BucketParameters,
    BucketStore,
    MemoryBucketStore,
    Reservation,
    ReservationFailedError,
)
from vercel_sync.settings import RateLimit

logger = logging.getLogger(__name__)

ERROR_BACKOFF_FIRST_SECONDS = 0.1
ERROR_BACKOFF_MAX_SECONDS = 2.0
MAX_WAIT_SECONDS = 86_400.0


@dataclass
class LimiterStats:
    """Counters, for tests, benchmarks and metrics."""

    granted: int = 0
    lapsed: int = 0
    reservations: int = 0
    dynamodb_calls: int = 0
    conflicts: int = 0
    errors: int = 0


@dataclass(eq=False)
class _Waiter:
    deadline: float
    slot: float | None = None


@dataclass(eq=False)
class _Installation:
    cond: threading.Condition
    waiters: list[_Waiter] = field(default_factory=list)
    pool: list[float] = field(default_factory=list)  # reserved slots no waiter took yet (sorted)
    fetching: bool = False
    next_free: float = 0.0
    paused_until: float = 0.0
    retry_at: float = 0.0
    failures: int = 0


class SlotRateLimiter:
    """The waiting and the slots; the bucket itself is the store's (this container's memory by default)."""

    def __init__(
        self,
        limit: RateLimit,
        store: Callable[[BucketParameters], BucketStore] = MemoryBucketStore,
        *,
        params: BucketParameters | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.limit = limit
        self.params = params or BucketParameters.for_limit(limit)
        self._clock = clock
        self._sleep = sleep
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not a secret  # nosec B311
        self._lock = threading.Lock()
        self._stats = LimiterStats()
        self._stats_lock = threading.Lock()
        self._installations: dict[str, _Installation] = {}
        self._store = store(self.params)

    def stats(self) -> LimiterStats:
        with self._stats_lock:
            return LimiterStats(**vars(self._stats))

    def _count(self, **counts: int) -> None:
        with self._stats_lock:
            for name, value in counts.items():
                setattr(self._stats, name, getattr(self._stats, name) + value)

    def _now_us(self) -> int:
        return int(self._clock() * MICROSECONDS)

    def _installation(self, installation_id: str) -> _Installation:
        with self._lock:
            state = self._installations.get(installation_id)
            if state is None:
                state = self._installations[installation_id] = _Installation(threading.Condition(self._lock))
            return state

    def acquire(self, installation_id: str, *, max_wait_seconds: float) -> bool:
        waiter = _Waiter(self._clock() + _bounded(max_wait_seconds))
        state = self._installation(installation_id)
        with state.cond:
            state.waiters.append(waiter)
            try:
                return self._wait_for_slot(installation_id, state, waiter)
            finally:
                state.waiters.remove(waiter)
                if waiter.slot is not None:  # held when the wait raised (an injected sleep may): another may use it
                    state.pool.append(waiter.slot)
                    state.pool.sort()

    def pause(self, installation_id: str, seconds: float) -> None:
        now = self._clock()
        until = now + _bounded(seconds)
        state = self._installation(installation_id)
        with state.cond:
            self._apply_pause(state, until)
            state.cond.notify_all()
        try:
            self._store.pause(installation_id, int(until * MICROSECONDS), int(now * MICROSECONDS))
        except Exception as exc:  # noqa: BLE001 - the pause holds here; the table could not be told
            self._count(errors=1)
            logger.warning("rate limiter: could not record a pause in the table (%s)", _describe(exc))

    def _wait_for_slot(self, installation_id: str, state: _Installation, waiter: _Waiter) -> bool:
        while True:
            now = self._clock()
            if waiter.slot is None:
                self._take_from_pool(state, waiter, now)
            if waiter.slot is not None:
                slot = waiter.slot
                if now < slot:
                    self._sleep_unlocked(state, slot - now)
                    continue
                waiter.slot = None
                if now - slot <= self.params.late_grace_seconds:
                    self._count(granted=1)
                    return True
                self._count(lapsed=1)  # woke too late: the slot is not used late
                continue
            if not state.fetching:
                earliest = max(state.next_free, state.paused_until, state.retry_at)
                if earliest > waiter.deadline:
                    return False  # no slot can come in time
                if now >= state.retry_at:
                    if self._store.remote and now >= waiter.deadline:
                        return False  # no time for a round trip: its slot would only lapse
                    self._start_reservation(installation_id, state)
                    continue
                if now < waiter.deadline:
                    self._sleep_unlocked(state, min(state.retry_at, waiter.deadline) - now)
                    continue
            if now >= waiter.deadline:
                return False
            state.cond.wait(timeout=waiter.deadline - now)

    def _usable(self, state: _Installation, slots: list[float], now: float) -> list[float]:
        """The slots not lapsed (counted), in order."""
        usable = [slot for slot in slots if slot >= now - self.params.late_grace_seconds and slot >= state.paused_until]
        if len(usable) < len(slots):
            self._count(lapsed=len(slots) - len(usable))
        return sorted(usable)

    def _take_from_pool(self, state: _Installation, waiter: _Waiter, now: float) -> None:
        state.pool = self._usable(state, state.pool, now)
        if state.pool and state.pool[0] <= waiter.deadline:
            waiter.slot = state.pool.pop(0)

    def _sleep_unlocked(self, state: _Installation, seconds: float) -> None:
        state.cond.release()
        try:
            self._sleep(max(0.0, seconds))
        finally:
            state.cond.acquire()

    def _start_reservation(self, installation_id: str, state: _Installation) -> None:
        """Reserve slots for every thread now waiting without one (called with the lock held)."""
        state.fetching = True
        deadlines = [int(w.deadline * MICROSECONDS) for w in state.waiters if w.slot is None]
        if self._store.remote:
            # In its own thread, so a slow DynamoDB call cannot hold a caller past its max wait.
            threading.Thread(
                target=self._reserve, args=(installation_id, state, deadlines), name="rate-limit", daemon=True
            ).start()
            return
        state.cond.release()
        try:
            self._reserve(installation_id, state, deadlines)
        finally:
            state.cond.acquire()

    def _reserve(self, installation_id: str, state: _Installation, deadlines: list[int]) -> None:
        reservation: Reservation | None = None
        error: Exception | None = None
        try:
            reservation = self._store.reserve(installation_id, self._now_us, deadlines)
        except Exception as exc:  # noqa: BLE001 - no slot this time; the caller's deadline decides
            error = exc
        with state.cond:
            state.fetching = False
            now = self._clock()
            if reservation is None:
                self._count(errors=1)
                state.failures += 1
                backoff = min(ERROR_BACKOFF_MAX_SECONDS, ERROR_BACKOFF_FIRST_SECONDS * 2 ** (state.failures - 1))
                state.retry_at = now + backoff * self._rng.uniform(0.5, 1.0)
                if state.failures == 1:
                    logger.warning(
                        "rate limiter: no call slots while the bucket cannot be updated (%s); "
                        "records wait, then go back to their source",
                        _describe(error),
                    )
            else:
                self._count(reservations=1)
                state.failures = 0
                state.retry_at = 0.0
                state.next_free = reservation.next_free / MICROSECONDS
                if reservation.paused_until:
                    self._apply_pause(state, reservation.paused_until / MICROSECONDS)
                self._hand_out(state, [slot / MICROSECONDS for slot in reservation.slots], now)
            state.cond.notify_all()

    def _hand_out(self, state: _Installation, slots: list[float], now: float) -> None:
        """Each slot to the waiting thread with the earliest deadline it meets; the rest to the pool."""
        unserved = sorted((w for w in state.waiters if w.slot is None), key=lambda w: w.deadline)
        for slot in self._usable(state, slots, now):
            waiter = next((w for w in unserved if w.deadline >= slot), None)
            if waiter is None:
                state.pool.append(slot)
            else:
                waiter.slot = slot
                unserved.remove(waiter)
        state.pool.sort()

    def _apply_pause(self, state: _Installation, until: float) -> None:
        """No slot before ``until``: drop those held here (pool and waiting threads')."""
        if until <= state.paused_until:
            return
        state.paused_until = until
        state.next_free = max(state.next_free, until)
        revoked = [slot for slot in state.pool if slot < until]
        state.pool = [slot for slot in state.pool if slot >= until]
        for waiter in state.waiters:
            if waiter.slot is not None and waiter.slot < until:
                revoked.append(waiter.slot)
                waiter.slot = None
        if revoked:
            self._count(lapsed=len(revoked))


class InProcessRateLimiter(SlotRateLimiter):
    """The bucket in this container's memory (no sync-state table): it bounds this container's calls only."""


class InstallationPacer:
    """The backfill's sends, at most ``rate`` per installation (faster only keeps messages waiting in the queue)."""

    def __init__(self, rate: RateLimit, *, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self._bucket = MemoryBucketStore(BucketParameters.token_bucket(rate))
        self._monotonic = monotonic

    def _take(self, installation_id: str) -> float:
        """Take a token if there is one (returns 0), else the seconds until there is one."""
        now = int(self._monotonic() * MICROSECONDS)
        reservation = self._bucket.reserve(installation_id, lambda: now, [now])
        return 0.0 if reservation.slots else (reservation.next_free - now) / MICROSECONDS

    def acquire(self, installation_id: str, stop: threading.Event) -> bool:
        """Wait for a token; False if ``stop`` was set first."""
        while not stop.is_set():
            wait = self._take(installation_id)
            if wait == 0:
                return True
            stop.wait(wait)
        return False


def _bounded(seconds: float) -> float:
    """A wait or a pause, between none and a day (not a finite number: a day)."""
    return min(max(0.0, seconds), MAX_WAIT_SECONDS) if math.isfinite(seconds) else MAX_WAIT_SECONDS


def _describe(error: BaseException | None) -> str:
    if isinstance(error, ReservationFailedError):
        return str(error)
    return type(error).__name__ if error is not None else "unknown"
