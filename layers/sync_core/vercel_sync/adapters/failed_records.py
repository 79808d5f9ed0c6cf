"""The failed-records queue (SQS): where records that can never succeed wait, with their reason."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

from vercel_sync.adapters.aws_clients import LazyClient

# SQS takes up to 256 KiB per message; leave room for attributes.
MAX_MESSAGE_BYTES = 250 * 1024


class SqsFailedRecordsQueue:
    def __init__(self, queue_url: str, sqs_client: Any = None, client_factory: Callable[[], Any] | None = None) -> None:
        self.queue_url = queue_url
        self._sqs = LazyClient("sqs", sqs_client, factory=client_factory)

    def park(self, message: dict[str, Any]) -> None:
        body = json.dumps(message, separators=(",", ":"), default=str)
        if len(body.encode("utf-8")) > MAX_MESSAGE_BYTES:
            # Not sent without its record: once parked, the source forgets the change. It goes back to
            # its source, whose own dead-letter path keeps it whole.
            raise ValueError("failed-records message larger than one SQS message")
        request: dict[str, Any] = {
            "QueueUrl": self.queue_url,
            "MessageBody": body,
            "MessageAttributes": {
                "reason": {"DataType": "String", "StringValue": str(message.get("reason") or "unknown")},
            },
        }
        if self.queue_url.endswith(".fifo"):
            group = f"{message.get('integrationConfigurationId')}/{message.get('resourceId')}"
            # surrogatepass: an invalid record's ids may hold lone surrogates; any bytes will do here.
            request["MessageGroupId"] = hashlib.sha256(group.encode("utf-8", "surrogatepass")).hexdigest()[:64]
            request["MessageDeduplicationId"] = hashlib.sha256(body.encode()).hexdigest()[:128]
        self._sqs().send_message(**request)
