"""The pipeline's reliability rules with in-process fakes: coalescing, the version guard, change
suppression, retries inside the invocation, 429 pauses, concurrency."""

from __future__ import annotations

import threading
import time
from decimal import Decimal
from typing import Any

import pytest

from tests.fakes import (
    ROTATED_TOKEN,
    TOKEN,
    FakeFailedRecords,
    FakeSecrets,
    FakeStateStore,
    FakeVercel,
    make_sync_service,
    sync_one,
    vercel_unavailable,
)
from vercel_sync.calls import RetryPolicy
from vercel_sync.changes import SourceChange, SourcePosition
from vercel_sync.deadline import TimeBudget
from vercel_sync.errors import InvalidRecordError, TransientSyncError
from vercel_sync.sync.service import SyncService
from vercel_sync.sync_state import partner_version, payload_digest, sequence_version

INSTALLATION = "icfg_1"


def record(resource_id: str = "r1", **overrides: Any) -> dict[str, Any]:
    item: dict[str, Any] = {
        "integrationConfigurationId": INSTALLATION,
        "resourceId": resource_id,
        "productId": "prod",
        "name": f"name-{resource_id}",
        "status": "active",
    }
    item.update(overrides)
    return item


def sqs(item: dict[str, Any], message_id: str = "m", receive_count: int = 1) -> SourceChange:
    arn = "arn:aws:sqs:us-east-1:1:q"
    position = SourcePosition(kind="sqs", event_source_arn=arn, item_identifier=message_id, receive_count=receive_count)
    return SourceChange(position, item)


def stream(item: dict[str, Any], sequence_number: str, *, removed: bool = False) -> SourceChange:
    position = SourcePosition(
        kind="dynamodb-stream",
        event_source_arn="arn:aws:dynamodb:us-east-1:1:table/t/stream/x",
        item_identifier=sequence_number,
        event_name="REMOVE" if removed else "MODIFY",
    )
    return SourceChange(position, item, removed=removed)


class Sleeps:
    """Records each sleep and moves a fake monotonic clock (``now``) by it."""

    def __init__(self) -> None:
        self.seconds: list[float] = []
        self.clock = 1000.0

    def __call__(self, seconds: float) -> None:
        self.seconds.append(seconds)
        self.clock += seconds

    def now(self) -> float:
        return self.clock


def make_service(
    vercel: FakeVercel | None = None,
    *,
    state: FakeStateStore | None = None,
    failed: FakeFailedRecords | None = None,
    sleeps: Sleeps | None = None,
    **kwargs: Any,
) -> SyncService:
    sleeps = sleeps if sleeps is not None else Sleeps()
    kwargs.setdefault("monotonic", sleeps.now)
    return make_sync_service(
        vercel=vercel or FakeVercel(),
        secrets=FakeSecrets(),
        failed_records=failed if failed is not None else FakeFailedRecords(),
        state_store=state,
        sleep=sleeps,
        uniform=lambda low, high: high,  # the jitter's ceiling: deterministic
        **kwargs,
    )


# ------------------------------------------------------------------ coalescing


def test_changes_to_one_resource_are_coalesced_to_the_newest_by_version() -> None:
    vercel = FakeVercel()
    service = make_service(vercel, max_concurrency=1)
    # Out of order on a standard queue: version 3 arrives before version 2.
    changes = [
        sqs(record("r1", name="v1", version=1), "a"),
        sqs(record("r1", name="v3", version=3), "b"),
        sqs(record("r1", name="v2", version=2), "c"),
        sqs(record("r2", name="only"), "d"),
    ]

    results = service.sync_batch(changes)

    assert [r.outcome for r in results] == ["coalesced", "imported", "coalesced", "imported"]
    assert [(c.resource_id, c.body["name"]) for c in vercel.calls] == [("r1", "v3"), ("r2", "only")]


def test_without_versions_the_last_change_in_source_order_wins() -> None:
    vercel = FakeVercel()
    service = make_service(vercel)
    changes = [stream(record(name="first"), "100"), stream(record(name="second"), "200")]

    service.sync_batch(changes)

    assert [c.body["name"] for c in vercel.calls] == ["second"]


def test_when_the_newest_fails_every_change_it_coalesced_is_reported_failed() -> None:
    vercel = FakeVercel(failing={"r1": vercel_unavailable(503)})
    service = make_service(vercel, retry_policy=RetryPolicy(max_calls=2))
    changes = [stream(record(name="a"), "100"), stream(record("r2"), "150"), stream(record(name="b"), "200")]

    results = service.sync_batch(changes)

    assert [r.failed for r in results] == [True, False, True]
    assert len(vercel.calls) == 3  # r1 twice (one retry), r2 once


def test_invalid_changes_do_not_take_part_in_coalescing() -> None:
    vercel = FakeVercel()
    failed = FakeFailedRecords()
    service = make_service(vercel, failed=failed)
    changes = [sqs(record(name="good"), "a"), sqs(record(status="exploding"), "b")]

    results = service.sync_batch(changes)

    assert [r.outcome for r in results] == ["imported", "parked"]
    assert [c.body["name"] for c in vercel.calls] == ["good"]
    assert failed.reasons() == ["invalid_record"]


# ------------------------------------------------------------------ version guard and suppression


def test_a_change_not_newer_than_the_applied_version_is_skipped_as_stale() -> None:
    vercel = FakeVercel()
    state = FakeStateStore()
    service = make_service(vercel, state=state)

    assert sync_one(service, sqs(record(name="v5", version=5))) == "imported"
    assert sync_one(service, sqs(record(name="v4", version=4))) == "stale"
    assert sync_one(service, sqs(record(name="v5 again", version=5))) == "stale"  # equal counts as stale
    assert sync_one(service, sqs(record(name="v6", version=6))) == "imported"

    assert [c.body["name"] for c in vercel.calls] == ["v5", "v6"]


def test_iso_times_are_versions_too() -> None:
    vercel = FakeVercel()
    service = make_service(vercel, state=FakeStateStore())

    assert sync_one(service, sqs(record(version="2026-11-26T10:05:00Z"))) == "imported"
    assert sync_one(service, sqs(record(version="2026-11-26T10:00:00+00:00"))) == "stale"
    assert sync_one(service, sqs(record(version="2026-11-26T10:05:00.000001Z", name="later"))) == "imported"


def test_stream_sequence_numbers_order_changes_without_a_version() -> None:
    vercel = FakeVercel()
    service = make_service(vercel, state=FakeStateStore())

    assert sync_one(service, stream(record(name="new"), "200")) == "imported"
    # A redelivered older record (e.g. after a bisected batch) does not go back.
    assert sync_one(service, stream(record(name="old"), "100")) == "stale"
    assert [c.body["name"] for c in vercel.calls] == ["new"]


def test_an_unchanged_payload_costs_no_call_but_moves_the_version_on() -> None:
    vercel = FakeVercel()
    state = FakeStateStore()
    service = make_service(vercel, state=state)

    assert sync_one(service, sqs(record(version=1))) == "imported"
    # A change to a field the payload does not carry: same payload, no call.
    assert sync_one(service, sqs(record(version=2, internalNote="x"))) == "unchanged"
    # Version 2 was recorded, so a late version 1.5 with another payload is stale, not applied.
    assert sync_one(service, sqs(record(version=Decimal("1.5"), name="late"))) == "stale"
    assert len(vercel.calls) == 1


def test_the_digest_covers_secret_values_and_is_keyed_by_the_token() -> None:
    body = {"name": "x", "secrets": [{"name": "A", "value": "one"}]}
    changed = {"name": "x", "secrets": [{"name": "A", "value": "two"}]}

    assert payload_digest(body, key=TOKEN) != payload_digest(changed, key=TOKEN)
    assert payload_digest(body, key=TOKEN) != payload_digest(body, key=ROTATED_TOKEN)
    assert payload_digest(body, key=TOKEN) == payload_digest(dict(reversed(body.items())), key=TOKEN)
    assert "one" not in payload_digest(body, key=TOKEN)


def test_versions_are_checked_for_what_the_table_can_store() -> None:
    assert partner_version(Decimal("1e5")).value == Decimal("1e5")
    assert partner_version(Decimal("1" * 38)).value == Decimal("1" * 38)  # kept exact, not rounded
    with pytest.raises(InvalidRecordError, match="38 significant digits"):
        partner_version(Decimal("1" * 39))
    assert sequence_version("12345") is not None
    assert sequence_version("not-a-number") is None
    key = sequence_version("9" * 21)
    assert key is not None
    assert key.newer_than(sequence_version("1" * 20))


def test_a_busy_resource_is_waited_for_then_synced() -> None:
    vercel = FakeVercel()
    state = FakeStateStore()
    state.busy["r1"] = 2  # another invocation holds the claim for two more tries
    sleeps = Sleeps()
    service = make_service(vercel, state=state, sleeps=sleeps)

    assert sync_one(service, sqs(record())) == "imported"
    assert len(sleeps.seconds) == 2


def test_a_failed_call_releases_its_claim() -> None:
    vercel = FakeVercel(failing={"r1": vercel_unavailable(503)})
    state = FakeStateStore()
    service = make_service(vercel, state=state, retry_policy=RetryPolicy(max_calls=1))

    with pytest.raises(TransientSyncError):
        sync_one(service, sqs(record(version=1)))

    assert "claim" not in state.items[(INSTALLATION, "r1")]
    assert "partner" not in state.items[(INSTALLATION, "r1")]  # nothing recorded: it was not applied


# ------------------------------------------------------------------ retries inside the invocation


def test_backoff_is_exponential_with_full_jitter_and_never_sooner_than_retry_after() -> None:
    error_with_wait = TransientSyncError("Vercel answered 503", http_status=503, retry_after_seconds=3.0)
    vercel = FakeVercel(script={"r1": [vercel_unavailable(500), vercel_unavailable(502), error_with_wait]})
    sleeps = Sleeps()
    service = make_service(vercel, sleeps=sleeps, retry_policy=RetryPolicy(base_delay_seconds=0.5))

    assert sync_one(service, sqs(record())) == "imported"

    # The jitter is drawn at its ceiling here: 0.5, 1.0, then Retry-After's 3 s beats 2.0.
    assert sleeps.seconds == [0.5, 1.0, 3.0]
    assert len(vercel.calls) == 4


def test_jitter_is_uniform_below_the_ceiling() -> None:
    draws: list[tuple[float, float]] = []
    policy = RetryPolicy(base_delay_seconds=0.2, max_delay_seconds=1.0)

    for failed_calls in (1, 2, 3, 4, 5):
        policy.backoff_seconds(failed_calls, lambda low, high: draws.append((low, high)) or 0.0)

    assert draws == [(0.0, 0.2), (0.0, 0.4), (0.0, 0.8), (0.0, 1.0), (0.0, 1.0)]


def test_retries_stop_when_the_invocation_could_not_wait_and_still_finish() -> None:
    now = [1000.0]
    wait = TransientSyncError("Vercel answered 429", http_status=429, retry_after_seconds=20.0)
    vercel = FakeVercel(failing={"r1": wait})
    sleeps = Sleeps()
    service = make_service(
        vercel,
        sleeps=sleeps,
        time_budget=TimeBudget(aws_call_ms=1_000, vercel_call_ms=5_000, margin_ms=1_000),
        monotonic=lambda: now[0],
    )

    # 30 s left: enough to start (7 s), not to wait 20 s and then call (20 + 7 s > 30 - the start).
    with pytest.raises(TransientSyncError, match="429"):
        sync_one(service, sqs(record()), time_left_ms=25_000)

    assert len(vercel.calls) == 1
    assert sleeps.seconds == []


def test_a_429_pauses_every_call_of_that_installation() -> None:
    throttled = TransientSyncError("Vercel answered 429", http_status=429, retry_after_seconds=2.0)
    vercel = FakeVercel(script={"r1": [throttled]})
    now = [0.0]
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        now[0] += seconds

    service = make_sync_service(
        vercel=vercel,
        secrets=FakeSecrets(),
        failed_records=FakeFailedRecords(),
        max_concurrency=1,
        sleep=sleep,
        monotonic=lambda: now[0],
        uniform=lambda low, high: 0.0,
    )
    changes = [sqs(record("r1"), "a"), sqs(record("r2"), "b"), sqs(record("r3", integrationConfigurationId="other"))]

    results = service.sync_batch(changes)

    assert all(r.outcome == "imported" for r in results)
    # r1 waited Retry-After; r2 (same installation) found the pause still on, r3 (another) did not.
    assert sleeps == [2.0]
    assert [c.resource_id for c in vercel.calls] == ["r1", "r1", "r2", "r3"]


def test_a_429_reaches_the_shared_rate_limiter() -> None:
    class Limiter:
        def __init__(self) -> None:
            self.acquired: list[float] = []
            self.paused: list[tuple[str, float]] = []

        def acquire(self, installation_id: str, *, max_wait_seconds: float) -> bool:
            self.acquired.append(max_wait_seconds)
            return True

        def pause(self, installation_id: str, seconds: float) -> None:
            self.paused.append((installation_id, seconds))

    limiter = Limiter()
    throttled = TransientSyncError("Vercel answered 429", http_status=429, retry_after_seconds=1.5)
    service = make_service(FakeVercel(script={"r1": [throttled]}), rate_limiter=limiter)

    assert sync_one(service, sqs(record())) == "imported"
    assert limiter.paused == [(INSTALLATION, 1.5)]
    assert len(limiter.acquired) == 2  # a token for each call


@pytest.mark.parametrize("call_seconds", [0.0, 18.5])
def test_calls_that_decide_nothing_are_skipped_when_the_invocation_is_nearly_over(call_seconds: float) -> None:
    """Sharing a 429's pause and releasing a claim are best effort: with less time left than one AWS
    call and the margin (20 s left, the call took 18.5 s; 2 s needed), they are not started (the
    claim's lease lapses by itself), so they cannot make the invocation overrun its timeout."""

    class Limiter:
        def __init__(self) -> None:
            self.paused: list[tuple[str, float]] = []

        def acquire(self, installation_id: str, *, max_wait_seconds: float) -> bool:
            return True

        def pause(self, installation_id: str, seconds: float) -> None:
            self.paused.append((installation_id, seconds))

    class SlowThrottledVercel(FakeVercel):
        def import_resource(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
            sleeps.clock += call_seconds  # the call took this long
            return super().import_resource(*args, **kwargs)

    sleeps = Sleeps()
    limiter, state = Limiter(), FakeStateStore()
    throttled = TransientSyncError("Vercel answered 429", http_status=429, retry_after_seconds=30.0)
    service = make_service(
        SlowThrottledVercel(failing={"r1": throttled}),
        state=state,
        sleeps=sleeps,
        rate_limiter=limiter,
        time_budget=TimeBudget(aws_call_ms=1_000, vercel_call_ms=5_000, margin_ms=1_000),
    )

    with pytest.raises(TransientSyncError, match="429"):
        sync_one(service, sqs(record(version=1)), time_left_ms=20_000)

    claimed = "claim" in state.items[(INSTALLATION, "r1")]
    assert limiter.paused == ([] if call_seconds else [(INSTALLATION, 30.0)])
    assert claimed == bool(call_seconds)


def test_no_token_from_the_rate_limiter_in_time_sends_the_record_back() -> None:
    class Empty:
        def acquire(self, installation_id: str, *, max_wait_seconds: float) -> bool:
            return False

        def pause(self, installation_id: str, seconds: float) -> None:
            pass

    vercel = FakeVercel()
    service = make_service(vercel, rate_limiter=Empty())

    with pytest.raises(TransientSyncError, match="rate limit"):
        sync_one(service, sqs(record()))
    assert vercel.calls == []


def test_the_failed_record_counts_attempts_across_deliveries_and_calls() -> None:
    from tests.fakes import vercel_rejects

    failed = FakeFailedRecords()
    vercel = FakeVercel(script={"r1": [vercel_unavailable(503), vercel_rejects(422)]})
    service = make_service(vercel, failed=failed)

    assert sync_one(service, sqs(record(), receive_count=3)) == "parked"

    (message,) = failed.messages
    assert (message["attempts"], message["vercelCalls"]) == (4, 2)


def test_a_401_rereads_the_token_once_for_the_whole_installation() -> None:
    vercel = FakeVercel(valid_tokens={ROTATED_TOKEN})
    secrets = FakeSecrets()
    reads: list[bool] = []

    def token(installation_id: str, *, force_fetch: bool = False) -> str:
        reads.append(force_fetch)
        return ROTATED_TOKEN if force_fetch else TOKEN

    secrets.installation_token = token  # type: ignore[method-assign]
    service = make_sync_service(
        vercel=vercel, secrets=secrets, failed_records=FakeFailedRecords(), max_concurrency=1, sleep=lambda _s: None
    )

    results = service.sync_batch([sqs(record("r1"), "a"), sqs(record("r2"), "b")])

    assert [r.outcome for r in results] == ["imported", "imported"]
    assert reads == [False, True]
    assert [c.token for c in vercel.calls] == [TOKEN, ROTATED_TOKEN, ROTATED_TOKEN]


# ------------------------------------------------------------------ concurrency


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
    changes = [sqs(record(f"r{i}"), f"m{i}") for i in range(calls)]

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
    changes = [sqs(record(f"r{i % 5}", name=f"n{n}"), f"m{n}") for n, i in enumerate(range(20))]

    service.sync_batch(changes)

    assert overlaps == []
    assert len(vercel.calls) == 10  # 5 resources, each one failure and one retry


# ------------------------------------------------------------------ handing back under the rate limit


class RecordingSourceQueue:
    def __init__(self) -> None:
        self.deferred: list[tuple[str, str, float]] = []

    def defer(self, queue_arn: str, messages: Any) -> int:
        self.deferred.extend((queue_arn, handle, seconds) for handle, seconds in messages)
        return len(messages)


class NoCallsLeft:
    def acquire(self, installation_id: str, *, max_wait_seconds: float) -> bool:
        return False

    def pause(self, installation_id: str, seconds: float) -> None:
        pass


def sqs_event(bodies: list[dict[str, Any]], *, fifo_groups: list[str] | None = None) -> dict[str, Any]:
    import json

    arn = "arn:aws:sqs:us-east-1:123456789012:partner-events" + (".fifo" if fifo_groups else "")
    records = []
    for index, body in enumerate(bodies):
        attributes: dict[str, Any] = {"ApproximateReceiveCount": "1"}
        if fifo_groups:
            attributes["MessageGroupId"] = fifo_groups[index]
        records.append(
            {
                "messageId": f"m{index}",
                "receiptHandle": f"h{index}",
                "body": json.dumps(body),
                "attributes": attributes,
                "messageAttributes": {},
                "eventSource": "aws:sqs",
                "eventSourceARN": arn,
            }
        )
    return {"Records": records}


def test_messages_sent_back_under_the_rate_limit_come_back_one_call_interval_apart() -> None:
    from tests.fakes import LambdaContext
    from vercel_sync.sources import handle_queue_event

    source = RecordingSourceQueue()
    service = make_service(
        rate_limiter=NoCallsLeft(), source_queue=source, call_interval_seconds=0.6, max_concurrency=1
    )
    event = sqs_event([record(f"r{i}") for i in range(3)] + [record("x", integrationConfigurationId="other")])

    response = handle_queue_event(event, LambdaContext(), service)

    assert len(response["batchItemFailures"]) == 4
    seconds = {handle: round(delay, 3) for _arn, handle, delay in source.deferred}
    # Per installation, spaced by the rate limit's interval (100/60 -> 0.6 s).
    assert seconds == {"h0": 0.6, "h1": 1.2, "h2": 1.8, "h3": 0.6}


def test_a_fifo_groups_reported_messages_all_come_back_with_its_first() -> None:
    from tests.fakes import LambdaContext
    from vercel_sync.sources import handle_queue_event

    source = RecordingSourceQueue()
    service = make_service(
        rate_limiter=NoCallsLeft(), source_queue=source, call_interval_seconds=2.0, max_concurrency=1
    )
    event = sqs_event([record("a"), record("b"), record("a", name="newer")], fifo_groups=["g", "g", "g"])

    handle_queue_event(event, LambdaContext(), service)

    assert sorted((handle, delay) for _arn, handle, delay in source.deferred) == [("h0", 2.0), ("h1", 2.0), ("h2", 2.0)]


def test_no_deferral_is_started_when_the_invocation_is_nearly_over() -> None:
    """Deferring decides nothing (skipped, a message returns after the visibility timeout): it is not
    started with less than one AWS call and the margin left, so it cannot overrun the timeout."""
    from tests.fakes import LambdaContext
    from vercel_sync.sources import handle_queue_event

    class RunningOut(LambdaContext):
        def __init__(self) -> None:
            self.answers = [60_000, 1_500]  # at the start; after the batch (2,000 ms needed)

        def get_remaining_time_in_millis(self) -> int:
            return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]

    source = RecordingSourceQueue()
    service = make_service(
        rate_limiter=NoCallsLeft(),
        source_queue=source,
        call_interval_seconds=0.6,
        max_concurrency=1,
        time_budget=TimeBudget(aws_call_ms=1_000, vercel_call_ms=5_000, margin_ms=1_000),
    )

    response = handle_queue_event(sqs_event([record("r0")]), RunningOut(), service)

    assert [item["itemIdentifier"] for item in response["batchItemFailures"]] == ["m0"]
    assert source.deferred == []


def test_other_transient_failures_keep_the_queues_own_timeout() -> None:
    from tests.fakes import LambdaContext
    from vercel_sync.sources import handle_queue_event

    source = RecordingSourceQueue()
    vercel = FakeVercel(failing={"r0": vercel_unavailable(503)})
    service = make_service(vercel, source_queue=source, retry_policy=RetryPolicy(max_calls=1))

    response = handle_queue_event(sqs_event([record("r0")]), LambdaContext(), service)

    assert [item["itemIdentifier"] for item in response["batchItemFailures"]] == ["m0"]
    assert source.deferred == []


def test_queue_urls_are_built_from_arns() -> None:
    from vercel_sync.adapters.source_queue import queue_url_from_arn

    assert queue_url_from_arn("arn:aws:sqs:eu-west-1:123456789012:q.fifo") == (
        "https://sqs.eu-west-1.amazonaws.com/123456789012/q.fifo"
    )
    assert queue_url_from_arn("arn:aws:dynamodb:eu-west-1:1:table/t") is None


def test_a_remove_is_newer_than_the_state_it_deletes() -> None:
    vercel = FakeVercel()
    service = make_service(vercel, state=FakeStateStore())

    assert sync_one(service, stream(record(version=7), "100")) == "imported"
    # The REMOVE's old image still says version 7: the deletion must not be taken as stale.
    assert sync_one(service, stream(record(version=7), "200", removed=True)) == "imported"
    assert vercel.calls[-1].body["status"] == "uninstalled"
    # A redelivered older change stays stale; the partner's next version applies.
    assert sync_one(service, stream(record(version=7), "100")) == "stale"
    assert sync_one(service, stream(record(version=8), "300")) == "imported"


def test_a_fifo_group_stops_at_its_first_failure_and_sends_or_parks_nothing_behind_it() -> None:
    from tests.fakes import LambdaContext
    from vercel_sync.sources import handle_queue_event

    vercel = FakeVercel(failing={"a": vercel_unavailable(503)})
    failed = FakeFailedRecords()
    service = make_service(vercel, failed=failed, retry_policy=RetryPolicy(max_calls=1))
    bodies = [record("a"), record("b"), record("c", status="exploding"), record("d")]
    event = sqs_event(bodies, fifo_groups=["g1", "g1", "g1", "g2"])

    response = handle_queue_event(event, LambdaContext(), service)

    assert [item["itemIdentifier"] for item in response["batchItemFailures"]] == ["m0", "m1", "m2"]
    # b is not sent and c (invalid) not parked now: they come back after a, in order.
    assert [c.resource_id for c in vercel.calls] == ["a", "d"]
    assert failed.messages == []


def test_a_resource_is_coalesced_within_its_fifo_group_only() -> None:
    vercel = FakeVercel()
    service = make_service(vercel, max_concurrency=1)
    position = SourcePosition
    changes = [
        SourceChange(position("sqs", "arn:q.fifo", "m0", message_group_id="g1"), record("a", name="one")),
        SourceChange(position("sqs", "arn:q.fifo", "m1", message_group_id="g2"), record("a", name="two")),
    ]

    results = service.sync_batch(changes)

    assert [r.outcome for r in results] == ["imported", "imported"]
    assert [c.body["name"] for c in vercel.calls] == ["one", "two"]
