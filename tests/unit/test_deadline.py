"""Any function timeout that fits parking works: each step is bounded by the time left minus what
parking the record after it needs (and the margin), the adapters cut their timeouts to that bound,
and a timeout too short for one record is refused by the template and reported at cold start."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import replace
from types import SimpleNamespace
from typing import Any

import pytest

from tests.builders import change, record_with_secret
from tests.conftest import LogCapture
from tests.fakes import (
    FakeFailedRecords,
    FakeSecrets,
    FakeVercel,
    LambdaContext,
    load_event,
    load_handler,
    make_sync_service,
    sync_one,
    vercel_rejects,
)
from vercel_sync.adapters.aws_clients import AWS_TIMEOUT_TIERS, AwsClients
from vercel_sync.deadline import Deadline, TimeBudget, seconds_left, within
from vercel_sync.errors import TransientSyncError
from vercel_sync.settings import Settings
from vercel_sync.sync.service import SyncService
from vercel_sync.wiring import time_budget

BUDGET = time_budget(Settings())  # an AWS call 2 s at its shortest (so parking), a Vercel call 1 s, margin 1 s
TOLERANCE = 0.5  # seconds: the bound is read a little after the step starts, on a loaded machine


class BoundsSeen:
    """What each adapter call saw as its step's time left."""

    def __init__(self) -> None:
        self.seen: dict[str, list[float | None]] = {}

    def note(self, what: str) -> None:
        self.seen.setdefault(what, []).append(seconds_left())


class BoundVercel(FakeVercel):
    def __init__(self, bounds: BoundsSeen, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.bounds = bounds

    def import_resource(
        self, integration_configuration_id: str, resource_id: str, body: Mapping[str, Any], *, token: str
    ) -> dict[str, Any]:
        self.bounds.note("vercel")
        return super().import_resource(integration_configuration_id, resource_id, body, token=token)


class BoundSecrets(FakeSecrets):
    def __init__(self, bounds: BoundsSeen) -> None:
        super().__init__()
        self.bounds = bounds

    def installation_token(self, integration_configuration_id: str, *, force_fetch: bool = False) -> str:
        self.bounds.note("token")
        return super().installation_token(integration_configuration_id, force_fetch=force_fetch)

    def resource_secrets(self, secret_id: str, *, installation_id: str) -> Any:
        self.bounds.note("secret")
        return super().resource_secrets(secret_id, installation_id=installation_id)


class BoundQueue(FakeFailedRecords):
    def __init__(self, bounds: BoundsSeen) -> None:
        super().__init__()
        self.bounds = bounds

    def park(self, message: dict[str, Any]) -> None:
        self.bounds.note("park")
        super().park(message)


def bounded_service(bounds: BoundsSeen, **vercel: Any) -> SyncService:
    return make_sync_service(
        vercel=BoundVercel(bounds, **vercel),
        secrets=BoundSecrets(bounds),
        failed_records=BoundQueue(bounds),
        time_budget=BUDGET,
    )


def test_each_step_gets_the_time_left_minus_parking_and_the_margin() -> None:
    from tests.fakes import vercel_rejects

    bounds = BoundsSeen()
    service = bounded_service(bounds, script={"db_primary": [vercel_rejects(400)]})

    assert sync_one(service, change(record_with_secret()), time_left_ms=10_000) == "parked"

    # The secret, the token and the call: 10 s - 2 s (parking) - 1 s (margin); parking: 10 s - 1 s.
    for what in ("secret", "token", "vercel"):
        (left,) = bounds.seen[what]
        assert left is not None, what
        assert 7.0 - TOLERANCE < left <= 7.0, what
    (left,) = bounds.seen["park"]
    assert left is not None
    assert 9.0 - TOLERANCE < left <= 9.0
    assert seconds_left() is None  # outside a step, nothing is bounded


def test_the_state_table_and_the_shared_rate_limiter_are_bounded_too() -> None:
    from tests.fakes import FakeStateStore
    from vercel_sync.calls import RetryPolicy

    bounds = BoundsSeen()

    class BoundStateStore(FakeStateStore):
        def claim(self, *args: Any, **kwargs: Any) -> Any:
            bounds.note("claim")
            return super().claim(*args, **kwargs)

        def record(self, claim_id: str | None, state: Any) -> None:
            bounds.note("record")
            super().record(claim_id, state)

    class BoundLimiter:
        def acquire(self, installation_id: str, *, max_wait_seconds: float) -> bool:
            return True

        def pause(self, installation_id: str, seconds: float) -> None:
            bounds.note("pause")

    def service(**vercel: Any) -> SyncService:
        return make_sync_service(
            vercel=FakeVercel(**vercel),
            secrets=FakeSecrets(),
            failed_records=FakeFailedRecords(),
            state_store=BoundStateStore(),
            rate_limiter=BoundLimiter(),
            retry_policy=RetryPolicy(max_calls=1),
            time_budget=BUDGET,
            monotonic=lambda: 0.0,  # the time left stays what it was given
        )

    assert sync_one(service(), change(record_with_secret()), time_left_ms=10_000) == "imported"
    throttled = TransientSyncError("Vercel answered 429", http_status=429, retry_after_seconds=30.0)
    with pytest.raises(TransientSyncError, match="429"):
        sync_one(service(failing={"db_primary": throttled}), change(record_with_secret()), time_left_ms=10_000)

    # The claim and the 429's shared pause: an AWS read's bound (10 s - 2 s parking - 1 s margin);
    # recording the import: parking's share, kept free by every step before it (10 s - 1 s).
    for what, bound in (("claim", 7.0), ("pause", 7.0), ("record", 9.0)):
        assert bounds.seen[what], what
        for left in bounds.seen[what]:
            assert left is not None, what
            assert bound - TOLERANCE < left <= bound, what


@pytest.mark.parametrize("time_left_ms", [BUDGET.least_function_timeout_ms, 10_000, 15_000])
def test_a_healthy_record_syncs_with_any_time_left_that_fits_parking(time_left_ms: int) -> None:
    bounds = BoundsSeen()
    assert sync_one(bounded_service(bounds), change(record_with_secret()), time_left_ms=time_left_ms) == "imported"
    (left,) = bounds.seen["vercel"]
    assert left is not None
    assert left <= time_left_ms / 1000 - 3


def test_a_record_without_the_time_for_a_step_and_parking_goes_back() -> None:
    bounds = BoundsSeen()
    with pytest.raises(TransientSyncError, match="needs 5000 ms"):
        sync_one(bounded_service(bounds), change(record_with_secret()), time_left_ms=4_900)
    assert bounds.seen == {}


def test_bounds_nest_and_the_shorter_wins() -> None:
    deadline = Deadline(20_000, BUDGET, lambda: 0.0)
    with deadline.bound("aws_read", "a read"):
        outer = seconds_left()
        with within(1.0):
            inner = seconds_left()
        with within(60.0):
            wider = seconds_left()
    assert outer is not None
    assert inner is not None
    assert wider is not None
    assert 17.0 - TOLERANCE < outer <= 17.0
    assert inner <= 1.0
    assert wider <= 17.0
    with Deadline(None, BUDGET, lambda: 0.0).bound("vercel_call", "a call"):
        assert seconds_left() is None  # no time known (a unit test, a local call): no bound


def test_aws_calls_take_the_longest_timeouts_that_fit_their_step() -> None:
    built: list[tuple[str, Any]] = []

    class Session:
        def client(self, service: str, config: Any = None) -> Any:
            built.append((service, config))
            return SimpleNamespace(send_message=lambda: (config.connect_timeout, config.read_timeout, config.retries))

    clients = AwsClients(session=Session())
    sqs = clients.client("sqs")

    def timeouts() -> tuple[float, float, int]:
        connect, read, retries = sqs.send_message()
        return connect, read, retries["max_attempts"]

    assert timeouts() == (1.0, 3.0, 2)  # outside any step: the longest
    with within(20.0):
        assert timeouts() == (1.0, 3.0, 2)  # 2 x (1 + 3) s + the longest backoff fits 20 s
    with within(10.0):
        assert timeouts() == (1.0, 3.0, 1)  # 14 s does not fit; one attempt, 4 s, does
    with within(3.0):
        assert timeouts() == (0.5, 1.5, 1)  # parking's: 2 s
    with within(0.5):
        assert timeouts() == (0.5, 1.5, 1)  # the shortest (the pipeline starts no step with less)
    assert [service for service, _ in built] == ["sqs"] * 3  # one client per tier, each built once
    assert [tier.worst_case_seconds for tier in AWS_TIMEOUT_TIERS] == [14.0, 4.0, 2.0]
    assert BUDGET.park_ms == AWS_TIMEOUT_TIERS[-1].worst_case_seconds * 1000


# ----------------------------------------------------------------------- reported at cold start

stream_app = load_handler("stream_sync")


def invoke_stream(remaining_ms: int) -> dict[str, Any]:
    result: dict[str, Any] = stream_app.lambda_handler(
        load_event("stream_insert_modify_remove.json"), LambdaContext(remaining_ms=remaining_ms)
    )
    return result


@pytest.fixture
def budgeted(service: SyncService) -> SyncService:
    service.tuning = replace(service.tuning, time_budget=BUDGET)
    return service


def test_a_function_timeout_too_short_for_one_record_is_reported_at_the_first_invocation(
    budgeted: SyncService, captured_logs: LogCapture, capsys: pytest.CaptureFixture[str]
) -> None:
    os.environ["POWERTOOLS_METRICS_DISABLED"] = "false"
    try:
        invoke_stream(4_000)
        invoke_stream(4_000)  # once per container
    finally:
        os.environ.pop("POWERTOOLS_METRICS_DISABLED")

    lines = [json.loads(line) for line in captured_logs.lines]
    (error,) = [line for line in lines if line["level"] == "ERROR"]
    assert "function timeout (4 s)" in error["message"]
    assert "(6 s, of which 2 s to park it)" in error["message"]
    assert (error["functionTimeoutSeconds"], error["leastFunctionTimeoutSeconds"], error["parkSeconds"]) == (4, 6, 2)
    documents = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"_aws"')]
    reported = [d["FunctionTimeoutTooShort"] for d in documents if "FunctionTimeoutTooShort" in d]
    assert reported in ([1.0], [[1.0]])


@pytest.mark.parametrize("remaining_ms", [6_000, 5_400, 60_000])
def test_a_timeout_that_fits_a_record_is_not_reported(
    remaining_ms: int, budgeted: SyncService, captured_logs: LogCapture
) -> None:
    # 5.4 s left at the first invocation: a 6 s function whose cold start took 0.6 s.
    response = invoke_stream(remaining_ms)
    assert response["batchItemFailures"] == []
    assert not [line for line in captured_logs.lines if '"level":"ERROR"' in line]


def test_rotation_sync_reports_it_too(captured_logs: LogCapture) -> None:
    from tests.builders import Rig, put_secret_value_event
    from vercel_sync.observability import PowertoolsRotationObserver

    service = Rig().service(time_budget=BUDGET, observer=PowertoolsRotationObserver())
    for _ in range(2):  # reported once; the event itself is left for a retry (no time to find its resources)
        with pytest.raises(TransientSyncError, match="needs 5000 ms"):
            service.handle(put_secret_value_event(), time_left_ms=3_000)

    errors = [json.loads(line) for line in captured_logs.lines if '"level":"ERROR"' in line]
    assert [(e["functionTimeoutSeconds"], e["leastFunctionTimeoutSeconds"]) for e in errors] == [(3, 6)]


def test_rotation_syncs_calls_and_parking_are_bounded_as_the_imports_are() -> None:
    from tests.builders import ROTATION_TARGETS, Rig, put_secret_value_event
    from tests.fakes import ROTATED_SECRET_NAME, FakeIndex, FakeSecretsApi, vercel_rejects

    bounds = BoundsSeen()

    class BoundSecretsApi(FakeSecretsApi):
        def update_resource_secrets(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
            bounds.note("vercel")
            return super().update_resource_secrets(*args, **kwargs)

    rig = Rig(
        index=FakeIndex({ROTATED_SECRET_NAME: list(ROTATION_TARGETS)}),
        vercel=BoundSecretsApi(script={"db_primary": [vercel_rejects(400)]}),
        failed=BoundQueue(bounds),
    )
    result = rig.service(time_budget=BUDGET, monotonic=lambda: 0.0).handle(
        put_secret_value_event(), time_left_ms=10_000
    )

    assert len(result.parked) == 1
    assert len(bounds.seen["vercel"]) == len(ROTATION_TARGETS)
    for what, bound in (("vercel", 7.0), ("park", 9.0)):  # as for an import: see the first test
        for left in bounds.seen[what]:
            assert left is not None, what
            assert bound - TOLERANCE < left <= bound, what


def test_the_least_function_timeout_is_a_record_and_a_cold_start() -> None:
    budget = TimeBudget(aws_call_ms=2_000, vercel_call_ms=1_000, margin_ms=1_000)
    assert budget.record_ms == 2_000 + 2_000 + 1_000
    assert budget.least_function_timeout_ms == 6_000


# ------------------------------------------------------------------------- each step's least time

FROZEN = 0.0  # a monotonic clock that does not move: the time left is exactly what is given


def frozen() -> float:
    return FROZEN


# Each step needs its least time, then parking's (none after parking itself), then the margin.
OTHER_BUDGET = TimeBudget(aws_call_ms=1_000, vercel_call_ms=3_000, margin_ms=500)  # the Vercel call the slowest
STEP_NEEDS = [
    (BUDGET, "record", 2_000 + 2_000 + 1_000),
    (BUDGET, "aws_read", 2_000 + 2_000 + 1_000),
    (BUDGET, "vercel_call", 1_000 + 2_000 + 1_000),
    (BUDGET, "park", 2_000 + 1_000),
    (OTHER_BUDGET, "record", 3_000 + 1_000 + 500),
    (OTHER_BUDGET, "aws_read", 1_000 + 1_000 + 500),
    (OTHER_BUDGET, "vercel_call", 3_000 + 1_000 + 500),
    (OTHER_BUDGET, "park", 1_000 + 500),
]


@pytest.mark.parametrize(("budget", "step", "needed_ms"), STEP_NEEDS)
def test_a_step_starts_with_exactly_what_it_needs_and_not_a_millisecond_less(
    budget: TimeBudget, step: Any, needed_ms: int
) -> None:
    Deadline(needed_ms, budget, frozen).require(step, "the step")  # exactly enough
    refused = f"only {needed_ms - 1} ms left in this invocation; the step needs {needed_ms} ms"
    with pytest.raises(TransientSyncError, match=refused):
        Deadline(needed_ms - 1, budget, frozen).require(step, "the step")
    if step == "record":
        assert needed_ms == budget.record_ms


def test_a_healthy_record_syncs_with_exactly_the_time_it_needs() -> None:
    service = make_sync_service(
        vercel=FakeVercel(),
        secrets=FakeSecrets(),
        failed_records=FakeFailedRecords(),
        time_budget=BUDGET,
        monotonic=frozen,
    )
    assert sync_one(service, change(record_with_secret()), time_left_ms=BUDGET.record_ms) == "imported"


def test_a_best_effort_aws_call_needs_what_an_aws_read_needs() -> None:
    # Releasing a claim, sharing a 429's pause, deferring messages: one more AWS call at its
    # shortest timeouts, with parking's time and the margin still free after it.
    needed_ms = BUDGET.aws_call_ms + BUDGET.park_ms + BUDGET.margin_ms
    assert Deadline(needed_ms, BUDGET, frozen).allows_best_effort_aws_call()
    assert not Deadline(needed_ms - 1, BUDGET, frozen).allows_best_effort_aws_call()
    assert Deadline(None, BUDGET, frozen).allows_best_effort_aws_call()  # no time known: no limit


def test_the_time_to_spare_before_a_step_is_never_negative() -> None:
    assert Deadline(10_000, BUDGET, frozen).spare_seconds("vercel_call") == 6.0  # 10 s - 1 s - 2 s - 1 s
    assert Deadline(3_000, BUDGET, frozen).spare_seconds("vercel_call") == 0.0
    assert Deadline(None, BUDGET, frozen).spare_seconds("vercel_call") == float("inf")


def test_a_claim_holds_a_little_past_the_rest_of_the_invocation() -> None:
    assert Deadline(10_000, BUDGET, frozen).lease_seconds() == 15.0
    assert Deadline(-10_000, BUDGET, frozen).lease_seconds() == 1.0
    assert Deadline(None, BUDGET, frozen).lease_seconds() == 900.0  # Lambda's longest invocation


def test_an_aws_call_takes_a_tier_whose_worst_case_just_fits() -> None:
    clients = AwsClients(session=SimpleNamespace())
    longest, one_attempt, shortest = (tier.worst_case_seconds for tier in AWS_TIMEOUT_TIERS)
    assert [clients.tier_for(seconds) for seconds in (longest, longest - 0.001)] == [0, 1]
    assert [clients.tier_for(seconds) for seconds in (one_attempt, one_attempt - 0.001)] == [1, 2]
    assert [clients.tier_for(seconds) for seconds in (shortest, 0.1, -1.0)] == [2, 2, 2]
    assert clients.tier_for(None) == 0


class SteppingClock:
    """A monotonic clock that each adapter call moves forward by a fixed step."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_step_that_could_outlast_the_invocation_is_not_started() -> None:
    clock = SteppingClock()
    vercel = FakeVercel()
    secrets = FakeSecrets(on_resource_read=lambda _: setattr(clock, "now", clock.now + 20))
    service = make_sync_service(
        vercel=vercel,
        secrets=secrets,
        failed_records=FakeFailedRecords(),
        time_budget=TimeBudget(aws_call_ms=10_000, vercel_call_ms=10_000, margin_ms=1_000),
        monotonic=clock,
    )
    # 30 s is enough to start (21 s), but the slow secret read leaves 10 s: too little for the
    # token read and the call. The record goes back; Vercel is never called.
    with pytest.raises(TransientSyncError, match="ms left in this invocation"):
        sync_one(service, change(record_with_secret()), time_left_ms=30_000)
    assert vercel.calls == []


def test_parking_needs_time_too() -> None:
    clock = SteppingClock()

    class SlowRejectingVercel(FakeVercel):
        def import_resource(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
            clock.now += 35  # the call takes 35 s, then Vercel refuses the record for good
            raise vercel_rejects(400)

    failed = FakeFailedRecords()
    service = make_sync_service(
        vercel=SlowRejectingVercel(),
        secrets=FakeSecrets(),
        failed_records=failed,
        time_budget=TimeBudget(aws_call_ms=10_000, vercel_call_ms=10_000, margin_ms=1_000),
        monotonic=clock,
    )

    # 40 s: enough to start (31 s); after the call 5 s are left, too little to park (11 s).
    with pytest.raises(TransientSyncError, match="failed-records queue"):
        sync_one(service, change(record_with_secret()), time_left_ms=40_000)
    assert failed.messages == []
