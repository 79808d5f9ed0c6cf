"""The local runner's pure parts: Lambda event shapes from API responses, batch responses, invocations."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from local_runner.events import (
    epoch_seconds,
    region_of,
    reported_failures,
    sqs_event,
    stream_batch_failure,
    stream_event,
)
from local_runner.invocation import PollResult, invoke
from tests.fakes import load_event

STREAM_ARN = "arn:aws:dynamodb:eu-west-1:123456789012:table/partner-resources/stream/2026-11-26T00:00:00.000"
QUEUE_ARN = "arn:aws:sqs:eu-west-1:123456789012:partner-events.fifo"
KEYS = {"integrationConfigurationId": {"S": "icfg_demo01"}, "resourceId": {"S": "db_primary"}}
CREATED = datetime(2026, 11, 26, 10, 0, 1, 750_000, tzinfo=timezone(timedelta(hours=-5)))


def get_records_record(event_name: str, sequence_number: str, **images: dict[str, Any]) -> dict[str, Any]:
    """A record as boto3's GetRecords gives it (moto's flavour: eventVersion 1.0, a fractional time)."""
    return {
        "eventID": f"id-{sequence_number}",
        "eventName": event_name,
        "eventVersion": "1.0",
        "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1",
        "dynamodb": {
            "ApproximateCreationDateTime": CREATED,
            "Keys": KEYS,
            **images,
            "SequenceNumber": sequence_number,
            "SizeBytes": 99,
            "StreamViewType": "NEW_AND_OLD_IMAGES",
        },
    }


def received_message(message_id: str, **extra: Any) -> dict[str, Any]:
    """A message as boto3's ReceiveMessage gives it with AttributeNames=All (attribute order as moto's)."""
    return {
        "MessageId": message_id,
        "ReceiptHandle": f"handle-{message_id}",
        "MD5OfBody": "0" * 32,
        "Body": '{"resourceId": "auth_1"}',
        "Attributes": {
            "SenderId": "AIDAEXAMPLE",
            "SentTimestamp": "1795651200011",
            "ApproximateReceiveCount": "1",
            "ApproximateFirstReceiveTimestamp": "1795651200511",
            "MessageDeduplicationId": "dedup-1",
            "MessageGroupId": "icfg_demo01/auth_1",
            "SequenceNumber": "18849496460467696139",
        },
        **extra,
    }


def test_stream_records_take_the_shape_of_the_sample_events() -> None:
    image = {**KEYS, "status": {"S": "active"}}
    event = stream_event(
        [
            get_records_record("INSERT", "100", NewImage=image),
            get_records_record("MODIFY", "200", NewImage=image, OldImage=image),
            get_records_record("REMOVE", "300", OldImage=image),
        ],
        STREAM_ARN,
    )

    sample = load_event("stream_insert_modify_remove.json")["Records"]
    for built, expected in zip(event["Records"], sample, strict=True):
        assert list(built) == list(expected)
        assert set(built["dynamodb"]) == set(expected["dynamodb"])
        assert built["eventVersion"] == "1.1"
        assert built["awsRegion"] == "eu-west-1"  # the stream's, not the record's
        assert built["eventSourceARN"] == STREAM_ARN
        assert built["dynamodb"]["ApproximateCreationDateTime"] == int(CREATED.timestamp())
    assert [r["dynamodb"]["SequenceNumber"] for r in event["Records"]] == ["100", "200", "300"]


def test_epoch_seconds_drops_the_fraction_and_respects_the_time_zone() -> None:
    assert epoch_seconds(datetime(2026, 1, 1, 0, 0, 0, 999_000, tzinfo=UTC)) == 1_767_225_600
    assert epoch_seconds(datetime(2025, 12, 31, 19, 0, 0, tzinfo=timezone(timedelta(hours=-5)))) == 1_767_225_600
    assert epoch_seconds(1_767_225_600.5) == 1_767_225_600


def test_ttl_deletions_keep_their_user_identity() -> None:
    record = get_records_record("REMOVE", "1", OldImage=KEYS)
    record["userIdentity"] = {"PrincipalId": "dynamodb.amazonaws.com", "Type": "Service"}

    [built] = stream_event([record], STREAM_ARN)["Records"]

    assert built["userIdentity"] == {"type": "Service", "principalId": "dynamodb.amazonaws.com"}


def test_sqs_records_take_the_shape_of_the_sample_events() -> None:
    [built] = sqs_event([received_message("m-1")], QUEUE_ARN)["Records"]

    [expected, *_] = load_event("sqs_fifo.json")["Records"]
    assert list(built) == list(expected)
    assert list(built["attributes"]) == list(expected["attributes"])
    assert built["eventSourceARN"] == QUEUE_ARN
    assert built["awsRegion"] == "eu-west-1"
    assert built["receiptHandle"] == "handle-m-1"
    assert built["messageAttributes"] == {}


def test_sqs_message_attributes_become_lambdas_camel_case_with_base64_binaries() -> None:
    message = received_message(
        "m-2",
        MD5OfMessageAttributes="f" * 32,
        MessageAttributes={
            "kind": {"StringValue": "partner", "DataType": "String"},
            "blob": {"BinaryValue": b"\x00\x01\xff", "DataType": "Binary"},
        },
    )

    [built] = sqs_event([message], QUEUE_ARN)["Records"]

    assert built["md5OfMessageAttributes"] == "f" * 32
    assert built["messageAttributes"] == {
        "kind": {"stringValue": "partner", "stringListValues": [], "binaryListValues": [], "dataType": "String"},
        "blob": {"binaryValue": "AAH/", "stringListValues": [], "binaryListValues": [], "dataType": "Binary"},
    }


BATCH = ["100", "200", "300"]


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        (None, []),
        ({}, []),
        ({"batchItemFailures": None}, []),
        ({"batchItemFailures": []}, []),
        ({"batchItemFailures": [{"itemIdentifier": "300"}, {"itemIdentifier": "200"}]}, ["200", "300"]),
        ({"batchItemFailures": [{"itemIdentifier": "200"}, {"itemIdentifier": "200"}]}, ["200"]),
        ({"batchItemFailures": [{"itemIdentifier": ""}]}, None),
        ({"batchItemFailures": [{"itemIdentifier": None}]}, None),
        ({"batchItemFailures": [{"identifier": "200"}]}, None),
        ({"batchItemFailures": [{"itemIdentifier": "999"}]}, None),
        ({"batchItemFailures": [{"itemIdentifier": 200}]}, None),
        ({"batchItemFailures": "200"}, None),
        ("ok", None),
    ],
)
def test_reported_failures_read_the_response_as_lambda_does(response: Any, expected: list[str] | None) -> None:
    assert reported_failures(response, BATCH) == expected


def test_the_on_failure_description_locates_the_batch_without_its_records() -> None:
    image = {**KEYS, "password": {"S": "do-not-send"}}
    records = stream_event(
        [get_records_record("INSERT", "100", NewImage=image), get_records_record("MODIFY", "200", NewImage=image)],
        STREAM_ARN,
    )["Records"]

    failure = stream_batch_failure(
        records=records,
        stream_arn=STREAM_ARN,
        shard_id="shardId-1",
        function_arn="arn:aws:lambda:us-east-1:123456789012:function:stream_sync",
        request_id="req-1",
        invoke_count=3,
        function_error=True,
        now=datetime(2026, 11, 26, 12, 0, tzinfo=UTC),
    )

    assert failure["DDBStreamBatchInfo"] == {
        "shardId": "shardId-1",
        "startSequenceNumber": "100",
        "endSequenceNumber": "200",
        "approximateArrivalOfFirstRecord": "2026-11-26T15:00:01Z",
        "approximateArrivalOfLastRecord": "2026-11-26T15:00:01Z",
        "batchSize": 2,
        "streamArn": STREAM_ARN,
    }
    assert failure["requestContext"]["approximateInvokeCount"] == 3
    assert failure["responseContext"]["functionError"] == "Unhandled"
    assert failure["timestamp"] == "2026-11-26T12:00:00.000Z"
    assert "do-not-send" not in str(failure)


def test_region_of_rejects_what_is_not_a_regional_arn() -> None:
    assert region_of(QUEUE_ARN) == "eu-west-1"
    with pytest.raises(ValueError, match="not a regional ARN"):
        region_of("partner-events")


def test_invoke_names_the_exception_type_only_and_counts_a_late_return_as_a_timeout() -> None:
    def leaky(event: dict[str, Any], context: Any) -> None:
        raise RuntimeError("token vrcl_secret leaked")

    raised = invoke(leaky, {"Records": []}, function_name="f", timeout_seconds=1)
    late = invoke(lambda event, context: time.sleep(0.06), {"Records": []}, function_name="f", timeout_seconds=0.05)
    seen: list[int] = []
    ok = invoke(
        lambda event, context: seen.append(context.get_remaining_time_in_millis()) or {"batchItemFailures": []},
        {"Records": []},
        function_name="stream_sync",
        timeout_seconds=60,
    )

    assert raised.error == "raised RuntimeError"
    assert late.error == "timed out after 0.05 s"
    assert ok.error is None
    assert ok.response == {"batchItemFailures": []}
    assert ok.function_arn.endswith(":function:stream_sync")
    assert 59_000 < seen[0] <= 60_000


def test_poll_results_describe_counts_and_identifiers_only() -> None:
    assert PollResult(source="queue q").describe() == "queue q: nothing to deliver"
    assert (
        PollResult(source="queue q", records=3, reported=("m-2",), outcome="partial", notes=("2 deleted",)).describe()
        == "queue q: 3 records in, 1 reported failed, 2 deleted"
    )
    assert (
        PollResult(source="stream t", records=1, error="raised KeyError", outcome="failed").describe()
        == "stream t: 1 record in, handler raised KeyError"
    )


def test_the_command_line_takes_its_defaults_from_the_template() -> None:
    from local_aws.template import Template
    from local_runner.__main__ import template_defaults

    template = Template.load()
    assert template_defaults() == {
        "stream_batch_size": template.event_source("StreamSyncFunction", "PartnerTableStream")["BatchSize"],
        "queue_batch_size": template.event_source("QueueSyncFunction", "PartnerEvents")["BatchSize"],
        "function_timeout": template.function_timeout_seconds(),
        "rotation_timeout": template.resources["RotationSyncFunction"]["Properties"]["Timeout"],
    }
