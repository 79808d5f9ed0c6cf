"""The partner events queue, as the backfill sends to it: SendMessageBatch, retrying what SQS could not take."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from vercel_sync.adapters.aws_clients import PATIENT_AWS_TIMEOUTS, LazyClient
from vercel_sync.backfill.checkpoints import BackfillError
from vercel_sync.backfill.engine import OutboundMessage
from vercel_sync.event_fields import REPAIR_ATTRIBUTE


class SqsSender:
    def __init__(
        self,
        queue_url: str,
        *,
        run_id: str | None = None,
        repair: bool = False,
        client: Any = None,
        client_factory: Callable[[], Any] | None = None,
        attempts: int = 5,
        backoff_seconds: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.queue_url = queue_url
        self.fifo = queue_url.endswith(".fifo")
        self.run_id = run_id
        self.repair = repair  # a reconcile run's repairs: marked so the sync does not skip them as unchanged
        self._sqs = LazyClient("sqs", client, PATIENT_AWS_TIMEOUTS.config(), client_factory)
        self._attempts = attempts
        self._backoff_seconds = backoff_seconds
        self._sleep = sleep

    def entry(self, index: int, message: OutboundMessage) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "Id": str(index),
            "MessageBody": message.body,
            "MessageAttributes": {
                "origin": {"DataType": "String", "StringValue": "reconcile" if self.repair else "backfill"}
            },
        }
        if self.repair:
            entry["MessageAttributes"][REPAIR_ATTRIBUTE] = {"DataType": "String", "StringValue": "true"}
        if self.run_id:
            entry["MessageAttributes"]["backfillRunId"] = {"DataType": "String", "StringValue": self.run_id}
        if self.fifo:
            entry["MessageGroupId"] = message.group_id
            # A repair must not be dropped as a duplicate of a backfill's message of the same state.
            prefix = "repair-" if self.repair else ""
            entry["MessageDeduplicationId"] = prefix + message.deduplication_id
        return entry

    def send_batch(self, messages: Sequence[OutboundMessage]) -> None:
        pending = {str(i): self.entry(i, message) for i, message in enumerate(messages)}
        codes = ""
        for attempt in range(self._attempts):
            response = self._sqs().send_message_batch(QueueUrl=self.queue_url, Entries=list(pending.values()))
            failed = response.get("Failed", [])
            refused = [f for f in failed if f.get("SenderFault")]
            if refused:
                raise BackfillError(f"SQS refused {len(refused)} message(s) of a batch ({_codes(refused)})")
            if not failed:
                return
            codes = _codes(failed)
            pending = {f["Id"]: pending[f["Id"]] for f in failed}
            if attempt + 1 < self._attempts:
                self._sleep(self._backoff_seconds * 2**attempt)
        raise BackfillError(f"SQS did not take {len(pending)} message(s) after {self._attempts} tries ({codes})")


def _codes(failed: list[dict[str, Any]]) -> str:
    return ", ".join(sorted({str(f.get("Code")) for f in failed}))
