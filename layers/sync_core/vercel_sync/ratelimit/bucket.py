"""GCRA: a token bucket in one number, ``tat`` (theoretical arrival time, epoch µs); pure integer
arithmetic. Why it keeps every caller under Vercel's count: docs/rate-limiter.md."""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from vercel_sync.settings import RateLimit

MICROSECONDS = 1_000_000

# The margin M = skew + grace + jitter (docs/rate-limiter.md, "The parameters").
BURST_FRACTION = 0.05
CLOCK_SKEW_SECONDS = 0.05
LATE_GRACE_SECONDS = 0.1
NETWORK_JITTER_FLOOR_SECONDS = 0.1
NETWORK_JITTER_FRACTION = 0.02


@dataclass(frozen=True)
class BucketParameters:
    """Capacity ``B`` and emission interval ``I = 1/r`` (µs) of the bucket for one rate limit."""

    capacity: int
    interval_us: int
    late_grace_seconds: float
    margin_seconds: float

    @property
    def rate(self) -> float:
        """Tokens per second (``r``)."""
        return MICROSECONDS / self.interval_us

    @property
    def tolerance_us(self) -> int:
        """``(B - 1)·I``: how far ``tat`` may be ahead of a conforming call."""
        return (self.capacity - 1) * self.interval_us

    @classmethod
    def for_limit(
        cls,
        limit: RateLimit,
        *,
        capacity: int | None = None,
        margin_seconds: float | None = None,
        late_grace_seconds: float = LATE_GRACE_SECONDS,
    ) -> BucketParameters:
        """``B`` and ``I`` such that ``N + 1`` calls span at least ``T + M`` (docs/rate-limiter.md)."""
        calls, seconds = limit.calls, limit.seconds
        burst = capacity if capacity is not None else max(1, round(BURST_FRACTION * calls))
        if not 1 <= burst <= calls:
            raise ValueError("the bucket's capacity must be between 1 and the limit's calls")
        if margin_seconds is None:
            jitter = max(NETWORK_JITTER_FLOOR_SECONDS, NETWORK_JITTER_FRACTION * seconds)
            margin_seconds = CLOCK_SKEW_SECONDS + late_grace_seconds + jitter
        if not late_grace_seconds >= 0 or not margin_seconds >= late_grace_seconds:
            raise ValueError("the margin must cover the late grace")
        interval_us = math.ceil((seconds + margin_seconds) * MICROSECONDS / (calls + 1 - burst))
        return cls(burst, interval_us, late_grace_seconds, margin_seconds)

    @classmethod
    def token_bucket(cls, limit: RateLimit) -> BucketParameters:
        """A plain token bucket: ``N`` at once, then one every ``T/N`` (for pacing one process's sends)."""
        return cls(limit.calls, math.ceil(limit.seconds * MICROSECONDS / limit.calls), 0.0, 0.0)

    def fraction_of(self, limit: RateLimit) -> float:
        """The steady rate as a fraction of the limit's (``r·T/N``)."""
        return self.rate * limit.seconds / limit.calls


@dataclass(frozen=True)
class Plan:
    """Slots for the waiting threads, given the bucket's ``tat`` (``None``: no item yet) at ``now``."""

    slots: tuple[int, ...]
    new_tat: int
    queued: bool  # the bucket was empty: written as an increment valid while tat is in [lo, hi]
    lo: int
    hi: int


def plan_reservation(params: BucketParameters, tat: int | None, now: int, deadlines: Sequence[int]) -> Plan:
    """The earliest conforming slots for the waiters whose ``deadlines`` are given (any order),
    as many as can be matched to a waiter whose deadline they meet (a prefix of the slots)."""
    interval, tolerance = params.interval_us, params.tolerance_us
    descending = sorted(deadlines, reverse=True)
    candidates: list[int] = []
    start = now - tolerance - interval if tat is None else tat  # no item: a full bucket
    t = start
    for _ in descending:
        slot = max(now, t - tolerance)
        candidates.append(slot)
        t = max(t, slot) + interval
    # k slots can be matched iff the j-th slot meets the (k-j)-th latest deadline, for each j.
    count = len(candidates)
    while count and any(candidates[j] > descending[count - 1 - j] for j in range(count)):
        count -= 1
    slots = tuple(candidates[:count])
    new_tat = start
    for slot in slots:
        new_tat = max(new_tat, slot) + interval
    queued = tat is not None and tat - tolerance >= now
    hi = min((descending[count - 1 - j] + tolerance - j * interval for j in range(count)), default=0)
    return Plan(slots, new_tat, queued, now + tolerance, hi)


def next_free_slot(params: BucketParameters, tat: int | None, now: int) -> int:
    """The earliest slot a reservation made at ``now`` would get."""
    return now if tat is None else max(now, tat - params.tolerance_us)


@dataclass(frozen=True)
class Reservation:
    slots: tuple[int, ...]
    next_free: int  # the earliest slot a later reservation could get (a lower bound)
    paused_until: int  # 0: no pause known


class ReservationFailedError(Exception):
    """The shared bucket could not be updated (the error's code or type, never more)."""


class BucketStore(Protocol):
    """Where the buckets live: this container's memory, or the sync-state table."""

    @property
    def remote(self) -> bool: ...  # True: a reservation is a network call (made in a thread of its own)

    def reserve(self, installation_id: str, now_us: Callable[[], int], deadlines: Sequence[int]) -> Reservation: ...

    def pause(self, installation_id: str, until: int, now: int) -> None: ...


class MemoryBucketStore:
    """The buckets of one container, in memory."""

    remote = False

    def __init__(self, params: BucketParameters) -> None:
        self._params = params
        self._lock = threading.Lock()
        self._tat: dict[str, int] = {}
        self._paused_until: dict[str, int] = {}

    def reserve(self, installation_id: str, now_us: Callable[[], int], deadlines: Sequence[int]) -> Reservation:
        with self._lock:
            now = now_us()
            plan = plan_reservation(self._params, self._tat.get(installation_id), now, deadlines)
            if plan.slots:
                self._tat[installation_id] = plan.new_tat
            next_free = next_free_slot(self._params, self._tat.get(installation_id), now)
            return Reservation(plan.slots, next_free, self._paused_until.get(installation_id, 0))

    def pause(self, installation_id: str, until: int, now: int) -> None:
        with self._lock:
            floor = until + self._params.tolerance_us
            self._tat[installation_id] = max(self._tat.get(installation_id, floor), floor)
            self._paused_until[installation_id] = max(self._paused_until.get(installation_id, 0), until)
