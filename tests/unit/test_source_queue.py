"""``SqsSourceQueue.defer`` asks SQS for the seconds each message was given; a queue's URL is read from its ARN.

A stubbed SQS client (botocore's Stubber checks each request against SQS's model and the
exact parameters expected); no network.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from vercel_sync.adapters.source_queue import SqsSourceQueue

ARN = "arn:aws:sqs:eu-west-1:123456789012:partner-events.fifo"
URL = "https://sqs.eu-west-1.amazonaws.com/123456789012/partner-events.fifo"


@pytest.fixture
def sqs() -> Iterator[tuple[Any, Stubber]]:
    client = boto3.client("sqs", region_name="eu-west-1", aws_access_key_id="testing", aws_secret_access_key="testing")
    with Stubber(client) as stubber:
        yield client, stubber


def expect_batch(stubber: Stubber, entries: list[tuple[str, int]], *, failed: tuple[str, ...] = ()) -> None:
    """One ChangeMessageVisibilityBatch with exactly these (receipt handle, seconds), in order."""
    stubber.add_response(
        "change_message_visibility_batch",
        {
            "Successful": [{"Id": str(i)} for i in range(len(entries)) if str(i) not in failed],
            "Failed": [{"Id": i, "SenderFault": True, "Code": "ReceiptHandleIsInvalid"} for i in failed],
        },
        {
            "QueueUrl": URL,
            "Entries": [
                {"Id": str(i), "ReceiptHandle": handle, "VisibilityTimeout": seconds}
                for i, (handle, seconds) in enumerate(entries)
            ],
        },
    )


def test_each_message_is_deferred_by_its_own_seconds(sqs: tuple[Any, Stubber]) -> None:
    client, stubber = sqs
    # Fractions above a half: a timeout rounded to the nearest second or up gives the same seconds.
    expect_batch(stubber, [("h0", 2), ("h1", 3), ("h2", 90), ("h3", 601)])

    changed = SqsSourceQueue(sqs_client=client).defer(ARN, [("h0", 1.6), ("h1", 2.7), ("h2", 90.0), ("h3", 600.9)])

    assert changed == 4
    stubber.assert_no_pending_responses()


def test_seconds_are_kept_within_what_sqs_accepts(sqs: tuple[Any, Stubber]) -> None:
    """At least one second (0 would make the message visible at once, to be received again before
    a call is free), at most SQS's 12 hours."""
    client, stubber = sqs
    expect_batch(stubber, [("soon", 1), ("now", 1), ("late", 43_200), ("much later", 43_200)])

    changed = SqsSourceQueue(sqs_client=client).defer(
        ARN, [("soon", 0.3), ("now", 0.0), ("late", 43_200.0), ("much later", 1e9)]
    )

    assert changed == 4
    stubber.assert_no_pending_responses()


def test_more_than_ten_messages_go_in_batches_of_ten_and_only_accepted_ones_count(sqs: tuple[Any, Stubber]) -> None:
    client, stubber = sqs
    messages = [(f"h{n}", float(n + 1)) for n in range(23)]
    expect_batch(stubber, [(f"h{n}", n + 1) for n in range(10)])
    expect_batch(stubber, [(f"h{n}", n + 1) for n in range(10, 20)], failed=("3", "7"))
    expect_batch(stubber, [(f"h{n}", n + 1) for n in range(20, 23)])

    changed = SqsSourceQueue(sqs_client=client).defer(ARN, messages)

    assert changed == 21
    stubber.assert_no_pending_responses()


def test_a_batch_sqs_refuses_does_not_stop_the_others(sqs: tuple[Any, Stubber]) -> None:
    client, stubber = sqs
    stubber.add_client_error("change_message_visibility_batch", service_error_code="AWS.SimpleQueueService.Throttled")
    expect_batch(stubber, [("h10", 5)])

    changed = SqsSourceQueue(sqs_client=client).defer(ARN, [(f"h{n}", 5.0) for n in range(11)])

    assert changed == 1
    stubber.assert_no_pending_responses()


class RecordingClient:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []

    def change_message_visibility_batch(self, **request: Any) -> Any:
        self.requests.append(request)
        return {"Successful": [{"Id": entry["Id"]} for entry in request["Entries"]], "Failed": []}


@pytest.mark.parametrize(
    ("arn", "messages"),
    [("arn:aws:dynamodb:eu-west-1:1:table/t/stream/x", [("h", 5.0)]), (ARN, [])],
)
def test_nothing_is_sent_for_a_source_that_is_not_a_queue_or_no_message(arn: str, messages: Any) -> None:
    client = RecordingClient()
    assert SqsSourceQueue(sqs_client=client).defer(arn, messages) == 0
    assert client.requests == []


def test_queue_urls_are_built_from_arns() -> None:
    from vercel_sync.adapters.source_queue import queue_url_from_arn

    assert queue_url_from_arn("arn:aws:sqs:eu-west-1:123456789012:q.fifo") == (
        "https://sqs.eu-west-1.amazonaws.com/123456789012/q.fifo"
    )
    assert queue_url_from_arn("arn:aws:dynamodb:eu-west-1:1:table/t") is None


STANDARD_ARN = "arn:aws:sqs:eu-west-1:123456789012:partner-events"
STANDARD_URL = "https://sqs.eu-west-1.amazonaws.com/123456789012/partner-events"


def test_messages_are_sent_again_with_their_attributes_and_delay(sqs: tuple[Any, Stubber]) -> None:
    """Lambda's attribute form becomes SendMessage's; the delay is rounded up and kept within SQS's
    15 minutes; a message whose attribute cannot be sent is left out (it is deferred instead)."""
    client, stubber = sqs
    stubber.add_response(
        "send_message_batch",
        {
            "Successful": [{"Id": "0", "MessageId": "n0", "MD5OfMessageBody": "x"}],
            "Failed": [{"Id": "2", "SenderFault": False, "Code": "InternalError"}],
        },
        {
            "QueueUrl": STANDARD_URL,
            "Entries": [
                {
                    "Id": "0",
                    "MessageBody": "{}",
                    "DelaySeconds": 2,
                    "MessageAttributes": {
                        "kind": {"DataType": "String", "StringValue": "db"},
                        "blob": {"DataType": "Binary", "BinaryValue": b"\x00\x01"},
                    },
                },
                {"Id": "2", "MessageBody": "[]", "DelaySeconds": 900},
            ],
        },
    )
    messages = [
        (
            "{}",
            {
                "kind": {"stringValue": "db", "stringListValues": [], "binaryListValues": [], "dataType": "String"},
                "blob": {"binaryValue": "AAE=", "dataType": "Binary"},
            },
            1.2,
        ),
        ("{}", {"odd": {"dataType": "String"}}, 1.0),
        ("[]", {}, 5000.0),
    ]

    assert SqsSourceQueue(sqs_client=client).resend(STANDARD_ARN, messages) == {0}
    stubber.assert_no_pending_responses()
