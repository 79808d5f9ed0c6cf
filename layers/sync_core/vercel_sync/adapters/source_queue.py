"""The partner events queue, as the queue function's source: a message sent back under the rate limit
(or a 429) is made visible again when a call is expected to be free, not after the whole visibility
timeout; or, on a standard queue, sent again as a new message, whose receive count starts afresh
(docs/architecture.md, "Bursts and the dead-letter queue")."""

from __future__ import annotations

import base64
import binascii
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from vercel_sync.adapters.aws_clients import LazyClient

# SQS accepts visibility timeouts of 0 to 12 h, and message delays of 0 to 15 min.
MAX_VISIBILITY_SECONDS = 43_200
MAX_DELAY_SECONDS = 900


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

    def resend(self, queue_arn: str, messages: Sequence[tuple[str, Mapping[str, Any], float]]) -> set[int]:
        """Send each ``(body, Lambda's messageAttributes, seconds)`` again, delayed by its seconds (at
        most 15 min). Returns the positions SQS accepted; the others stay as they were."""
        url = queue_url_from_arn(queue_arn)
        if url is None:
            return set()
        accepted: set[int] = set()
        for start in range(0, len(messages), 10):
            entries = []
            for index, (body, attributes, seconds) in enumerate(messages[start : start + 10], start):
                entry: dict[str, Any] = {
                    "Id": str(index),
                    "MessageBody": body,
                    "DelaySeconds": max(0, min(MAX_DELAY_SECONDS, math.ceil(seconds))),
                }
                converted = send_attributes(attributes)
                if converted is None:
                    continue  # an attribute SendMessage cannot carry: the message is deferred instead
                if converted:
                    entry["MessageAttributes"] = converted
                entries.append(entry)
            if not entries:
                continue
            try:
                response = self._sqs().send_message_batch(QueueUrl=url, Entries=entries)
            except Exception:  # noqa: BLE001, S112 - not sent: the message goes back to the queue as before  # nosec B112
                continue
            accepted.update(int(entry["Id"]) for entry in response.get("Successful", []))
        return accepted


def send_attributes(attributes: Mapping[str, Any]) -> dict[str, dict[str, Any]] | None:
    """Lambda's ``messageAttributes`` of a record as SendMessage takes them; None if one cannot be."""
    converted: dict[str, dict[str, Any]] = {}
    for name, value in attributes.items():
        if not isinstance(value, Mapping) or not isinstance(value.get("dataType"), str):
            return None
        attribute: dict[str, Any] = {"DataType": value["dataType"]}
        if isinstance(value.get("stringValue"), str):
            attribute["StringValue"] = value["stringValue"]
        elif isinstance(value.get("binaryValue"), str):
            try:
                attribute["BinaryValue"] = base64.b64decode(value["binaryValue"], validate=True)
            except (binascii.Error, ValueError):
                return None
        else:
            return None
        converted[str(name)] = attribute
    return converted
