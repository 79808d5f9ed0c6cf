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

    deferred_at = time.monotonic()
    changed = SqsSourceQueue(sqs_client=sqs).defer(queue.arn, [(message["ReceiptHandle"], 3.0)])

    assert changed == 1
    # Invisible until its seconds are up (a timeout of 0 would hand it out again at once) ...
    for check_at in (0.0, 1.5):
        time.sleep(max(0.0, deferred_at + check_at - time.monotonic()))
        assert sqs.receive_message(QueueUrl=queue.url, WaitTimeSeconds=0).get("Messages") is None, check_at
    # ... then visible again, seconds after the deferral rather than the queue's 360 s.
    again = sqs.receive_message(QueueUrl=queue.url, MaxNumberOfMessages=1, WaitTimeSeconds=6).get("Messages")
    back_after = time.monotonic() - deferred_at
    assert again is not None, "not back 6 s after a deferral of 3 s"
    assert again[0]["MessageId"] == message["MessageId"]
    assert back_after >= 2.9
