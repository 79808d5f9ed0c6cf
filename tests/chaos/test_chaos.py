"""Chaos: Vercel converges to the partner's latest state whatever the network and Vercel do.

Each scenario (fixed seed) runs the real handlers against moto server and the Vercel emulator,
delivered by a driver that does what Lambda's event source mappings do (``harness.ChaosDriver``),
and asserts, at its end:

- every resource's state in Vercel (the emulator's ``GET`` view) equals the partner's latest;
- every change the suite made permanently bad is in the failed-records queue with its reason,
  and nothing else is;
- no token or secret value is in any log line, printed output or queue message;

and reports its figures (``conftest.pytest_terminal_summary``, ``.chaos/summary-<scale>.json``).

Scenarios: (a) 20% 5xx, 10% 429 (Retry-After 1 s), 5% dropped connections, 5% answers slower
than the client's timeout; (b) tokens rotated mid-run and the old ones revoked (gracefully,
abruptly, and with Vercel ahead of Secrets Manager for a moment); (c) Vercel down (connection
refused) for a stretch, twice; (d) a standard queue delivering versioned changes out of order,
with duplicates and redeliveries; (e) duplicates: a stream read again from its start, and
resends on a FIFO queue; (f) short-lived tokens expiring every 3 s during the run.

Sizes (``CHAOS_SCALE``): ``ci`` (default) and ``full`` (every scenario 5,000 changes to 300
resources); see ``SIZES``.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import pytest

from tests.chaos.conftest import chaos_scale
from tests.chaos.harness import (
    Assessment,
    ChaosDriver,
    ChaosWorld,
    Event,
    Figures,
    Partner,
    assess,
    leaked,
    restart_after,
)
from tests.conftest import LogCapture
from vercel_emulator import FaultSettings

SCALE = chaos_scale()


@dataclass(frozen=True)
class Size:
    resources: int
    changes: int
    invalid_resources: int  # resources whose every change is invalid (parked as invalid_record)
    gone_resources: int  # resources of an installation Vercel does not know (404: parked)
    outage_seconds: float  # scenario (c): how long Vercel is down, each time
    timeout_seconds: float  # the driver's limit for the whole scenario


SIZES = {
    "ci": Size(resources=50, changes=400, invalid_resources=3, gone_resources=2, outage_seconds=3, timeout_seconds=240),
    "full": Size(
        resources=300, changes=5000, invalid_resources=10, gone_resources=5, outage_seconds=8, timeout_seconds=1500
    ),
}
SIZE = SIZES[SCALE]

SEEDS = {"a": 4_001, "b": 4_002, "c": 4_003, "d": 4_004, "e": 4_005, "f": 4_006}
# Scenario (f): how long a short-lived token lives at Vercel (the emulator).
TOKEN_LIFETIME_SECONDS = 3
INSTALLATIONS = ["icfg_chaos_a", "icfg_chaos_b", "icfg_chaos_c", "icfg_chaos_d"]
GONE_INSTALLATION = "icfg_chaos_gone"

pytestmark = [
    pytest.mark.chaos,
    pytest.mark.integration,
    pytest.mark.timeout(SIZE.timeout_seconds + 60),
]


@dataclass
class Scenario:
    name: str
    seed: int
    world: ChaosWorld
    partner: Partner
    started: float = 0.0


@pytest.fixture
def make_scenario(
    chaos_aws: dict[str, Any], chaos_aws_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[..., Scenario]]:
    worlds: list[ChaosWorld] = []

    def make(
        name: str,
        seed: int,
        *,
        template_parameters: dict[str, str] | None = None,
        http_timeout_seconds: float = 2.0,
        resources: int = SIZE.resources,
        sources: tuple[str, ...] = ("table",),
        gone_resources: int = SIZE.gone_resources,
    ) -> Scenario:
        gone = GONE_INSTALLATION if gone_resources else None
        world = ChaosWorld(
            name=name,
            aws=chaos_aws,
            aws_endpoint=chaos_aws_endpoint,
            monkeypatch=monkeypatch,
            installations=INSTALLATIONS,
            template_parameters=template_parameters,
            http_timeout_seconds=http_timeout_seconds,
            gone_installation=gone,
        )
        worlds.append(world)
        partner = Partner(
            seed=seed,
            installations=INSTALLATIONS,
            resources=resources,
            secret_names=world.secret_names_by_installation,
            invalid_resources=SIZE.invalid_resources,
            gone_installation=gone,
            gone_resources=gone_resources,
            sources=sources,
        )
        return Scenario(name, seed, world, partner, started=time.monotonic())

    yield make
    for world in worlds:
        world.stop()


def table_writer(scenario: Scenario, changes: int, chunk: int = 20) -> Iterator[object]:
    """The partner writes ``changes`` changes to its table, ``chunk`` per driver round."""
    for start in range(0, changes, chunk):
        made = [scenario.partner.next_change(source="table") for _ in range(min(chunk, changes - start))]
        scenario.world.write(made)
        yield True


def queue_writer(scenario: Scenario, changes: int, chunk: int = 20) -> Iterator[object]:
    """The partner sends ``changes`` changes to its queue, ``chunk`` per driver round."""
    for start in range(0, changes, chunk):
        made = [scenario.partner.next_change(source="queue") for _ in range(min(chunk, changes - start))]
        scenario.world.send(made)
        yield True


def interleave(*writers: Iterator[object]) -> Iterator[object]:
    """One step of each writer in turn until all are done."""
    active = list(writers)
    while active:
        for writer in list(active):
            if next(writer, None) is None:
                active.remove(writer)
        yield True


def finish(
    scenario: Scenario,
    driver: ChaosDriver,
    *,
    record_figures: Callable[[Figures], None],
    captured_logs: LogCapture,
    capfd: pytest.CaptureFixture[str],
    notes: str = "",
) -> Assessment:
    assessment = assess(
        scenario.world,
        scenario.partner,
        driver.log,
        scenario=scenario.name,
        scale=SCALE,
        seed=scenario.seed,
        deliveries=scenario.world.sent,
        started=scenario.started,
    )
    assessment.figures.notes = notes
    record_figures(assessment.figures)
    out, err = capfd.readouterr()
    leaks = leaked(scenario.world.every_secret_value, "\n".join(captured_logs.lines), out, err, assessment.emitted_text)
    assert leaks == [], f"secret values found in logs, output or queue messages: {leaks}"
    assert captured_logs.lines, "the handlers' logs were not captured"
    # The check means something: resource secret values did go through the handlers to Vercel.
    resource_secret_values = {v for secret in scenario.world.resource_secrets.values() for v in secret.values}
    carried = [
        body
        for resource in scenario.partner.good_resources()
        if resource.secret_name is not None
        and (body := scenario.world.emulator.imported_body(resource.installation, resource.resource_id))
    ]
    assert any(value in json.dumps(body) for body in carried for value in resource_secret_values)
    return assessment


def assert_nothing_lost(assessment: Assessment) -> None:
    """Every permanent failure parked with its reason, nothing else parked, no change lost."""
    assert assessment.unexpected_failed_records == [], "failed-records messages nobody expected"
    assert assessment.wrong_reasons == []
    assert assessment.missing_permanent == [], "permanent failures missing from the failed-records queue"
    assert assessment.figures.records_lost == 0, assessment.figures.mismatch_examples


def assert_converged(assessment: Assessment) -> None:
    """Nothing lost, and Vercel holds the partner's latest state of every resource."""
    assert_nothing_lost(assessment)
    assert assessment.figures.final_state_mismatches == 0, assessment.figures.mismatch_examples


# ---------------------------------------------------------------------------------------- scenarios


def test_a_faults_5xx_429_drops_and_timeouts(
    make_scenario: Callable[..., Scenario],
    chaos_handlers: dict[str, ModuleType],
    record_figures: Callable[[Figures], None],
    captured_logs: LogCapture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    """The partner table's stream under 20% 5xx, 10% 429 (Retry-After 1 s), 5% dropped
    connections and 5% answers slower (1.5 s) than the client's timeout (0.5 s)."""
    scenario = make_scenario("a-faults", SEEDS["a"], http_timeout_seconds=0.5)
    scenario.world.emulator.set_faults(
        FaultSettings(
            error_rate=0.20,
            throttle_rate=0.10,
            throttle_retry_after=1,
            drop_rate=0.05,
            slow_rate=0.05,
            slow_ms=1500,
            seed=SEEDS["a"],
        )
    )
    driver = ChaosDriver(scenario.world, chaos_handlers, stream=True)

    driver.run(table_writer(scenario, SIZE.changes), timeout_seconds=SIZE.timeout_seconds)

    assessment = finish(scenario, driver, record_figures=record_figures, captured_logs=captured_logs, capfd=capfd)
    assert_converged(assessment)
    by_status = assessment.figures.vercel_calls_by_status
    for outcome in ("429", "dropped", "aborted"):  # every kind of fault did happen
        assert by_status.get(outcome, 0) > 0, outcome
    assert any(by_status.get(status, 0) for status in ("500", "502", "503", "504"))


def test_b_tokens_rotated_and_revoked_mid_run(
    make_scenario: Callable[..., Scenario],
    chaos_handlers: dict[str, ModuleType],
    record_figures: Callable[[Figures], None],
    captured_logs: LogCapture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    """The stream and a FIFO queue while installation tokens are rotated and the old ones revoked:
    A gracefully (both valid for a while, then the old revoked), B abruptly (Secrets Manager and
    Vercel switch at once), C with Vercel ahead of Secrets Manager for 1.5 s (the function's
    re-read still finds the old token: its records go back to their source until the new one is
    stored). D keeps its token."""
    scenario = make_scenario("b-tokens", SEEDS["b"], sources=("table", "queue"))
    world = scenario.world
    a, b, c = INSTALLATIONS[:3]
    stored_late = threading.Event()
    rotated: dict[str, str] = {}

    def rotate_a_gracefully() -> None:
        rotated[a] = world.rotate_token(a, in_vercel=True, in_secrets_manager=True, keep_previous=True)

    def revoke_old_a() -> None:
        world.revoke_all_but(a, rotated[a])

    def rotate_b_abruptly() -> None:
        world.rotate_token(b, in_vercel=True, in_secrets_manager=True)

    def rotate_c_vercel_first() -> None:
        token = world.rotate_token(c, in_vercel=True, in_secrets_manager=False)

        def store() -> None:
            world.store_in_secrets_manager(c, token)
            stored_late.set()

        timer = threading.Timer(1.5, store)
        timer.daemon = True
        timer.start()

    total = SIZE.changes
    events = [
        Event(total * 20 // 100, rotate_a_gracefully, "A: new token valid beside the old, stored"),
        Event(total * 35 // 100, revoke_old_a, "A: old token revoked"),
        Event(total * 50 // 100, rotate_b_abruptly, "B: rotated and old revoked at once"),
        Event(total * 65 // 100, rotate_c_vercel_first, "C: Vercel switched, Secrets Manager 1.5 s later"),
    ]
    driver = ChaosDriver(world, chaos_handlers, stream=True, queue=True, stream_retry_delay_seconds=0.2)
    writer = interleave(table_writer(scenario, total // 2), queue_writer(scenario, total - total // 2))

    driver.run(writer, events=events, timeout_seconds=SIZE.timeout_seconds)
    assert stored_late.wait(10)

    assessment = finish(scenario, driver, record_figures=record_figures, captured_logs=captured_logs, capfd=capfd)
    assert_converged(assessment)
    assert assessment.figures.vercel_calls_by_status.get("401", 0) > 0  # the rotations were noticed


def test_c_vercel_down_for_a_stretch_then_back(
    make_scenario: Callable[..., Scenario],
    chaos_handlers: dict[str, ModuleType],
    record_figures: Callable[[Figures], None],
    captured_logs: LogCapture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    """The stream and a FIFO queue while Vercel is down (connection refused: the emulator is
    stopped) twice, for SIZE.outage_seconds and then half that. The queue's redelivery delay is
    half the outage, so an outage costs a message about 3 of its 5 receives, as a 15-minute
    outage would with the deployed 360 s visibility timeout."""
    scenario = make_scenario("c-outage", SEEDS["c"], sources=("table", "queue"))
    world = scenario.world
    outage = SIZE.outage_seconds
    back = [threading.Event(), threading.Event()]
    total = SIZE.changes
    events = [
        Event(total * 30 // 100, restart_after(world, outage, back[0]), f"Vercel down for {outage:g} s"),
        Event(total * 70 // 100, restart_after(world, outage / 2, back[1]), f"Vercel down for {outage / 2:g} s"),
    ]
    driver = ChaosDriver(
        world,
        chaos_handlers,
        stream=True,
        queue=True,
        retry_visibility_seconds=max(1, round(outage / 2)),
        stream_retry_delay_seconds=0.2,
    )
    writer = interleave(table_writer(scenario, total // 2), queue_writer(scenario, total - total // 2))

    driver.run(writer, events=events, timeout_seconds=SIZE.timeout_seconds)
    assert all(event.wait(outage + 10) for event in back)

    assessment = finish(scenario, driver, record_figures=record_figures, captured_logs=captured_logs, capfd=capfd)
    assert_converged(assessment)
    for event in events:  # each outage began with changes still to deliver
        assert event.fired_after_records is not None
        assert event.fired_after_records < scenario.world.sent, event.name


def out_of_order_sender(scenario: Scenario, changes: int, *, window: int, duplicate_rate: float) -> Iterator[object]:
    """The partner makes ``changes`` changes in order, but a standard queue hands them over out of
    order: each message moves up to ``window`` places, and ``duplicate_rate`` of them arrive a
    second time, later still (SQS's at-least-once delivery)."""
    partner = scenario.partner
    rng = partner.rng
    made = [partner.next_change(source="queue") for _ in range(changes)]
    arrivals = [(index + rng.uniform(0, window), change) for index, change in enumerate(made)]
    arrivals += [
        (index + rng.uniform(window, 4 * window), change)
        for index, change in enumerate(made)
        if rng.random() < duplicate_rate
    ]
    arrivals.sort(key=lambda arrival: arrival[0])
    for start in range(0, len(arrivals), 20):
        sent = [change for _, change in arrivals[start : start + 20]]
        scenario.world.send(sent)
        yield True


# Before the version guard (issue 4) the handlers import whatever a standard queue hands over
# last, so an older version can overwrite a newer one: scenario (d) then ends in an expected
# failure (after checking that nothing was lost). Set this to True when the guard lands.
VERSION_GUARD_EXPECTED = True


def test_d_out_of_order_standard_queue_with_versions(
    make_scenario: Callable[..., Scenario],
    chaos_handlers: dict[str, ModuleType],
    record_figures: Callable[[Figures], None],
    captured_logs: LogCapture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    """A standard queue: versioned changes arrive out of order (moved up to 40 places), 10% of
    them twice, and 10% of calls fail (5xx), so redeliveries reorder them further. Vercel must end
    at each resource's highest version."""
    scenario = make_scenario(
        "d-out-of-order",
        SEEDS["d"],
        template_parameters={"CreatedPartnerQueueType": "standard"},
        sources=("queue",),
    )
    assert not scenario.world.queue_url("PartnerEventsQueue").endswith(".fifo")
    scenario.world.emulator.set_faults(FaultSettings(error_rate=0.10, seed=SEEDS["d"]))
    driver = ChaosDriver(scenario.world, chaos_handlers, queue=True)

    driver.run(
        out_of_order_sender(scenario, SIZE.changes, window=40, duplicate_rate=0.10),
        timeout_seconds=SIZE.timeout_seconds,
    )

    assessment = finish(
        scenario,
        driver,
        record_figures=record_figures,
        captured_logs=captured_logs,
        capfd=capfd,
        notes="" if VERSION_GUARD_EXPECTED else "expected to fail before the version guard",
    )
    assert_nothing_lost(assessment)
    if assessment.figures.final_state_mismatches and not VERSION_GUARD_EXPECTED:
        pytest.xfail(
            f"needs the version guard: {assessment.figures.final_state_mismatches} resources ended at an "
            "older version than the partner's latest (a standard queue delivers out of order)"
        )
    assert_converged(assessment)


def test_e_duplicates_stream_replay_and_fifo_resends(
    make_scenario: Callable[..., Scenario],
    chaos_handlers: dict[str, ModuleType],
    record_figures: Callable[[Figures], None],
    captured_logs: LogCapture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    """Duplicates: halfway through, a second reader starts on the stream from its trim horizon
    (every change delivered again, as after a lost checkpoint), and on a FIFO queue 30% of the
    partner's messages are sent two or three times; 5% of calls fail (5xx)."""
    scenario = make_scenario("e-duplicates", SEEDS["e"], sources=("table", "queue"))
    world = scenario.world
    world.emulator.set_faults(FaultSettings(error_rate=0.05, seed=SEEDS["e"]))
    driver = ChaosDriver(world, chaos_handlers, stream=True, queue=True, stream_retry_delay_seconds=0.1)
    template = world.resources.template
    properties = template.event_source("StreamSyncFunction", "PartnerTableStream")

    def replay_the_stream() -> None:
        driver.pollers.append(driver.stream_poller(properties, 0.1))

    def resending_writer(changes: int) -> Iterator[object]:
        rng = scenario.partner.rng
        for start in range(0, changes, 20):
            sent = []
            for _ in range(min(20, changes - start)):
                change = scenario.partner.next_change(source="queue")
                sent += [change] * (rng.choice([2, 3]) if rng.random() < 0.30 else 1)
            world.send(sent)
            yield True

    total = SIZE.changes
    driver.run(
        interleave(table_writer(scenario, total // 2), resending_writer(total - total // 2)),
        events=[Event(total * 50 // 100, replay_the_stream, "a second stream reader from the trim horizon")],
        timeout_seconds=SIZE.timeout_seconds,
    )

    assessment = finish(scenario, driver, record_figures=record_figures, captured_logs=captured_logs, capfd=capfd)
    assert_converged(assessment)
    assert assessment.figures.redelivered > 0


def test_f_short_lived_tokens_expiring_every_few_seconds(
    make_scenario: Callable[..., Scenario],
    chaos_handlers: dict[str, ModuleType],
    record_figures: Callable[[Figures], None],
    captured_logs: LogCapture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    """Short-lived tokens (TokenMode short-lived) that expire every 3 s at Vercel, through the stream and
    a FIFO queue. Vercel announces an hour (expires_in 3600), so the function keeps each token until
    Vercel refuses it: every expiry is met by a 401, which requests a new token once and the call goes
    on. Nothing lost; only the invalid records parked (no installation here is unknown to Vercel)."""
    credentials = f"chaos/credentials-{uuid.uuid4().hex[:8]}"
    scenario = make_scenario(
        "f-short-tokens",
        SEEDS["f"],
        sources=("table", "queue"),
        gone_resources=0,
        template_parameters={"TokenMode": "short-lived", "IntegrationCredentialsSecretName": credentials},
    )
    world = scenario.world
    # Vercel announces an hour and ends each token after 3 s: the function never renews one in time.
    world.use_short_lived_tokens(lifetime_seconds=TOKEN_LIFETIME_SECONDS, announced_seconds=3600)
    driver = ChaosDriver(world, chaos_handlers, stream=True, queue=True, stream_retry_delay_seconds=0.2)
    total = SIZE.changes
    writer = interleave(table_writer(scenario, total // 2), queue_writer(scenario, total - total // 2))

    driver.run(writer, timeout_seconds=SIZE.timeout_seconds)

    calls = world.emulator.calls()
    refused = calls["byStatus"].get("401", 0)
    token_requests = calls["byRoute"].get("oauth/token", 0)
    rereads = sum("re-read the installation token" in line for line in captured_logs.lines)
    notes = (
        f"tokens live {TOKEN_LIFETIME_SECONDS} s; {token_requests} token requests (counted in calls), "
        f"{refused} answers 401, {rereads} token re-reads after a 401"
    )
    assessment = finish(
        scenario, driver, record_figures=record_figures, captured_logs=captured_logs, capfd=capfd, notes=notes
    )
    assert_converged(assessment)
    assert refused > 0, "no call met an expired token: the scenario tested nothing"
    assert 0 < rereads <= refused
    assert token_requests > len(INSTALLATIONS)  # tokens were renewed during the run
