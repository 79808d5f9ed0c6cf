"""Results -> the partial batch response (``sources.py``): a FIFO group stops at its first failure;
messages sent back under the rate limit are deferred one call interval apart, with the time for it."""

from __future__ import annotations

from typing import Any

from tests.builders import make_service, parsing_hits_a_bug_for, record_without_secret
from tests.fakes import FakeFailedRecords, FakeVercel, vercel_unavailable
from vercel_sync.calls import RetryPolicy
from vercel_sync.deadline import TimeBudget


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
    event = sqs_event(
        [record_without_secret(f"r{i}") for i in range(3)]
        + [record_without_secret("x", integrationConfigurationId="other")]
    )

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
    event = sqs_event(
        [record_without_secret("a"), record_without_secret("b"), record_without_secret("a", name="newer")],
        fifo_groups=["g", "g", "g"],
    )

    handle_queue_event(event, LambdaContext(), service)

    assert sorted((handle, delay) for _arn, handle, delay in source.deferred) == [("h0", 2.0), ("h1", 2.0), ("h2", 2.0)]


def test_no_deferral_is_started_when_the_invocation_is_nearly_over() -> None:
    """Deferring decides nothing (skipped, a message returns after the visibility timeout): it is not
    started with less than one AWS call and the margin left, so it cannot overrun the timeout."""
    from tests.fakes import RunningOutContext
    from vercel_sync.sources import handle_queue_event

    running_out = RunningOutContext(60_000, 1_500)  # at the start; after the batch (2,000 ms needed)
    source = RecordingSourceQueue()
    service = make_service(
        rate_limiter=NoCallsLeft(),
        source_queue=source,
        call_interval_seconds=0.6,
        max_concurrency=1,
        time_budget=TimeBudget(aws_call_ms=1_000, vercel_call_ms=5_000, margin_ms=1_000),
    )

    response = handle_queue_event(sqs_event([record_without_secret("r0")]), running_out, service)

    assert [item["itemIdentifier"] for item in response["batchItemFailures"]] == ["m0"]
    assert source.deferred == []


def test_other_transient_failures_keep_the_queues_own_timeout() -> None:
    from tests.fakes import LambdaContext
    from vercel_sync.sources import handle_queue_event

    source = RecordingSourceQueue()
    vercel = FakeVercel(failing={"r0": vercel_unavailable(503)})
    service = make_service(vercel, source_queue=source, retry_policy=RetryPolicy(max_calls=1))

    response = handle_queue_event(sqs_event([record_without_secret("r0")]), LambdaContext(), service)

    assert [item["itemIdentifier"] for item in response["batchItemFailures"]] == ["m0"]
    assert source.deferred == []


def test_a_fifo_group_stops_at_its_first_failure_and_sends_or_parks_nothing_behind_it() -> None:
    from tests.fakes import LambdaContext
    from vercel_sync.sources import handle_queue_event

    vercel = FakeVercel(failing={"a": vercel_unavailable(503)})
    failed = FakeFailedRecords()
    service = make_service(vercel, failed=failed, retry_policy=RetryPolicy(max_calls=1))
    bodies = [
        record_without_secret("a"),
        record_without_secret("b"),
        record_without_secret("c", status="exploding"),
        record_without_secret("d"),
    ]
    event = sqs_event(bodies, fifo_groups=["g1", "g1", "g1", "g2"])

    response = handle_queue_event(event, LambdaContext(), service)

    assert [item["itemIdentifier"] for item in response["batchItemFailures"]] == ["m0", "m1", "m2"]
    # b is not sent and c (invalid) not parked now: they come back after a, in order.
    assert [c.resource_id for c in vercel.calls] == ["a", "d"]
    assert failed.messages == []


def test_after_a_record_whose_parsing_hits_a_bug_its_fifo_groups_later_messages_are_reported_too(
    monkeypatch: Any,
) -> None:
    """The record goes back; were the group's later messages deleted, it would be applied after them."""
    from tests.fakes import LambdaContext
    from vercel_sync.sources import handle_queue_event

    parsing_hits_a_bug_for("buggy", monkeypatch)
    event = sqs_event([record_without_secret("buggy"), record_without_secret("b")], fifo_groups=["g", "g"])

    response = handle_queue_event(event, LambdaContext(), make_service(max_concurrency=1))

    assert [item["itemIdentifier"] for item in response["batchItemFailures"]] == ["m0", "m1"]


class FirstCallOnly(NoCallsLeft):
    def __init__(self) -> None:
        self.given = 0

    def acquire(self, installation_id: str, *, max_wait_seconds: float) -> bool:
        self.given += 1
        return self.given == 1


def test_a_fifo_groups_held_messages_come_back_with_its_failed_one() -> None:
    from tests.fakes import LambdaContext
    from vercel_sync.sources import handle_queue_event

    source = RecordingSourceQueue()
    service = make_service(
        rate_limiter=NoCallsLeft(), source_queue=source, call_interval_seconds=2.0, max_concurrency=1
    )
    event = sqs_event([record_without_secret("a"), record_without_secret("b")], fifo_groups=["g", "g"])

    handle_queue_event(event, LambdaContext(), service)

    assert sorted((handle, delay) for _arn, handle, delay in source.deferred) == [("h0", 2.0), ("h1", 2.0)]


def test_a_fifo_groups_messages_imported_before_its_failure_do_not_decide_when_it_comes_back() -> None:
    from tests.fakes import LambdaContext
    from vercel_sync.sources import handle_queue_event

    source = RecordingSourceQueue()
    service = make_service(
        rate_limiter=FirstCallOnly(), source_queue=source, call_interval_seconds=2.0, max_concurrency=1
    )
    event = sqs_event(
        [record_without_secret("a"), record_without_secret("b"), record_without_secret("c")],
        fifo_groups=["g", "g", "g"],
    )

    response = handle_queue_event(event, LambdaContext(), service)

    assert [item["itemIdentifier"] for item in response["batchItemFailures"]] == ["m1", "m2"]
    assert sorted((handle, delay) for _arn, handle, delay in source.deferred) == [("h1", 2.0), ("h2", 2.0)]


class ResendingSourceQueue(RecordingSourceQueue):
    """Also takes messages sent again (``accept``: whether SQS takes them)."""

    def __init__(self, *, accept: bool = True) -> None:
        super().__init__()
        self.accept = accept
        self.resent: list[tuple[str, str, dict[str, Any], float]] = []

    def resend(self, queue_arn: str, messages: Any) -> set[int]:
        if not self.accept:
            return set()
        self.resent.extend((queue_arn, body, dict(attributes), seconds) for body, attributes, seconds in messages)
        return set(range(len(messages)))


def received(event: dict[str, Any], *counts: int) -> dict[str, Any]:
    for record, count in zip(event["Records"], counts, strict=True):
        record["attributes"]["ApproximateReceiveCount"] = str(count)
    return event


def test_a_standard_queues_message_waiting_for_the_rate_limit_again_is_sent_as_a_new_message() -> None:
    """Its second wait would spend a second receive of the dead-letter limit: sent again instead (a
    new message, receive count 0), delayed as it would have been deferred, and not reported (deleted)."""
    from tests.fakes import LambdaContext
    from vercel_sync.sources import handle_queue_event

    source = ResendingSourceQueue()
    service = make_service(
        rate_limiter=NoCallsLeft(), source_queue=source, call_interval_seconds=0.6, max_concurrency=1
    )
    event = received(sqs_event([record_without_secret("r0"), record_without_secret("r1")]), 1, 2)
    event["Records"][1]["messageAttributes"] = {"kind": {"stringValue": "db", "dataType": "String"}}

    response = handle_queue_event(event, LambdaContext(), service)

    assert [item["itemIdentifier"] for item in response["batchItemFailures"]] == ["m0"]
    assert [(handle, round(delay, 3)) for _arn, handle, delay in source.deferred] == [("h0", 0.6)]
    ((arn, body, attributes, seconds),) = source.resent
    assert arn == event["Records"][1]["eventSourceARN"]
    assert body == event["Records"][1]["body"]
    assert attributes == {"kind": {"stringValue": "db", "dataType": "String"}}
    assert round(seconds, 3) == 1.2


def test_a_message_sqs_does_not_take_again_goes_back_as_before() -> None:
    from tests.fakes import LambdaContext
    from vercel_sync.sources import handle_queue_event

    source = ResendingSourceQueue(accept=False)
    service = make_service(
        rate_limiter=NoCallsLeft(), source_queue=source, call_interval_seconds=0.6, max_concurrency=1
    )

    response = handle_queue_event(received(sqs_event([record_without_secret("r0")]), 4), LambdaContext(), service)

    assert [item["itemIdentifier"] for item in response["batchItemFailures"]] == ["m0"]
    assert [handle for _arn, handle, _delay in source.deferred] == ["h0"]


def test_fifo_messages_and_other_transient_failures_are_never_sent_again() -> None:
    """A FIFO message sent again would go behind its group's later ones; a failure that is not the
    rate limit's (Vercel down) keeps counting towards the dead-letter queue, as it should."""
    from tests.fakes import LambdaContext
    from vercel_sync.sources import handle_queue_event

    source = ResendingSourceQueue()
    service = make_service(
        rate_limiter=NoCallsLeft(), source_queue=source, call_interval_seconds=0.6, max_concurrency=1
    )
    fifo = received(sqs_event([record_without_secret("a")], fifo_groups=["g"]), 3)
    assert len(handle_queue_event(fifo, LambdaContext(), service)["batchItemFailures"]) == 1

    vercel = FakeVercel(failing={"r0": vercel_unavailable(503)})
    service = make_service(vercel, source_queue=source, retry_policy=RetryPolicy(max_calls=1))
    down = received(sqs_event([record_without_secret("r0")]), 3)
    assert len(handle_queue_event(down, LambdaContext(), service)["batchItemFailures"]) == 1

    assert source.resent == []


def test_a_message_sent_back_is_still_sent_again_in_the_time_kept_for_parking() -> None:
    """A wait for the limit ends leaving the parking reserve (one AWS call and the margin): sending
    again and deferring fit in it, where a read's reserve (a call, then parking, then the margin) would not."""
    from tests.fakes import RunningOutContext
    from vercel_sync.sources import handle_queue_event

    # At the start; after the batch (parking needs 2,000 ms, a read 3,000).
    parking_reserve_left = RunningOutContext(60_000, 2_500)
    source = ResendingSourceQueue()
    service = make_service(
        rate_limiter=NoCallsLeft(),
        source_queue=source,
        call_interval_seconds=0.6,
        max_concurrency=1,
        time_budget=TimeBudget(aws_call_ms=1_000, vercel_call_ms=5_000, margin_ms=1_000),
    )
    event = received(sqs_event([record_without_secret("r0"), record_without_secret("r1")]), 2, 1)

    response = handle_queue_event(event, parking_reserve_left, service)

    assert [item["itemIdentifier"] for item in response["batchItemFailures"]] == ["m1"]
    assert len(source.resent) == 1
    assert [handle for _arn, handle, _delay in source.deferred] == ["h1"]
