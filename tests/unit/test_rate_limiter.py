"""The rate limiter's bucket: the parameters' argument, the slots, pauses, DynamoDB failures, threads.

The DynamoDB limiter runs on moto's in-process DynamoDB through :class:`AtomicClient`, which
serialises the writes as DynamoDB does for one item (moto alone does not, see
``bench.rate_limit_workers.atomic_moto_dynamodb_writes``) and can inject failures.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError, ReadTimeoutError
from hypothesis import given, settings
from hypothesis import strategies as st
from moto import mock_aws

from tests.fakes import moto_state_table
from vercel_sync.adapters.bucket_table import DynamoDbRateLimiter, build_rate_limiter
from vercel_sync.ratelimit.bucket import MICROSECONDS, BucketParameters, plan_reservation
from vercel_sync.ratelimit.limiter import InProcessRateLimiter, SlotRateLimiter
from vercel_sync.settings import RateLimit, Settings

TABLE = "sync-state"
INSTALLATION = "icfg_rate_1"
START = 1_700_000_000.0


class FakeClock:
    """Epoch seconds that move only when someone sleeps (thread-safe)."""

    def __init__(self, start: float = START) -> None:
        self.now = start
        self._lock = threading.Lock()
        self.oversleep: list[float] = []  # extra seconds for the next sleeps, in turn

    def __call__(self) -> float:
        with self._lock:
            return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.now += max(0.0, seconds) + (self.oversleep.pop(0) if self.oversleep else 0.0)


class AtomicClient:
    """A DynamoDB client whose writes run one at a time; counts them; can fail on demand."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self._lock = threading.Lock()
        self.calls = 0
        self.fail_with: Exception | None = None

    def update_item(self, **request: Any) -> Any:
        with self._lock:
            self.calls += 1
            if self.fail_with is not None:
                raise self.fail_with
            return self._client.update_item(**request)

    def item(self, installation_id: str = INSTALLATION) -> dict[str, Any] | None:
        answer = self._client.get_item(TableName=TABLE, Key={"pk": {"S": "ratelimit#" + installation_id}})
        item: dict[str, Any] | None = answer.get("Item")
        return item


@pytest.fixture
def dynamodb() -> Iterator[AtomicClient]:
    with mock_aws():
        client = moto_state_table(TABLE)
        yield AtomicClient(client)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


LimiterFactory = Callable[..., SlotRateLimiter]


@pytest.fixture(params=["in-process", "dynamodb"])
def make_limiter(request: pytest.FixtureRequest, clock: FakeClock) -> LimiterFactory:
    """Limiters of one kind on the fake clock; DynamoDB ones share one table."""
    if request.param == "in-process":
        return lambda limit, **kw: InProcessRateLimiter(limit, clock=clock, sleep=clock.sleep, **kw)
    client = request.getfixturevalue("dynamodb")
    return lambda limit, **kw: DynamoDbRateLimiter(
        TABLE, limit, dynamodb_client=client, clock=clock, sleep=clock.sleep, **kw
    )


def grant_times(limiter: SlotRateLimiter, clock: FakeClock, count: int, *, max_wait: float = 60.0) -> list[float]:
    times = []
    for _ in range(count):
        assert limiter.acquire(INSTALLATION, max_wait_seconds=max_wait)
        times.append(clock() - START)
    return times


def assert_within_limit(times: list[float], limit: RateLimit) -> None:
    """Any N+1 calls are at least T apart: no window of Vercel's holds more than N."""
    ordered = sorted(times)
    for first, last in zip(ordered, ordered[limit.calls :], strict=False):
        assert last - first >= limit.seconds, (first, last)


# -- the parameters -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("calls", "seconds"), [(100, 60), (50, 5), (20, 2), (1, 1), (2, 10), (1000, 60), (10, 1), (240, 60)]
)
def test_parameters_keep_n_plus_one_calls_more_than_the_window_and_margin_apart(calls: int, seconds: float) -> None:
    limit = RateLimit(calls=calls, seconds=seconds)
    params = BucketParameters.for_limit(limit)
    assert 1 <= params.capacity <= calls
    assert params.margin_seconds >= params.late_grace_seconds + 0.05 + 0.1  # skew + grace + jitter
    span_us = (calls + 1 - params.capacity) * params.interval_us
    assert span_us >= (seconds + params.margin_seconds) * MICROSECONDS


def test_default_limits_run_at_over_ninety_percent() -> None:
    vercel = RateLimit(calls=100, seconds=60)
    params = BucketParameters.for_limit(vercel)
    assert params.capacity == 5
    assert params.fraction_of(vercel) == pytest.approx(96 / 61.35 * 60 / 100, abs=1e-4)  # 93.9%
    emulator_case = RateLimit(calls=50, seconds=5)
    assert BucketParameters.for_limit(emulator_case).fraction_of(emulator_case) > 0.93


@pytest.mark.parametrize("seconds", [5.0, 10.0, 60.0, 3600.0])
def test_at_least_ninety_percent_for_windows_of_five_seconds_or_more(seconds: float) -> None:
    for calls in [*range(1, 200), 500, 1000, 2000, 10_000]:
        limit = RateLimit(calls=calls, seconds=seconds)
        assert BucketParameters.for_limit(limit).fraction_of(limit) >= 0.90, calls


def test_a_margin_smaller_than_the_grace_is_refused() -> None:
    with pytest.raises(ValueError, match="margin"):
        BucketParameters.for_limit(RateLimit(calls=10, seconds=1), margin_seconds=0.05)
    with pytest.raises(ValueError, match="capacity"):
        BucketParameters.for_limit(RateLimit(calls=10, seconds=1), capacity=11)


@settings(max_examples=100, deadline=None)
@given(
    calls=st.integers(1, 60),
    seconds=st.sampled_from([0.5, 1.0, 5.0, 60.0]),
    steps=st.lists(
        st.tuples(st.integers(0, 3_000_000), st.lists(st.integers(0, 20_000_000), min_size=0, max_size=8)),
        min_size=1,
        max_size=40,
    ),
)
def test_reservations_conform_whatever_the_timing(
    calls: int, seconds: float, steps: list[tuple[int, list[int]]]
) -> None:
    """Slot sequences from any interleaving of reservations: N+1 slots span T + margin, each slot
    is not before its reservation and meets a distinct waiter's deadline."""
    params = BucketParameters.for_limit(RateLimit(calls=calls, seconds=seconds))
    tat: int | None = None
    now = 1_700_000_000 * MICROSECONDS
    slots: list[int] = []
    for advance, waits in steps:
        now += advance
        deadlines = [now + wait for wait in waits]
        plan = plan_reservation(params, tat, now, deadlines)
        assert all(slot >= now for slot in plan.slots)
        # Matched: the k-th earliest slot meets at least ... a matching exists (greedy check).
        free = sorted(deadlines)
        for slot in plan.slots:
            usable = [d for d in free if d >= slot]
            assert usable
            free.remove(usable[0])
        if plan.queued and plan.slots:
            assert tat is not None
            assert plan.lo <= tat <= plan.hi
        if plan.slots:
            tat = plan.new_tat
        slots.extend(plan.slots)
    span = (seconds + params.margin_seconds) * MICROSECONDS
    for first, last in zip(slots, slots[calls:], strict=False):
        assert last - first >= span - 1


# -- one limiter on a fake clock ---------------------------------------------------------------------


def test_a_burst_then_one_call_per_interval(make_limiter: LimiterFactory, clock: FakeClock) -> None:
    limit = RateLimit(calls=50, seconds=5)
    limiter = make_limiter(limit)
    interval = limiter.params.interval_us / MICROSECONDS
    times = grant_times(limiter, clock, 120)
    assert times[:2] == [0.0, 0.0]  # B = 2 at once
    assert times[2:5] == pytest.approx([interval, 2 * interval, 3 * interval], abs=1e-5)
    assert_within_limit(times, limit)
    assert 120 / times[-1] >= 0.93 * 10  # the steady rate: 93% of 10/s
    assert limiter.stats().granted == 120
    assert limiter.stats().lapsed == 0


def test_no_slot_in_time_answers_false_without_waiting(make_limiter: LimiterFactory, clock: FakeClock) -> None:
    limiter = make_limiter(RateLimit(calls=10, seconds=10))  # B = 1, one slot per 1.035 s
    assert limiter.acquire(INSTALLATION, max_wait_seconds=0.5)
    before = clock()
    assert not limiter.acquire(INSTALLATION, max_wait_seconds=0.5)
    assert clock() - before < 0.02  # answered at once: the next slot is a second away
    assert limiter.acquire(INSTALLATION, max_wait_seconds=2)
    assert clock() - before == pytest.approx(limiter.params.interval_us / MICROSECONDS, abs=0.02)


def test_max_wait_zero_takes_only_a_token_at_hand() -> None:
    clock = FakeClock()
    limiter = InProcessRateLimiter(RateLimit(calls=100, seconds=60), clock=clock, sleep=clock.sleep)
    assert [limiter.acquire(INSTALLATION, max_wait_seconds=0) for _ in range(6)] == [True] * 5 + [False]
    assert clock() == START


def test_a_pause_drains_the_bucket_until_retry_after(make_limiter: LimiterFactory, clock: FakeClock) -> None:
    limiter = make_limiter(RateLimit(calls=100, seconds=60))
    assert limiter.acquire(INSTALLATION, max_wait_seconds=1)  # four more tokens in the bucket
    limiter.pause(INSTALLATION, 30)
    before = clock()
    assert not limiter.acquire(INSTALLATION, max_wait_seconds=29)
    assert clock() - before < 0.1
    assert limiter.acquire(INSTALLATION, max_wait_seconds=31)
    assert clock() - before == pytest.approx(30, abs=0.1)
    # Drained: the next token comes one interval later, not as a burst.
    assert limiter.acquire(INSTALLATION, max_wait_seconds=5)
    assert clock() - before == pytest.approx(30 + limiter.params.interval_us / MICROSECONDS, abs=0.1)


def test_installations_have_buckets_of_their_own(make_limiter: LimiterFactory, clock: FakeClock) -> None:
    limiter = make_limiter(RateLimit(calls=1, seconds=60))
    assert limiter.acquire("icfg_a", max_wait_seconds=0.5)
    assert limiter.acquire("icfg_b", max_wait_seconds=0.5)
    assert not limiter.acquire("icfg_a", max_wait_seconds=0.5)


def test_a_late_wake_up_lapses_the_slot_instead_of_calling_late(make_limiter: LimiterFactory, clock: FakeClock) -> None:
    limit = RateLimit(calls=50, seconds=5)
    limiter = make_limiter(limit)
    grant_times(limiter, clock, 2)  # the burst is spent: the next slot is in the future
    clock.oversleep.append(0.5)  # the thread wakes 0.5 s after its slot (past the 0.1 s grace)
    before = clock()
    assert limiter.acquire(INSTALLATION, max_wait_seconds=5)
    assert limiter.stats().lapsed == 1
    # Granted on a later slot, on time: not on the lapsed one.
    assert clock() - before > 0.5


DAY = 86_400.0  # the longest wait and the longest pause the limiter takes


@pytest.mark.parametrize("wait", [math.inf, math.nan, 1e12])
def test_odd_waits_do_not_break(make_limiter: LimiterFactory, clock: FakeClock, wait: float) -> None:
    """A wait or a pause that is not a finite number of seconds, or is longer than a day, counts as a day."""
    limiter = make_limiter(RateLimit(calls=5, seconds=1))
    before = clock()
    assert limiter.acquire(INSTALLATION, max_wait_seconds=wait) is True  # the bucket is full: at once
    assert clock() == before

    limiter.pause(INSTALLATION, wait)

    assert limiter.acquire(INSTALLATION, max_wait_seconds=DAY - 1) is False
    assert clock() == before  # refused at once: no slot can come in time
    assert limiter.acquire(INSTALLATION, max_wait_seconds=DAY + 1) is True
    assert clock() - before == pytest.approx(DAY, abs=0.01)
    assert limiter.stats().granted == 2


def test_a_negative_wait_or_pause_counts_as_none(
    make_limiter: LimiterFactory, clock: FakeClock, request: pytest.FixtureRequest
) -> None:
    limiter = make_limiter(RateLimit(calls=5, seconds=1))
    interval = limiter.params.interval_us / MICROSECONDS
    before = clock()
    # As a wait of 0: a slot at hand is granted (the shared limiter holds none before a round trip).
    granted = limiter.acquire(INSTALLATION, max_wait_seconds=-1.0)
    assert granted is {"in-process": True, "dynamodb": False}[request.node.callspec.params["make_limiter"]]
    assert granted is limiter.acquire("icfg_other", max_wait_seconds=0.0)
    assert clock() == before

    limiter.pause(INSTALLATION, -1.0)

    assert limiter.acquire(INSTALLATION, max_wait_seconds=1) is True  # not paused: within one interval
    assert clock() - before <= interval + 1e-6


# -- several instances sharing the table ------------------------------------------------------------


def test_instances_sharing_the_table_share_one_limit(dynamodb: AtomicClient, clock: FakeClock) -> None:
    limit = RateLimit(calls=20, seconds=2)
    limiters = [
        DynamoDbRateLimiter(TABLE, limit, dynamodb_client=dynamodb, clock=clock, sleep=clock.sleep) for _ in range(3)
    ]
    times = []
    for turn in range(60):
        limiter = limiters[(turn * 7) % 3]
        assert limiter.acquire(INSTALLATION, max_wait_seconds=10)
        times.append(clock())
    assert_within_limit(times, limit)
    assert sum(limiter.stats().granted for limiter in limiters) == 60


def test_a_pause_reaches_the_other_instances(dynamodb: AtomicClient, clock: FakeClock) -> None:
    limit = RateLimit(calls=100, seconds=60)
    first, second = (
        DynamoDbRateLimiter(TABLE, limit, dynamodb_client=dynamodb, clock=clock, sleep=clock.sleep) for _ in range(2)
    )
    assert second.acquire(INSTALLATION, max_wait_seconds=1)  # second knows a bucket with tokens left
    first.pause(INSTALLATION, 20)
    before = clock()
    assert not second.acquire(INSTALLATION, max_wait_seconds=10)
    assert second.acquire(INSTALLATION, max_wait_seconds=25)
    assert clock() - before == pytest.approx(20, abs=0.1)
    item = dynamodb.item()
    assert item is not None
    assert item["kind"] == {"S": "ratelimit"}
    assert item["installationId"] == {"S": INSTALLATION}
    assert int(item["pausedUntilUs"]["N"]) == pytest.approx((before + 20) * MICROSECONDS, abs=0.1 * MICROSECONDS)
    assert int(item["expiresAt"]["N"]) > clock() + 3600  # the TTL: a day ahead


def test_the_item_is_written_with_ttl(dynamodb: AtomicClient, clock: FakeClock) -> None:
    limiter = DynamoDbRateLimiter(TABLE, RateLimit(calls=5, seconds=1), dynamodb_client=dynamodb, clock=clock)
    assert limiter.acquire(INSTALLATION, max_wait_seconds=1)
    item = dynamodb.item()
    assert item is not None
    assert item["pk"] == {"S": "ratelimit#" + INSTALLATION}
    assert int(item["expiresAt"]["N"]) == int(START) + 86_400
    assert set(item) == {"pk", "kind", "installationId", "tatUs", "expiresAt"}


# -- DynamoDB failing -------------------------------------------------------------------------------


def client_error(code: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "injected"}}, "UpdateItem")


@pytest.mark.parametrize(
    "failure",
    [
        client_error("ThrottlingException"),
        client_error("ProvisionedThroughputExceededException"),
        client_error("ResourceNotFoundException"),
        client_error("AccessDeniedException"),
        ReadTimeoutError(endpoint_url="https://dynamodb.us-east-1.amazonaws.com"),
    ],
    ids=["throttled", "throughput", "no-table", "denied", "timeout"],
)
def test_dynamodb_failing_means_no_slot_not_a_crash_nor_a_local_guess(
    dynamodb: AtomicClient, clock: FakeClock, failure: Exception, caplog: pytest.LogCaptureFixture
) -> None:
    limiter = DynamoDbRateLimiter(
        TABLE, RateLimit(calls=100, seconds=60), dynamodb_client=dynamodb, clock=clock, sleep=clock.sleep
    )
    dynamodb.fail_with = failure
    before = clock()
    assert not limiter.acquire(INSTALLATION, max_wait_seconds=3)
    assert clock() - before <= 3.0 + 1e-6
    assert limiter.stats().errors >= 2  # retried with backoff while the wait allowed
    assert limiter.stats().granted == 0
    assert "no call slots while the bucket cannot be updated" in caplog.text
    limiter.pause(INSTALLATION, 1)  # a pause's write failing is not raised either
    dynamodb.fail_with = None
    assert limiter.acquire(INSTALLATION, max_wait_seconds=5)  # recovers once DynamoDB answers


def test_a_conflicting_write_is_retried_from_the_item_dynamodb_returns(
    dynamodb: AtomicClient, clock: FakeClock
) -> None:
    limit = RateLimit(calls=100, seconds=60)
    first, second = (
        DynamoDbRateLimiter(TABLE, limit, dynamodb_client=dynamodb, clock=clock, sleep=clock.sleep) for _ in range(2)
    )
    assert first.acquire(INSTALLATION, max_wait_seconds=1)
    assert second.acquire(INSTALLATION, max_wait_seconds=1)  # second's first write: the item exists
    assert second.stats().conflicts == 1
    calls = dynamodb.calls
    assert first.acquire(INSTALLATION, max_wait_seconds=1)  # first's copy is stale: one conflict, no read
    assert first.stats().conflicts == 1
    assert dynamodb.calls - calls == 2


def test_a_first_write_against_a_full_bucket_needs_no_failed_write_first(
    dynamodb: AtomicClient, clock: FakeClock
) -> None:
    """A cold container's first reservation for an installation idle for a while: one UpdateItem."""
    limit = RateLimit(calls=100, seconds=60)
    first = DynamoDbRateLimiter(TABLE, limit, dynamodb_client=dynamodb, clock=clock, sleep=clock.sleep)
    assert first.acquire(INSTALLATION, max_wait_seconds=1)
    clock.sleep(60)  # the bucket refills: tat is in the past
    fresh = DynamoDbRateLimiter(TABLE, limit, dynamodb_client=dynamodb, clock=clock, sleep=clock.sleep)
    calls = dynamodb.calls
    assert fresh.acquire(INSTALLATION, max_wait_seconds=1)
    assert dynamodb.calls - calls == 1
    assert fresh.stats().conflicts == 0
    # The same slots as a missing item would give: the full burst at once, then the interval.
    params = fresh.params
    times = grant_times(fresh, clock, params.capacity)
    assert times[: params.capacity - 1] == [60.0] * (params.capacity - 1)
    assert times[-1] == pytest.approx(60.0 + params.interval_us / MICROSECONDS)


def test_a_first_write_against_a_bucket_in_use_learns_it_and_keeps_the_limit(
    dynamodb: AtomicClient, clock: FakeClock
) -> None:
    limit = RateLimit(calls=10, seconds=10)
    busy = DynamoDbRateLimiter(TABLE, limit, dynamodb_client=dynamodb, clock=clock, sleep=clock.sleep)
    times = grant_times(busy, clock, busy.params.capacity)  # the burst is used: tat is ahead of now
    fresh = DynamoDbRateLimiter(TABLE, limit, dynamodb_client=dynamodb, clock=clock, sleep=clock.sleep)
    times += grant_times(fresh, clock, 2 * limit.calls)
    assert fresh.stats().conflicts == 1  # its first write, against a bucket that is not full
    assert_within_limit(times, limit)


class SlowClient(AtomicClient):
    """DynamoDB answering each write ``seconds`` after it was sent (on the fake clock)."""

    def __init__(self, client: Any, clock: FakeClock, seconds: float) -> None:
        super().__init__(client)
        self._clock, self._seconds = clock, seconds

    def update_item(self, **request: Any) -> Any:
        answer = super().update_item(**request)
        self._clock.sleep(self._seconds)
        return answer


@pytest.mark.parametrize("round_trip", [0.15, 0.5, 1.5])
def test_a_slow_dynamodb_still_grants_slots_and_keeps_the_limit(
    dynamodb: AtomicClient, clock: FakeClock, round_trip: float
) -> None:
    """A round trip longer than the late grace: slots reserved for the moment the write left would
    all have lapsed by the time the answer came back (no call ever granted, the bucket drained by
    reservation after reservation). They are reserved for when the answer is expected instead."""
    slow = SlowClient(dynamodb._client, clock, round_trip)
    limit = RateLimit(calls=10, seconds=2)
    limiter = DynamoDbRateLimiter(TABLE, limit, dynamodb_client=slow, clock=clock, sleep=clock.sleep)
    times = grant_times(limiter, clock, 25, max_wait=10.0)
    stats = limiter.stats()
    assert stats.granted == 25, stats
    assert stats.lapsed <= 1, stats  # the first, before a round trip was measured
    assert_within_limit(times, limit)


# -- threads ----------------------------------------------------------------------------------------


def run_threads(limiters: list[SlotRateLimiter], threads_each: int, grants: int, max_wait: float) -> list[float]:
    """Threads on each limiter take slots (real clock) until ``grants`` are granted in all."""
    times: list[float] = []
    overruns: list[float] = []
    lock = threading.Lock()

    def work(limiter: SlotRateLimiter) -> None:
        while True:
            with lock:
                if len(times) >= grants:
                    return
            started = time.time()
            granted = limiter.acquire(INSTALLATION, max_wait_seconds=max_wait)
            moment = time.time()
            with lock:
                if moment - started > max_wait + 0.15:  # plus scheduling on a loaded machine
                    overruns.append(moment - started)
                if granted:
                    times.append(moment)
            if not granted:
                time.sleep(0.02)  # the record goes back to its source; the thread takes another

    errors: list[str] = []

    def guarded(limiter: SlotRateLimiter) -> None:
        try:
            work(limiter)
        except Exception as exc:  # noqa: BLE001 - reported by the test, not lost in the thread
            with lock:
                errors.append(repr(exc))

    threads = [threading.Thread(target=guarded, args=(limiter,)) for limiter in limiters for _ in range(threads_each)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert [thread.name for thread in threads if thread.is_alive()] == []  # no acquire hung
    assert errors == []
    assert not overruns
    assert len(times) >= grants
    return times


def test_many_threads_in_one_container() -> None:
    limit = RateLimit(calls=60, seconds=1)
    limiter = InProcessRateLimiter(limit)
    times = run_threads([limiter], threads_each=32, grants=80, max_wait=0.3)
    assert_within_limit(times, limit)
    # Liveness only (wall-clock rates on a loaded 2-core machine vary); the rate is measured in
    # the integration test and the benchmark.
    assert len(times) / (max(times) - min(times)) >= 0.4 * BucketParameters.for_limit(limit).rate, limiter.stats()


def test_many_threads_in_several_instances_sharing_the_table(dynamodb: AtomicClient) -> None:
    limit = RateLimit(calls=60, seconds=1)
    limiters: list[SlotRateLimiter] = [DynamoDbRateLimiter(TABLE, limit, dynamodb_client=dynamodb) for _ in range(3)]
    times = run_threads(limiters, threads_each=8, grants=90, max_wait=2.0)
    stats = [limiter.stats() for limiter in limiters]
    assert_within_limit(times, limit)
    # Throughput is measured at a realistic rate in the integration test; here, only liveness
    # (slots every 20 ms are at the mercy of a loaded machine's scheduling: 0.8 of the rate failed
    # once at load 4 on 2 cores).
    assert len(times) / (max(times) - min(times)) >= 0.4 * BucketParameters.for_limit(limit).rate, stats
    granted = sum(s.granted for s in stats)
    # About one write per call under a backlog (atomic increments: conflicts stay rare).
    assert sum(s.dynamodb_calls for s in stats) <= 1.5 * granted, stats


# -- wiring -----------------------------------------------------------------------------------------


def test_build_rate_limiter_shares_the_table_when_there_is_one() -> None:
    shared = build_rate_limiter(Settings(sync_state_table=TABLE, rate_limit=RateLimit(calls=50, seconds=5)))
    assert isinstance(shared, DynamoDbRateLimiter)
    assert shared.table_name == TABLE
    assert shared.params == BucketParameters.for_limit(RateLimit(calls=50, seconds=5))
    assert isinstance(build_rate_limiter(Settings()), InProcessRateLimiter)
