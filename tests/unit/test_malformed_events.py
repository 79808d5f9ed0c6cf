"""Malformed event fields (not the partner record: what Lambda's event itself says about it) make one
parked invalid record each; the rest of the batch syncs. Both handlers, with fake adapters."""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.fakes import FakeFailedRecords, FakeVercel, LambdaContext, load_event, load_handler
from vercel_sync.event_fields import LATEST_EPOCH_SECONDS, stream_created_at
from vercel_sync.sync.service import SyncService

stream_app = load_handler("stream_sync")
queue_app = load_handler("queue_sync")

TIME_PROBLEM = "the stream record's ApproximateCreationDateTime is not a time in epoch seconds"
NAME_PROBLEM = "the stream record's eventName is not INSERT, MODIFY or REMOVE"
NO_BODY = "the SQS record has no body"
NO_ATTRIBUTES = "the SQS record has no attributes"


def malformed_stream_record(change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    """A copy of a valid INSERT, for another resource, earliest in the shard, then changed."""
    record = copy.deepcopy(load_event("stream_insert_modify_remove.json")["Records"][0])
    record["dynamodb"]["SequenceNumber"] = "1"
    record["dynamodb"]["NewImage"]["resourceId"] = {"S": "malformed"}
    record["dynamodb"]["Keys"]["resourceId"] = {"S": "malformed"}
    change(record)
    return record


def set_created(value: Any) -> Callable[[dict[str, Any]], None]:
    return lambda record: record["dynamodb"].__setitem__("ApproximateCreationDateTime", value)


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        pytest.param(set_created(1e12), TIME_PROBLEM, id="created-1e12"),
        pytest.param(set_created(1e20), TIME_PROBLEM, id="created-1e20"),
        pytest.param(set_created(10**400), TIME_PROBLEM, id="created-integer-past-any-float"),
        pytest.param(set_created(-1), TIME_PROBLEM, id="created-negative"),
        pytest.param(set_created("yesterday"), TIME_PROBLEM, id="created-text"),
        pytest.param(set_created(True), TIME_PROBLEM, id="created-boolean"),
        pytest.param(set_created(253_402_300_800), TIME_PROBLEM, id="created-in-the-year-10000"),
        pytest.param(lambda record: record.__setitem__("eventName", "UPSERT"), NAME_PROBLEM, id="event-name-unknown"),
        pytest.param(lambda record: record.__setitem__("eventName", 3), NAME_PROBLEM, id="event-name-number"),
        pytest.param(lambda record: record.pop("eventName"), NAME_PROBLEM, id="event-name-missing"),
        pytest.param(lambda record: record.__setitem__("eventName", "DELETE"), NAME_PROBLEM, id="event-name-delete"),
        pytest.param(lambda record: record.__setitem__("eventName", "insert"), NAME_PROBLEM, id="event-name-lowercase"),
    ],
)
def test_a_malformed_stream_record_is_parked_and_the_shard_goes_on(
    change: Callable[[dict[str, Any]], None],
    problem: str,
    service: SyncService,
    fake_vercel: FakeVercel,
    failed_records: FakeFailedRecords,
) -> None:
    event = load_event("stream_insert_modify_remove.json")
    event["Records"].insert(0, malformed_stream_record(change))

    response = stream_app.lambda_handler(event, LambdaContext(remaining_ms=60_000))

    assert response == {"batchItemFailures": []}
    assert fake_vercel.resources_called() == ["db_primary", "cache/eu west#1"]
    (message,) = failed_records.messages
    assert message["reason"] == "invalid_record"
    assert message["detail"] == problem
    assert message["source"]["sequenceNumber"] == "1"
    # The image is kept, to replay the record once the event is put right.
    assert message["resourceId"] == "malformed"
    assert message["record"]["resourceId"] == "malformed"


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        pytest.param(lambda record: record.pop("body"), NO_BODY, id="no-body"),
        pytest.param(lambda record: record.__setitem__("body", None), NO_BODY, id="body-null"),
        pytest.param(lambda record: record.pop("attributes"), NO_ATTRIBUTES, id="no-attributes"),
        pytest.param(lambda record: record.__setitem__("attributes", None), NO_ATTRIBUTES, id="attributes-null"),
        pytest.param(lambda record: record.__setitem__("attributes", "x"), NO_ATTRIBUTES, id="attributes-text"),
        pytest.param(lambda record: record.__setitem__("attributes", [1]), NO_ATTRIBUTES, id="attributes-list"),
        pytest.param(
            lambda record: record.update(attributes=None, body="not json"), NO_ATTRIBUTES, id="no-attributes-bad-body"
        ),
    ],
)
@pytest.mark.parametrize(
    ("event_file", "resources"),
    [
        ("sqs_standard_raw_sns_eventbridge.json", ["auth_tenant_42", "db_replica", "cache/eu west#1"]),
        ("sqs_fifo.json", ["auth_tenant_42", "db_replica"]),
    ],
)
def test_a_malformed_queue_record_is_parked_and_the_batch_goes_on(
    event_file: str,
    resources: list[str],
    change: Callable[[dict[str, Any]], None],
    problem: str,
    service: SyncService,
    fake_vercel: FakeVercel,
    failed_records: FakeFailedRecords,
) -> None:
    event = load_event(event_file)
    malformed = copy.deepcopy(event["Records"][0])
    malformed["messageId"] = "malformed-message"
    change(malformed)
    event["Records"].insert(0, malformed)

    response = queue_app.lambda_handler(event, LambdaContext(remaining_ms=60_000))

    assert response == {"batchItemFailures": []}
    assert sorted(fake_vercel.resources_called()) == sorted(resources)
    (message,) = failed_records.messages
    assert message["reason"] == "invalid_record"
    assert message["detail"] == problem
    assert message["source"]["messageId"] == "malformed-message"


@pytest.mark.parametrize("stream", ["not an object", [{"NewImage": {}}]], ids=["text", "list"])
def test_a_stream_record_whose_dynamodb_field_is_not_an_object_is_parked(
    stream: Any, service: SyncService, fake_vercel: FakeVercel, failed_records: FakeFailedRecords
) -> None:
    event = load_event("stream_insert_modify_remove.json")
    event["Records"].insert(0, malformed_stream_record(lambda record: record.__setitem__("dynamodb", stream)))

    response = stream_app.lambda_handler(event, LambdaContext(remaining_ms=60_000))

    assert response == {"batchItemFailures": []}
    assert fake_vercel.resources_called() == ["db_primary", "cache/eu west#1"]
    (message,) = failed_records.messages
    assert message["reason"] == "invalid_record"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1795651201, datetime(2026, 11, 26, 0, 0, 1, tzinfo=UTC)),
        (1795651201.5, datetime(2026, 11, 26, 0, 0, 1, 500000, tzinfo=UTC)),
        ("1795651201", datetime(2026, 11, 26, 0, 0, 1, tzinfo=UTC)),  # a number sent as text
        (0, datetime(1970, 1, 1, tzinfo=UTC)),
        (LATEST_EPOCH_SECONDS, datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)),
        (None, None),  # absent: unknown, not malformed (the record is never parked for its age)
    ],
)
def test_an_approximate_creation_time_in_epoch_seconds_is_read(value: Any, expected: datetime | None) -> None:
    assert stream_created_at(value) == (expected, None)


def test_a_stream_record_without_an_approximate_creation_time_syncs(
    service: SyncService, fake_vercel: FakeVercel, failed_records: FakeFailedRecords
) -> None:
    event = load_event("stream_insert_modify_remove.json")
    for record in event["Records"]:
        del record["dynamodb"]["ApproximateCreationDateTime"]

    assert stream_app.lambda_handler(event, LambdaContext(remaining_ms=60_000)) == {"batchItemFailures": []}
    assert failed_records.messages == []
    assert fake_vercel.resources_called() == ["db_primary", "cache/eu west#1"]


def test_a_message_sent_back_without_its_queue_arn_is_not_deferred(
    service: SyncService, fake_vercel: FakeVercel, failed_records: FakeFailedRecords
) -> None:
    from dataclasses import replace

    from vercel_sync.errors import TransientSyncError

    deferred: list[tuple[str, list[tuple[str, float]]]] = []

    class SourceQueue:
        def defer(self, queue_arn: str, messages: Any) -> int:
            deferred.append((queue_arn, list(messages)))
            return len(messages)

    service.adapters = replace(service.adapters, source_queue=SourceQueue())
    throttled = TransientSyncError("Vercel answered 429", http_status=429, retry_after_seconds=30.0)
    fake_vercel.failing.update({"auth_tenant_42": throttled, "db_replica": throttled})
    event = load_event("sqs_standard_raw_sns_eventbridge.json")
    queue_arn = event["Records"][0]["eventSourceARN"]
    del event["Records"][0]["eventSourceARN"]

    response = queue_app.lambda_handler(event, LambdaContext(remaining_ms=60_000))

    assert len(response["batchItemFailures"]) == 2
    assert [arn for arn, _ in deferred] == [queue_arn]  # the other message, on its own queue
    assert [len(messages) for _, messages in deferred] == [1]


@pytest.mark.parametrize("group", [{"id": "g"}, ["g"]], ids=["object", "list"])
def test_a_fifo_record_whose_message_group_is_not_text_is_parked_and_the_batch_goes_on(
    group: Any, service: SyncService, fake_vercel: FakeVercel, failed_records: FakeFailedRecords
) -> None:
    event = load_event("sqs_fifo.json")
    malformed = copy.deepcopy(event["Records"][0])
    malformed["messageId"] = "malformed-message"
    malformed["attributes"]["MessageGroupId"] = group
    event["Records"].insert(0, malformed)

    response = queue_app.lambda_handler(event, LambdaContext(remaining_ms=60_000))

    assert response == {"batchItemFailures": []}
    assert sorted(fake_vercel.resources_called()) == ["auth_tenant_42", "db_replica"]
    (message,) = failed_records.messages
    assert message["source"]["messageId"] == "malformed-message"
    assert message["detail"] == "the SQS record's MessageGroupId is not a string"


@pytest.mark.parametrize("sequence_number", [{"S": "1"}, ["1"], 7, None], ids=["object", "list", "number", "null"])
def test_a_stream_record_whose_sequence_number_is_not_text_is_parked_and_the_shard_goes_on(
    sequence_number: Any, service: SyncService, fake_vercel: FakeVercel, failed_records: FakeFailedRecords
) -> None:
    event = load_event("stream_insert_modify_remove.json")
    event["Records"].insert(
        0, malformed_stream_record(lambda r: r["dynamodb"].__setitem__("SequenceNumber", sequence_number))
    )

    response = stream_app.lambda_handler(event, LambdaContext(remaining_ms=60_000))

    assert response == {"batchItemFailures": []}
    assert fake_vercel.resources_called() == ["db_primary", "cache/eu west#1"]
    (message,) = failed_records.messages
    assert message["reason"] == "invalid_record"
    assert message["detail"] == "the stream record's SequenceNumber is not a string"
    assert message["record"]["resourceId"] == "malformed"


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda record: record.__setitem__("eventSourceARN", None), id="source-arn-null"),
        pytest.param(lambda record: record.__setitem__("eventSourceARN", 5), id="source-arn-number"),
        pytest.param(
            lambda record: record["attributes"].__setitem__("ApproximateReceiveCount", float("inf")),
            id="receive-count-infinite",
        ),
        pytest.param(
            lambda record: record["attributes"].__setitem__("ApproximateReceiveCount", [1]), id="receive-count-list"
        ),
    ],
)
@pytest.mark.parametrize(
    ("event_file", "resources"),
    [
        ("sqs_standard_raw_sns_eventbridge.json", ["auth_tenant_42", "db_replica", "cache/eu west#1"]),
        ("sqs_fifo.json", ["auth_tenant_42", "db_replica"]),
    ],
)
def test_an_odd_field_lambda_reads_for_itself_does_not_fail_the_batch(
    event_file: str,
    resources: list[str],
    change: Callable[[dict[str, Any]], None],
    service: SyncService,
    fake_vercel: FakeVercel,
    failed_records: FakeFailedRecords,
) -> None:
    """The queue's ARN and the receive count decide nothing about the partner record: it syncs."""
    event = load_event(event_file)
    change(event["Records"][0])

    response = queue_app.lambda_handler(event, LambdaContext(remaining_ms=60_000))

    assert response == {"batchItemFailures": []}
    assert sorted(fake_vercel.resources_called()) == sorted(resources)
    assert failed_records.messages == []
