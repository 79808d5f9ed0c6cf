"""Deferring messages sent back under the rate limit, against SQS (moto server)."""

from __future__ import annotations

import time

import pytest

from tests.integration.conftest import LocalStack
from vercel_sync.adapters.source_queue import SqsSourceQueue

pytestmark = pytest.mark.integration


def test_a_deferred_message_comes_back_after_its_seconds_not_the_queues_timeout(local_stack: LocalStack) -> None:
    sqs = local_stack.aws["sqs"]
    queue = local_stack.resources.queues["PartnerEventsQueue"]
    sqs.send_message(QueueUrl=queue.url, MessageBody="{}", MessageGroupId="g", MessageDeduplicationId="d1")
    (message,) = sqs.receive_message(QueueUrl=queue.url, MaxNumberOfMessages=1)["Messages"]
    assert sqs.receive_message(QueueUrl=queue.url, WaitTimeSeconds=0).get("Messages") is None  # in flight: 360 s

    changed = SqsSourceQueue(sqs_client=sqs).defer(queue.arn, [(message["ReceiptHandle"], 1.0)])

    assert changed == 1
    time.sleep(1.3)
    (again,) = sqs.receive_message(QueueUrl=queue.url, MaxNumberOfMessages=1, WaitTimeSeconds=1)["Messages"]
    assert again["MessageId"] == message["MessageId"]
