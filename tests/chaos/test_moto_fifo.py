"""The chaos suite's moto server keeps a FIFO message group's order after a redelivery, as SQS does
(``moto_fifo``): without the fix, moto 5.2.5 hands over the group's last message first."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

pytestmark = [pytest.mark.chaos, pytest.mark.integration]


def test_a_redelivered_group_starts_again_at_its_first_message(chaos_aws: dict[str, Any]) -> None:
    sqs = chaos_aws["sqs"]
    url = sqs.create_queue(
        QueueName=f"fifo-order-{uuid.uuid4().hex[:8]}.fifo",
        Attributes={"FifoQueue": "true", "VisibilityTimeout": "360"},
    )["QueueUrl"]
    for index in range(4):
        sqs.send_message(
            QueueUrl=url, MessageBody=f"m{index}", MessageGroupId="g", MessageDeduplicationId=uuid.uuid4().hex
        )
    received = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    assert [m["Body"] for m in received] == ["m0", "m1", "m2", "m3"]
    assert sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []) == []  # group in flight

    # The whole batch is reported failed: visible again at once, as a Lambda partial response leaves it.
    sqs.change_message_visibility_batch(
        QueueUrl=url,
        Entries=[
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0} for i, m in enumerate(received)
        ],
    )
    again = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=2)["Messages"]
    assert [m["Body"] for m in again] == ["m0", "m1"]
