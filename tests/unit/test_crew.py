"""How a batch's workers start (``sync.crew.Crew``): only when every worker is waiting.

A batch with nothing to wait for runs on the calling thread (plus at most one helper that stops
once waits are seen to be short); a batch whose calls wait reaches ``max_concurrency`` as before,
never more, and never two calls for one resource at once.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from tests.builders import Sleeps, make_service, record_without_secret, sqs
from tests.fakes import FakeFailedRecords, FakeSecrets, FakeVercel, make_sync_service, vercel_unavailable


class ThreadCountingVercel(FakeVercel):
    def __init__(self, delay: float = 0.0) -> None:
        super().__init__()
        self.delay = delay
        self.threads: set[int] = set()
        self.in_flight = 0
        self.peak = 0
        self._count_lock = threading.Lock()

    def import_resource(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        with self._count_lock:
            self.threads.add(threading.get_ident())
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
        if self.delay:
            time.sleep(self.delay)
        with self._count_lock:
            self.in_flight -= 1
        return super().import_resource(*args, **kwargs)


def test_a_batch_with_nothing_to_wait_for_stays_on_few_threads() -> None:
    vercel = ThreadCountingVercel()
    service = make_service(vercel, max_concurrency=16)
    results = service.sync_batch([sqs(record_without_secret(f"r{i}"), f"m{i}") for i in range(300)])
    assert all(r.outcome == "imported" for r in results)
    assert len(vercel.threads) <= 2  # the caller, and at most one helper started before waits were seen short
    assert threading.get_ident() in vercel.threads


def test_a_batch_whose_calls_wait_reaches_its_bound() -> None:
    vercel = ThreadCountingVercel(delay=0.05)
    service = make_service(vercel, max_concurrency=8)
    # A first batch of short calls does not keep the next batch from growing when its calls wait.
    service.sync_batch([sqs(record_without_secret("warm"), "warm")])
    started = time.perf_counter()
    results = service.sync_batch([sqs(record_without_secret(f"r{i}"), f"m{i}") for i in range(24)])
    elapsed = time.perf_counter() - started
    assert all(r.outcome == "imported" for r in results)
    assert vercel.peak == 8
    assert elapsed < 24 * 0.05 / 3


def test_waits_turning_long_mid_batch_start_workers() -> None:
    class SlowAfterAWhile(ThreadCountingVercel):
        def import_resource(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
            self.delay = 0.05 if len(self.calls) >= 20 else 0.0
            return super().import_resource(*args, **kwargs)

    vercel = SlowAfterAWhile()
    service = make_service(vercel, max_concurrency=4)
    results = service.sync_batch([sqs(record_without_secret(f"r{i}"), f"m{i}") for i in range(40)])
    assert all(r.outcome == "imported" for r in results)
    assert vercel.peak == 4


def test_the_calling_thread_keeps_its_own_context() -> None:
    """Only pool threads run wrapped (``wrap_task``: X-Ray's context propagator, which clears the
    thread's trace entities when done); the handler's thread must keep its open subsegment."""
    wrapped_runs_in: list[int] = []

    def wrap(function: Any) -> Any:
        def run() -> Any:
            wrapped_runs_in.append(threading.get_ident())
            return function()

        return run

    service = make_service(ThreadCountingVercel(delay=0.02), max_concurrency=4, wrap_task=wrap)
    results = service.sync_batch([sqs(record_without_secret(f"r{i}"), f"m{i}") for i in range(8)])

    assert all(r.outcome == "imported" for r in results)
    assert wrapped_runs_in  # helpers started (the calls wait) and ran wrapped
    assert threading.get_ident() not in wrapped_runs_in


def test_a_backoff_does_not_hold_up_the_other_resources() -> None:
    """r0 fails fast and sleeps out its backoffs (real time); the other resources, whose calls are
    also fast, run meanwhile on a helper instead of waiting for r0's last try."""
    from tests.fakes import vercel_unavailable
    from vercel_sync.calls import RetryPolicy

    class RealTime(Sleeps):
        def __call__(self, seconds: float) -> None:
            self.seconds.append(seconds)
            time.sleep(seconds)

        def now(self) -> float:
            return time.monotonic()

    vercel = ThreadCountingVercel()
    vercel.failing = {"r0": vercel_unavailable(503)}
    service = make_service(
        vercel, max_concurrency=4, sleeps=RealTime(), retry_policy=RetryPolicy(max_calls=3, base_delay_seconds=0.2)
    )

    results = service.sync_batch([sqs(record_without_secret(f"r{i}"), f"m{i}") for i in range(5)])

    assert [r.outcome for r in results[1:]] == ["imported"] * 4
    order = vercel.resources_called()
    assert order.index("r4") < len(order) - 1 - order[::-1].index("r0")  # r4 went before r0's last try


def test_distinct_resources_run_concurrently_within_the_bound() -> None:
    """Counts, not wall time. The first call runs alone (the batch learns from it that calls take
    time); every later call is held until the bound's four calls are in flight (or every call left
    is), so the batch finishes only if it keeps four in flight, and the count shows none past four."""
    calls = 12
    in_flight = finished = 0
    starts: list[int] = []  # the calls in flight as each call starts
    timed_out: list[int] = []
    gate = threading.Condition()

    class SlowVercel(FakeVercel):
        def import_resource(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
            nonlocal in_flight, finished
            with gate:
                in_flight += 1
                starts.append(in_flight)
                gate.notify_all()
                # The timeout only ends a run that is broken (fewer workers than the bound).
                if len(starts) > 1 and not gate.wait_for(lambda: in_flight >= min(4, calls - finished), timeout=30):
                    timed_out.append(in_flight)
            time.sleep(0.01)  # a call that takes time, as over the network
            with gate:
                in_flight -= 1
                finished += 1
                gate.notify_all()
            return super().import_resource(*args, **kwargs)

    vercel = SlowVercel()
    service = make_service(vercel, max_concurrency=4)
    changes = [sqs(record_without_secret(f"r{i}"), f"m{i}") for i in range(calls)]

    results = service.sync_batch(changes)

    assert [r.outcome for r in results] == ["imported"] * calls
    assert len(vercel.calls) == calls
    assert timed_out == []  # after the first call, four (or all that were left) always ran at once
    assert max(starts) == 4  # the bound, never passed


def test_calls_for_one_resource_never_overlap() -> None:
    in_flight: dict[str, int] = {}
    overlaps: list[str] = []
    lock = threading.Lock()

    class CheckingVercel(FakeVercel):
        def import_resource(self, installation: str, resource: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
            with lock:
                in_flight[resource] = in_flight.get(resource, 0) + 1
                if in_flight[resource] > 1:
                    overlaps.append(resource)
            time.sleep(0.01)
            with lock:
                in_flight[resource] -= 1
            return super().import_resource(installation, resource, *args, **kwargs)

    vercel = CheckingVercel(script={f"r{i}": [vercel_unavailable(503)] for i in range(5)})
    service = make_service(vercel, max_concurrency=8)
    changes = [sqs(record_without_secret(f"r{i % 5}", name=f"n{n}"), f"m{n}") for n, i in enumerate(range(20))]

    service.sync_batch(changes)

    assert overlaps == []
    assert len(vercel.calls) == 10  # 5 resources, each one failure and one retry


def test_the_first_wait_of_a_kind_not_yet_timed_starts_a_worker() -> None:
    """A wait of a kind not yet timed counts as long: another installation's token is read meanwhile."""
    both_reading = threading.Barrier(2, timeout=2)

    class MeetingSecrets(FakeSecrets):
        def installation_token(self, integration_configuration_id: str, *, force_fetch: bool = False) -> str:
            both_reading.wait()  # each read returns only once the other installation's is under way
            return super().installation_token(integration_configuration_id, force_fetch=force_fetch)

    service = make_sync_service(
        vercel=FakeVercel(), secrets=MeetingSecrets(), failed_records=FakeFailedRecords(), max_concurrency=2
    )
    changes = [sqs(record_without_secret(f"r{i}", integrationConfigurationId=f"icfg_{i}"), f"m{i}") for i in range(2)]
    results = service.sync_batch(changes)
    assert [r.outcome for r in results] == ["imported", "imported"]
