"""The partner events queue, as the queue function's source: a message sent back under the rate limit
(or a 429) is made visible again when a call is expected to be free, not after the whole visibility
timeout, and without spending a receive (each counts towards the dead-letter queue's)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from vercel_sync.adapters.aws_clients import LazyClient

# SQS accepts visibility timeouts of 0 to 12 h.
MAX_VISIBILITY_SECONDS = 43_200


def queue_url_from_arn(queue_arn: str) -> str | None:
    """``arn:aws:sqs:REGION:ACCOUNT:NAME`` -> the queue's URL (SQS locates a queue by its URL's path)."""
    parts = queue_arn.split(":")
    if len(parts) != 6 or parts[2] != "sqs":
        return None
    _, partition, _, region, account, name = parts
    domain = "amazonaws.com.cn" if partition == "aws-cn" else "amazonaws.com"
    return f"https://sqs.{region}.{domain}/{account}/{name}"


class SqsSourceQueue:
    def __init__(self, sqs_client: Any = None, client_factory: Callable[[], Any] | None = None) -> None:
        self._sqs = LazyClient("sqs", sqs_client, factory=client_factory)

    def defer(self, queue_arn: str, messages: Sequence[tuple[str, float]]) -> int:
        """Make each ``(receipt handle, seconds)`` message visible again after its seconds.
        Returns how many SQS accepted; best effort (a message not changed keeps the queue's timeout)."""
        url = queue_url_from_arn(queue_arn)
        if url is None or not messages:
            return 0
        changed = 0
        for start in range(0, len(messages), 10):
            entries = [
                {
                    "Id": str(index),
                    "ReceiptHandle": receipt_handle,
                    "VisibilityTimeout": max(1, min(MAX_VISIBILITY_SECONDS, round(seconds))),
                }
                for index, (receipt_handle, seconds) in enumerate(messages[start : start + 10])
            ]
            try:
                response = self._sqs().change_message_visibility_batch(QueueUrl=url, Entries=entries)
            except Exception:  # noqa: BLE001, S112 - best effort: the queue's timeout still brings them back  # nosec B112
                continue
            changed += len(response.get("Successful", []))
        return changed
