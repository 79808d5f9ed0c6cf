"""Lambda's event shapes, built from what the DynamoDB Streams and SQS APIs return (pure: no I/O).

Each builder takes the records exactly as boto3 returns them (``GetRecords`` of the low-level
``dynamodbstreams`` client, ``ReceiveMessage`` of ``sqs``) and gives what a Lambda event source
mapping hands the function, as in ``events/*.json``.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

# Lambda's DynamoDB events carry 1.1, whatever the record said (moto's GetRecords says 1.0).
STREAM_EVENT_VERSION = "1.1"

# The attribute order of the SQS records in events/*.json (FIFO ones last); any other attribute
# SQS returns (AWSTraceHeader, DeadLetterQueueSourceArn) follows these.
SQS_ATTRIBUTE_ORDER = (
    "ApproximateReceiveCount",
    "SentTimestamp",
    "SenderId",
    "ApproximateFirstReceiveTimestamp",
    "MessageGroupId",
    "MessageDeduplicationId",
    "SequenceNumber",
)


def region_of(arn: str) -> str:
    """The region field of an ARN (``arn:partition:service:region:account:resource``)."""
    parts = arn.split(":", 5)
    if len(parts) < 6 or parts[0] != "arn" or not parts[3]:
        raise ValueError(f"not a regional ARN: {arn!r}")
    return parts[3]


def epoch_seconds(value: datetime | float | int) -> int:
    """Epoch seconds, as Lambda puts ApproximateCreationDateTime in a DynamoDB event.

    botocore parses the API's epoch number into an aware datetime; DynamoDB Streams rounds the
    time down to the second, so the fraction moto adds is dropped too.
    """
    if isinstance(value, datetime):
        if value.tzinfo is None:  # botocore always sets one; be explicit rather than guess local time
            value = value.replace(tzinfo=UTC)
        return int(value.timestamp())
    return int(value)


def stream_record(record: Mapping[str, Any], stream_arn: str) -> dict[str, Any]:
    """One GetRecords record as a Lambda DynamoDB event record (key order as Lambda's)."""
    change = record["dynamodb"]
    dynamodb: dict[str, Any] = {
        "ApproximateCreationDateTime": epoch_seconds(change["ApproximateCreationDateTime"]),
        "Keys": change["Keys"],
    }
    # Present only as the stream view type and the change allow: INSERT has no OldImage, REMOVE no NewImage.
    for image in ("NewImage", "OldImage"):
        if image in change:
            dynamodb[image] = change[image]
    dynamodb["SequenceNumber"] = change["SequenceNumber"]
    dynamodb["SizeBytes"] = change["SizeBytes"]
    dynamodb["StreamViewType"] = change["StreamViewType"]
    lambda_record: dict[str, Any] = {
        "eventID": record["eventID"],
        "eventName": record["eventName"],
        "eventVersion": STREAM_EVENT_VERSION,
        "eventSource": "aws:dynamodb",
        # The stream's own region: moto writes "us-east-1" into every record, whatever the table's.
        "awsRegion": region_of(stream_arn),
        "dynamodb": dynamodb,
        "eventSourceARN": stream_arn,
    }
    if "userIdentity" in record:  # set on deletions made by DynamoDB's TTL
        lambda_record["userIdentity"] = {
            "type": record["userIdentity"]["Type"],
            "principalId": record["userIdentity"]["PrincipalId"],
        }
    return lambda_record


def stream_event(records: Iterable[Mapping[str, Any]], stream_arn: str) -> dict[str, Any]:
    """The event Lambda hands a DynamoDB stream function: ``{"Records": [...]}`` in stream order."""
    return {"Records": [stream_record(record, stream_arn) for record in records]}


def sqs_message_attribute(value: Mapping[str, Any]) -> dict[str, Any]:
    """One message attribute as Lambda writes it: camelCase keys, binary values base64-encoded."""
    attribute: dict[str, Any] = {}
    if "StringValue" in value:
        attribute["stringValue"] = value["StringValue"]
    if "BinaryValue" in value:
        attribute["binaryValue"] = _base64(value["BinaryValue"])
    attribute["stringListValues"] = list(value.get("StringListValues", []))
    attribute["binaryListValues"] = [_base64(item) for item in value.get("BinaryListValues", [])]
    attribute["dataType"] = value["DataType"]
    return attribute


def sqs_record(message: Mapping[str, Any], queue_arn: str) -> dict[str, Any]:
    """One ReceiveMessage message as a Lambda SQS event record (key order as Lambda's).

    The message must have been received with ``AttributeNames=["All"]`` and
    ``MessageAttributeNames=["All"]``, as Lambda receives them.
    """
    received = message.get("Attributes", {})
    attributes = {name: received[name] for name in SQS_ATTRIBUTE_ORDER if name in received}
    attributes.update({name: value for name, value in received.items() if name not in attributes})
    record: dict[str, Any] = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": attributes,
        "messageAttributes": {
            name: sqs_message_attribute(value) for name, value in message.get("MessageAttributes", {}).items()
        },
        "md5OfBody": message["MD5OfBody"],
    }
    if "MD5OfMessageAttributes" in message:  # only messages with attributes have one
        record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
    record["eventSource"] = "aws:sqs"
    record["eventSourceARN"] = queue_arn
    record["awsRegion"] = region_of(queue_arn)
    return record


def sqs_event(messages: Iterable[Mapping[str, Any]], queue_arn: str) -> dict[str, Any]:
    """The event Lambda hands an SQS function: ``{"Records": [...]}`` in the order received."""
    return {"Records": [sqs_record(message, queue_arn) for message in messages]}


def reported_failures(response: Any, batch_ids: Sequence[str]) -> list[str] | None:
    """The item identifiers a partial batch response reports failed, in batch order.

    As Lambda reads a response with ``ReportBatchItemFailures`` on: ``None``, ``{}``, a missing,
    null or empty ``batchItemFailures`` mean the whole batch succeeded (``[]``). Anything it
    cannot use (not an object, an item without ``itemIdentifier``, an empty or null one, or one
    that names no record of the batch) makes the whole batch a failure: then this returns ``None``.
    """
    if response is None:
        return []
    if not isinstance(response, Mapping):
        return None
    items = response.get("batchItemFailures")
    if items is None:
        return []
    if not isinstance(items, list):
        return None
    known = set(batch_ids)
    reported: set[str] = set()
    for item in items:
        identifier = item.get("itemIdentifier") if isinstance(item, Mapping) else None
        if not isinstance(identifier, str) or identifier not in known:
            return None
        reported.add(identifier)
    return [identifier for identifier in batch_ids if identifier in reported]


def stream_batch_failure(
    *,
    records: Sequence[Mapping[str, Any]],
    stream_arn: str,
    shard_id: str,
    function_arn: str,
    request_id: str,
    invoke_count: int,
    function_error: bool,
    now: datetime | None = None,
) -> dict[str, Any]:
    """What a stream event source mapping sends its on-failure destination for a discarded batch.

    It describes where the batch lies in the stream (shard, sequence-number range, size), never
    its records: a consumer reads them from the stream while it keeps them (24 h). ``records``
    are Lambda event records (see :func:`stream_record`).
    """
    first, last = records[0]["dynamodb"], records[-1]["dynamodb"]
    response_context: dict[str, Any] = {"statusCode": 200, "executedVersion": "$LATEST"}
    if function_error:
        response_context["functionError"] = "Unhandled"
    return {
        "requestContext": {
            "requestId": request_id,
            "functionArn": function_arn,
            "condition": "RetryAttemptsExhausted",
            "approximateInvokeCount": invoke_count,
        },
        "responseContext": response_context,
        "version": "1.0",
        "timestamp": _iso(now or datetime.now(UTC), milliseconds=True),
        "DDBStreamBatchInfo": {
            "shardId": shard_id,
            "startSequenceNumber": first["SequenceNumber"],
            "endSequenceNumber": last["SequenceNumber"],
            "approximateArrivalOfFirstRecord": _iso(datetime.fromtimestamp(first["ApproximateCreationDateTime"], UTC)),
            "approximateArrivalOfLastRecord": _iso(datetime.fromtimestamp(last["ApproximateCreationDateTime"], UTC)),
            "batchSize": len(records),
            "streamArn": stream_arn,
        },
    }


def _base64(value: bytes | str) -> str:
    # boto3 hands binary attribute values back as bytes; Lambda's event carries them base64-encoded.
    raw = value.encode() if isinstance(value, str) else value
    return base64.b64encode(raw).decode("ascii")


def _iso(moment: datetime, *, milliseconds: bool = False) -> str:
    return (
        moment.astimezone(UTC).isoformat(timespec="milliseconds" if milliseconds else "seconds").replace("+00:00", "Z")
    )
