"""One rate limit per installation for every concurrent invocation: call slots from a shared bucket.

Vercel allows ``N`` imports per ``T`` seconds per installation (``VERCEL_RATE_LIMIT``, 100/60 by
default). Several Lambda instances sync one installation at once, each with up to
``MAX_CONCURRENCY`` threads. They share one bucket, an item of the sync-state table
(``pk = "ratelimit#" + installation_id``), and take *call slots* from it: absolute epoch times at
which one call may be made. The protocol the pipeline calls:

``acquire(installation_id, *, max_wait_seconds) -> bool``
    Waits (sleeping inside, at most ``max_wait_seconds``) until this thread's slot comes, and
    returns True: make the call now. False when no slot can come in time (the record goes back
    to its source); False is answered early, without sleeping, once the bucket shows that no
    slot can be had before the deadline. A reservation takes a DynamoDB round trip, so with
    ``max_wait_seconds=0`` the shared limiter grants only a slot this container already holds.
    Call it immediately before the request (after the token and secrets are read): the
    argument below counts on the call leaving at its slot.
``pause(installation_id, seconds)``
    Vercel answered 429 with ``Retry-After: seconds``: the bucket is drained until then, so no
    caller anywhere gets a slot before it.

The bucket: GCRA, a token bucket in one number
----------------------------------------------
The item holds ``tatUs``, the bucket's *theoretical arrival time* (epoch microseconds), for a
token bucket of capacity ``B`` refilled at ``r = 1/I`` tokens per second. A call at time ``s``
conforms when ``s >= tat - (B - 1)·I``, and then ``tat = max(tat, s) + I``. A reservation of
``k`` slots for ``k`` waiting threads computes the earliest conforming times (``B`` at once after
an idle spell, then one every ``I``) and writes the new ``tat`` in one UpdateItem:

- while a backlog keeps the bucket empty (``tat - (B-1)·I >= now``) the slots follow from
  ``tat`` alone, so the write is an atomic increment, ``SET tatUs = tatUs + k·I`` with the
  condition ``tatUs BETWEEN lo AND hi`` (still empty, and late enough slots still fit the
  waiters' deadlines), returning the new ``tat``: concurrent instances never conflict;
- otherwise (tokens left after an idle spell) the slots depend on ``now``: a conditional write
  of the computed ``tat`` (``tatUs = :old``; or, when the state known is a full bucket or none,
  ``attribute_not_exists(pk) OR tatUs <= :now``: any full bucket gives the slots a missing item
  gives), retried on ConditionalCheckFailed from the item DynamoDB returns with the failure
  (``ReturnValuesOnConditionCheckFailure=ALL_OLD``: no extra read) after a small random jitter.

``tat`` only grows, so an equality condition cannot be fooled by a value coming back (no ABA).
Each container remembers the last state it saw and writes against it without a read: its first
write for an installation succeeds when the bucket is full (the installation made no call for a
while, ``tat <= now``); otherwise it, or one against a stale state, may fail once and learn the
item from the failure. A waiter that cannot be served in time costs at most that one failed write;
later waiters with earlier deadlines are answered from what it learned, without a call.
Slots are reserved only for threads waiting now and only up to their deadlines: a slot goes to
the waiting thread with the earliest deadline it meets, and a thread sleeps until its slot.
There is no lease to give back: a slot is a time, used by the thread it was reserved for. A slot
not used within ``LATE_GRACE_SECONDS`` of its time (the thread woke late, or the reservation
came back too late) lapses: it is never used late. So slots are planned from when the write's
answer is expected back (the last round trip measured), not from when it left: a slow DynamoDB
delays each call by its round trip rather than lapsing every slot it reserves. Lapses, and slots
reserved just before a ``pause``, only cost throughput, never the limit. One write serves every thread of the
invocation waiting at that moment; under a steady backlog, threads come back one at a time,
so it is about one UpdateItem per call (1 WCU: the item is tiny), and fewer at the start of a
batch. Reserving extra slots ahead for threads that may come back would save writes but waste
the slots each invocation leaves unused, and those are the scarce resource.

Fairness: reservations are served in the order they reach DynamoDB, first come first served
across instances, each instance taking slots only for the threads it has waiting (at most
``MAX_CONCURRENCY``), so no instance can hoard the limit.

The argument: all callers together never exceed Vercel's count
----------------------------------------------------------------
Vercel (and the emulator's ``FixedWindowRateLimiter``) admits ``N`` calls in a window of ``T``
seconds that opens at the first call after the previous window ended. So it suffices that any
``N + 1`` consecutive calls *arrive* more than ``T`` apart.

1. GCRA: after the slot ``s_1``, ``tat >= s_1 + I``, and each later slot raises ``tat`` by at
   least ``I``; the ``j``-th slot after it needs ``s_j >= tat - (B-1)·I``. So
   ``s_{N+1} - s_1 >= (N + 1 - B)·I``. A pause only raises ``tat``.
2. A call leaves at its slot plus at most ``LATE_GRACE_SECONDS`` (a later wake-up lapses the
   slot), and reaches Vercel after the network's delay, which varies by at most the jitter
   ``J``; slots are written in the clock of the instance that reserved them, and instances'
   clocks differ by at most ``CLOCK_SKEW_SECONDS``. So arrivals of calls ``1`` and ``N + 1``
   are at least ``(N + 1 - B)·I - M`` apart, with ``M = skew + grace + J``.
3. Hence with ``I = (T + M) / (N + 1 - B)`` (rounded up to a microsecond), ``N + 1`` calls are
   at least ``T`` apart at Vercel: no window ever holds more than ``N``. In token-bucket terms,
   ``B + r·(T + M) <= N + 1``: the continuous bound ``B + r·τ`` counts one call more than any
   sequence of calls can reach, so ``N + 1`` rather than ``N`` is exact, not optimistic (the
   unit tests check the span on random reservation sequences).

The parameters (:meth:`BucketParameters.for_limit`): ``B = max(1, round(0.05·N))`` (a small
burst, so a quiet installation's few changes go out at once), ``J = max(0.1 s, 0.02·T)``,
``M = 0.05 + 0.1 + J`` seconds. For 100/60: ``B = 5``, ``M = 1.35 s``, ``r = 96/61.35 = 1.565/s``,
93.9% of Vercel's 1.667/s. For 50/5: ``B = 2``, ``M = 0.25 s``, ``r = 49/5.25 = 9.33/s``, 93.3%. Under
a backlog the rate is ``r`` (after the first ``B``), about ``0.95·T/(T + M)`` of the limit: at
least 90% for any ``N`` when ``T >= 5 s``. The shorter the window, the more the fixed part of
``M`` weighs (20/2 would get 84%).
The margin covers what it names; a call stuck longer in the network (a SYN retransmitted, a
slow TLS handshake) could still meet a 429, which ``pause`` then turns into a drain for all.

Clocks: slots are absolute epoch times from the caller's clock (``time.time`` by default,
injectable with ``sleep`` for tests), so instances agree on them. Lambda hosts keep their clocks
synchronised to the Amazon Time Sync Service (NTP, typically well under a millisecond apart);
``CLOCK_SKEW_SECONDS`` budgets 50 ms. A clock that is stepped (not slewed) by more than that would
break the argument for the calls around the step.

When DynamoDB fails
-------------------
Throttling, timeouts, network errors, a missing table or a denied write: the reservation fails,
no slot is given, and the installation's next reservation waits a jittered backoff (0.1 s
doubling to 2 s). Waiting threads keep waiting for a later reservation until their deadline, then
``acquire`` returns False and the record goes back to its source. Nothing falls back to a
per-container bucket: several instances doing so could together exceed the limit, silently. The
first failure after a success is logged (the error's code only). ``pause`` applies locally at
once and writes the drain to the table; if that write fails, only this container is paused.

Without ``SYNC_STATE_TABLE``, :class:`InProcessRateLimiter` runs the same bucket in memory: it
bounds the calls of one container only, and cannot bound several concurrent instances (use the
table whenever more than one instance may sync an installation).

The item: ``pk`` (S), ``kind = "ratelimit"``, ``installationId`` (S), ``tatUs`` (N, epoch µs),
``pausedUntilUs`` (N, epoch µs, after a pause), ``expiresAt`` (N, epoch seconds: the table's TTL,
a day after the last reservation; an expired bucket is a full one).
"""

from __future__ import annotations

import contextlib
import logging
import math
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from vercel_sync.adapters.aws_clients import LazyClient
from vercel_sync.settings import RateLimit, Settings

logger = logging.getLogger(__name__)

MICROSECONDS = 1_000_000
PK_PREFIX = "ratelimit#"
ITEM_KIND = "ratelimit"
ITEM_TTL_SECONDS = 86_400

# The bucket's parameters (see the module docstring for the argument).
BURST_FRACTION = 0.05
CLOCK_SKEW_SECONDS = 0.05
LATE_GRACE_SECONDS = 0.1
NETWORK_JITTER_FLOOR_SECONDS = 0.1
NETWORK_JITTER_FRACTION = 0.02

# Optimistic writes: attempts per reservation, and the jitter between them.
MAX_WRITE_ATTEMPTS = 8
CONFLICT_JITTER_SECONDS = 0.01
# After a failed reservation (DynamoDB error, or conflicts past MAX_WRITE_ATTEMPTS).
ERROR_BACKOFF_FIRST_SECONDS = 0.1
ERROR_BACKOFF_MAX_SECONDS = 2.0
# Slots are reserved from when a write's answer is expected (its last round trip, at most this):
# from when it left, every slot would lapse on arrival once a round trip outlasts the late grace.
MAX_ROUND_TRIP_LEAD_SECONDS = 2.0
# A wait longer than this is taken as this (slots are integers of microseconds, deadlines too).
MAX_WAIT_SECONDS = 86_400.0

CONDITIONAL_CHECK_FAILED = "ConditionalCheckFailedException"


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
        """``B`` and ``I`` such that ``N + 1`` calls span at least ``T + M`` (module docstring)."""
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

    def fraction_of(self, limit: RateLimit) -> float:
        """The steady rate as a fraction of the limit's (``r·T/N``)."""
        return self.rate * limit.seconds / limit.calls


# -- the reservation arithmetic (pure, integer microseconds) ------------------------------------


@dataclass(frozen=True)
class Plan:
    """Slots for the waiting threads, given the bucket's ``tat`` (``None``: no item yet) at ``now``."""

    slots: tuple[int, ...]
    new_tat: int
    # The bucket was empty: the slots follow from tat alone, written as an atomic increment
    # valid while tat stays within [lo, hi].
    queued: bool
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


# -- shared state: in memory, or an item of the sync-state table ---------------------------------


@dataclass(frozen=True)
class Reservation:
    slots: tuple[int, ...]
    next_free: int  # the earliest slot a later reservation could get (a lower bound)
    paused_until: int  # 0: no pause known


class ReservationFailedError(Exception):
    """The shared bucket could not be updated (the error's code or type, never more)."""


@dataclass
class LimiterStats:
    """Counters, for tests, benchmarks and metrics."""

    granted: int = 0
    lapsed: int = 0
    reservations: int = 0
    dynamodb_calls: int = 0
    conflicts: int = 0
    errors: int = 0


class _MemoryBucketStore:
    """The buckets of one container, in memory."""

    remote = False

    def __init__(self, params: BucketParameters, stats: LimiterStats, stats_lock: threading.Lock) -> None:
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
            tat = self._tat.get(installation_id)
            return Reservation(
                plan.slots, next_free_slot(self._params, tat, now), self._paused_until.get(installation_id, 0)
            )

    def pause(self, installation_id: str, until: int, now: int) -> None:
        with self._lock:
            floor = until + self._params.tolerance_us
            self._tat[installation_id] = max(self._tat.get(installation_id, floor), floor)
            self._paused_until[installation_id] = max(self._paused_until.get(installation_id, 0), until)


@dataclass(frozen=True)
class _ItemState:
    tat: int
    paused_until: int


class _DynamoDbBucketStore:
    """The buckets as items of the sync-state table, updated with conditional writes."""

    remote = True

    def __init__(
        self,
        table_name: str,
        params: BucketParameters,
        stats: LimiterStats,
        stats_lock: threading.Lock,
        client_factory: Callable[[], Any],
        sleep: Callable[[float], None],
        rng: random.Random,
    ) -> None:
        self._table = table_name
        self._params = params
        self._stats = stats
        self._stats_lock = stats_lock
        self._client_factory = client_factory
        self._sleep = sleep
        self._rng = rng
        # The last state seen per installation: the next write is tried against it, without a read.
        self._known: dict[str, _ItemState | None] = {}
        self._round_trip_us = 0  # the last write's, measured

    def reserve(self, installation_id: str, now_us: Callable[[], int], deadlines: Sequence[int]) -> Reservation:
        state = self._known.get(installation_id)
        for attempt in range(MAX_WRITE_ATTEMPTS):
            if attempt:
                self._sleep(self._rng.uniform(0, CONFLICT_JITTER_SECONDS))
            sent = now_us()
            now = sent + self._round_trip_us  # when the answer should be back (MAX_ROUND_TRIP_LEAD_SECONDS)
            plan = plan_reservation(self._params, None if state is None else state.tat, now, deadlines)
            if not plan.slots:
                tat = None if state is None else state.tat
                return Reservation((), next_free_slot(self._params, tat, now), _paused(state))
            try:
                if plan.queued:
                    new_state = self._increment(installation_id, len(plan.slots), plan.lo, plan.hi, now)
                    first = new_state.tat - len(plan.slots) * self._params.interval_us - self._params.tolerance_us
                    slots = tuple(first + j * self._params.interval_us for j in range(len(plan.slots)))
                else:
                    new_state = self._replace(installation_id, state, plan.new_tat, now)
                    slots = plan.slots
            except _ConditionFailed as failure:
                state = failure.state
                self._known[installation_id] = state
                continue
            finally:
                lead = min(now_us() - sent, int(MAX_ROUND_TRIP_LEAD_SECONDS * MICROSECONDS))
                self._round_trip_us = max(0, lead)
            self._known[installation_id] = new_state
            return Reservation(slots, next_free_slot(self._params, new_state.tat, now), new_state.paused_until)
        raise ReservationFailedError("conflicting writes")

    def pause(self, installation_id: str, until: int, now: int) -> None:
        floor = until + self._params.tolerance_us
        try:
            self._known[installation_id] = self._update(
                installation_id,
                "SET #tat = :tat, #paused = :paused, #exp = :exp, #kind = :kind, #installation = :installation",
                "attribute_not_exists(pk) OR #tat < :tat",
                {
                    ":tat": _number(floor),
                    ":paused": _number(until),
                    ":exp": _number(_expires_at(max(floor, now))),
                    ":kind": {"S": ITEM_KIND},
                    ":installation": {"S": installation_id},
                },
            )
        except _ConditionFailed:
            # tat is already past the pause (a deeper queue): only record the pause, for the
            # instances holding slots inside it (no change if someone paused for longer).
            with contextlib.suppress(_ConditionFailed):
                self._known[installation_id] = self._update(
                    installation_id,
                    "SET #paused = :paused",
                    "attribute_not_exists(#paused) OR #paused < :paused",
                    {":paused": _number(until)},
                )

    def _increment(self, installation_id: str, count: int, lo: int, hi: int, now: int) -> _ItemState:
        return self._update(
            installation_id,
            "SET #tat = #tat + :step, #exp = :exp",
            "#tat BETWEEN :lo AND :hi",
            {
                ":step": _number(count * self._params.interval_us),
                ":lo": _number(lo),
                ":hi": _number(hi),
                ":exp": _number(_expires_at(now)),
            },
        )

    def _replace(self, installation_id: str, state: _ItemState | None, tat: int, now: int) -> _ItemState:
        values = {
            ":tat": _number(tat),
            ":exp": _number(_expires_at(now)),
            ":kind": {"S": ITEM_KIND},
            ":installation": {"S": installation_id},
        }
        if state is None or state.tat <= now:
            # A bucket whose tat is not after now is full, and every full bucket gives the same
            # slots as a missing item (plan_reservation): so the write holds for any such item.
            # A container's first write for an installation idle since its last call (a cold
            # start's) then succeeds without first learning the item from a failed write.
            condition = "attribute_not_exists(pk) OR #tat <= :now"
            values[":now"] = _number(now)
        else:
            condition = "#tat = :old"
            values[":old"] = _number(state.tat)
        return self._update(
            installation_id,
            "SET #tat = :tat, #exp = :exp, #kind = :kind, #installation = :installation",
            condition,
            values,
        )

    def _update(
        self, installation_id: str, update: str, condition: str, values: dict[str, dict[str, str]]
    ) -> _ItemState:
        from botocore.exceptions import BotoCoreError, ClientError

        names = {
            "#tat": "tatUs",
            "#paused": "pausedUntilUs",
            "#exp": "expiresAt",
            "#kind": "kind",
            "#installation": "installationId",
        }
        used = update + " " + condition
        with self._stats_lock:
            self._stats.dynamodb_calls += 1
        try:
            answer = self._client_factory().update_item(
                TableName=self._table,
                Key={"pk": {"S": PK_PREFIX + installation_id}},
                UpdateExpression=update,
                ConditionExpression=condition,
                ExpressionAttributeNames={k: v for k, v in names.items() if k in used},
                ExpressionAttributeValues=values,
                ReturnValues="ALL_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code = str(error.get("Code") or "ClientError")
            if code == CONDITIONAL_CHECK_FAILED:
                with self._stats_lock:
                    self._stats.conflicts += 1
                item = exc.response.get("Item")
                raise _ConditionFailed(_item_state(item) if isinstance(item, dict) and item else None) from None
            raise ReservationFailedError(code) from None
        except BotoCoreError as exc:
            raise ReservationFailedError(type(exc).__name__) from None
        item = answer.get("Attributes") if isinstance(answer, dict) else None
        state = _item_state(item) if isinstance(item, dict) else None
        if state is None:
            raise ReservationFailedError("no attributes returned")
        return state


class _ConditionFailed(Exception):
    def __init__(self, state: _ItemState | None) -> None:
        super().__init__("conditional check failed")
        self.state = state


def _paused(state: _ItemState | None) -> int:
    return 0 if state is None else state.paused_until


def _number(value: int) -> dict[str, str]:
    return {"N": str(value)}


def _expires_at(now_us: int) -> int:
    return now_us // MICROSECONDS + ITEM_TTL_SECONDS


def _item_state(item: dict[str, Any]) -> _ItemState | None:
    try:
        tat = int(item["tatUs"]["N"])
        paused = int(item["pausedUntilUs"]["N"]) if "pausedUntilUs" in item else 0
    except (KeyError, TypeError, ValueError):
        return None
    return _ItemState(tat, paused)


# -- the limiter: waiting threads, their slots, one reservation in flight per installation --------


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


class BucketStore(Protocol):
    """Where the buckets live: this container's memory, or the sync-state table."""

    @property
    def remote(self) -> bool:
        """True when a reservation is a network call (made in a thread of its own)."""
        ...

    def reserve(self, installation_id: str, now_us: Callable[[], int], deadlines: Sequence[int]) -> Reservation: ...

    def pause(self, installation_id: str, until: int, now: int) -> None: ...


class SlotRateLimiter:
    """The waiting and the slots; the bucket itself is the store's (memory or DynamoDB)."""

    def __init__(
        self,
        limit: RateLimit,
        store_factory: Callable[[BucketParameters, LimiterStats, threading.Lock], BucketStore],
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
        self._store = store_factory(self.params, self._stats, self._stats_lock)
        self._installations: dict[str, _Installation] = {}

    def stats(self) -> LimiterStats:
        with self._stats_lock:
            return LimiterStats(**vars(self._stats))

    def _now_us(self) -> int:
        return int(self._clock() * MICROSECONDS)

    def _installation(self, installation_id: str) -> _Installation:
        with self._lock:
            state = self._installations.get(installation_id)
            if state is None:
                state = self._installations[installation_id] = _Installation(threading.Condition(self._lock))
            return state

    # -- the protocol -------------------------------------------------------------------------

    def acquire(self, installation_id: str, *, max_wait_seconds: float) -> bool:
        wait = max_wait_seconds if math.isfinite(max_wait_seconds) else MAX_WAIT_SECONDS
        deadline = self._clock() + min(max(0.0, wait), MAX_WAIT_SECONDS)
        state = self._installation(installation_id)
        waiter = _Waiter(deadline)
        with state.cond:
            state.waiters.append(waiter)
            try:
                return self._wait_for_slot(installation_id, state, waiter)
            finally:
                state.waiters.remove(waiter)
                if waiter.slot is not None:  # not granted (cannot happen today): another may use it
                    state.pool.append(waiter.slot)
                    state.pool.sort()

    def pause(self, installation_id: str, seconds: float) -> None:
        now = self._clock()
        until = now + (min(max(0.0, seconds), MAX_WAIT_SECONDS) if math.isfinite(seconds) else MAX_WAIT_SECONDS)
        state = self._installation(installation_id)
        with state.cond:
            self._apply_pause(state, until)
            state.cond.notify_all()
        try:
            self._store.pause(installation_id, int(until * MICROSECONDS), int(now * MICROSECONDS))
        except Exception as exc:  # noqa: BLE001 - the pause holds here; the table could not be told
            with self._stats_lock:
                self._stats.errors += 1
            logger.warning("rate limiter: could not record a pause in the table (%s)", _describe(exc))

    # -- inside --------------------------------------------------------------------------------

    def _wait_for_slot(self, installation_id: str, state: _Installation, waiter: _Waiter) -> bool:
        grace = self.params.late_grace_seconds
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
                with self._stats_lock:
                    if now - slot <= grace:
                        self._stats.granted += 1
                        return True
                    self._stats.lapsed += 1  # woke too late: the slot is not used late
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

    def _take_from_pool(self, state: _Installation, waiter: _Waiter, now: float) -> None:
        grace = self.params.late_grace_seconds
        lapsed = [slot for slot in state.pool if slot < now - grace or slot < state.paused_until]
        if lapsed:
            state.pool = [slot for slot in state.pool if slot not in lapsed]
            with self._stats_lock:
                self._stats.lapsed += len(lapsed)
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
            with self._stats_lock:
                if reservation is not None:
                    self._stats.reservations += 1
                else:
                    self._stats.errors += 1
            if reservation is None:
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
                state.failures = 0
                state.retry_at = 0.0
                state.next_free = reservation.next_free / MICROSECONDS
                if reservation.paused_until:
                    self._apply_pause(state, reservation.paused_until / MICROSECONDS)
                self._hand_out(state, [slot / MICROSECONDS for slot in reservation.slots], now)
            state.cond.notify_all()

    def _hand_out(self, state: _Installation, slots: list[float], now: float) -> None:
        """Each slot to the waiting thread with the earliest deadline it meets; the rest to the pool."""
        grace = self.params.late_grace_seconds
        unserved = sorted((w for w in state.waiters if w.slot is None), key=lambda w: w.deadline)
        lapsed = 0
        for slot in sorted(slots):
            if slot < now - grace or slot < state.paused_until:
                lapsed += 1
                continue
            for waiter in unserved:
                if waiter.deadline >= slot:
                    waiter.slot = slot
                    unserved.remove(waiter)
                    break
            else:
                state.pool.append(slot)
        state.pool.sort()
        if lapsed:
            with self._stats_lock:
                self._stats.lapsed += lapsed

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
            with self._stats_lock:
                self._stats.lapsed += len(revoked)


class InProcessRateLimiter(SlotRateLimiter):
    """The bucket in this container's memory: for when there is no sync-state table.

    It bounds the calls of this container only. Several concurrent Lambda instances each have
    their own, and together can exceed the limit: set ``SYNC_STATE_TABLE`` for a shared one.
    """

    def __init__(
        self,
        limit: RateLimit,
        *,
        params: BucketParameters | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        super().__init__(limit, _MemoryBucketStore, params=params, clock=clock, sleep=sleep, rng=rng)


class DynamoDbRateLimiter(SlotRateLimiter):
    """The bucket shared by every instance through the sync-state table (see the module docstring).

    ``dynamodb_client`` is a low-level boto3 DynamoDB client (thread-safe); without one, it is
    built on first use with ``boto_config`` (give it ``runtime.aws_client_config()``: short
    timeouts, one retry).
    """

    def __init__(
        self,
        table_name: str,
        limit: RateLimit,
        *,
        dynamodb_client: Any = None,
        boto_config: Any = None,
        client_factory: Callable[[], Any] | None = None,
        params: BucketParameters | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.table_name = table_name
        self._dynamodb = LazyClient("dynamodb", dynamodb_client, boto_config, client_factory)  # built on first use
        jitter_rng = rng or random.Random()  # noqa: S311 - jitter, not a secret  # nosec B311

        def store(params: BucketParameters, stats: LimiterStats, lock: threading.Lock) -> _DynamoDbBucketStore:
            return _DynamoDbBucketStore(table_name, params, stats, lock, self._dynamodb, sleep, jitter_rng)

        super().__init__(limit, store, params=params, clock=clock, sleep=sleep, rng=jitter_rng)


def build_rate_limiter(
    settings: Settings,
    *,
    dynamodb_client: Any = None,
    boto_config: Any = None,
    client_factory: Callable[[], Any] | None = None,
) -> DynamoDbRateLimiter | InProcessRateLimiter:
    """The shared limiter when the sync-state table is configured, else the per-container one."""
    if settings.sync_state_table:
        return DynamoDbRateLimiter(
            settings.sync_state_table,
            settings.rate_limit,
            dynamodb_client=dynamodb_client,
            boto_config=boto_config,
            client_factory=client_factory,
        )
    return InProcessRateLimiter(settings.rate_limit)


def _describe(error: BaseException | None) -> str:
    if isinstance(error, ReservationFailedError):
        return str(error)
    return type(error).__name__ if error is not None else "unknown"
