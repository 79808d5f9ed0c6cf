"""An SQS event source mapping, locally: receive, invoke, delete what succeeded.

Mirrors the template's ``PartnerEvents`` mapping (partial batch responses on), for standard and
FIFO queues alike:

- messages are received as Lambda receives them (``AttributeNames=All``,
  ``MessageAttributeNames=All``, up to ``batch_size`` of them, long polling), with the queue's
  own visibility timeout;
- after the handler returns, every message it did not report in ``batchItemFailures`` is
  deleted; the ones it reported stay in flight and come back once their visibility timeout
  passes, with a higher ``ApproximateReceiveCount``; the queue's redrive policy moves them to
  its dead-letter queue after ``maxReceiveCount`` receives (SQS's job, which moto does too);
- a handler that raises, times out or gives an invalid response (see
  :func:`local_runner.events.reported_failures`) leaves the whole batch in the queue;
- FIFO order is SQS's: a receive gives a group's messages in order, and no more of a group
  while some of it is in flight. The records keep the order received.

Simplified: one poller, one batch at a time (Lambda scales pollers out); ``wait_time_seconds``
defaults to 1 s rather than Lambda's 20 s so a :class:`~local_runner.runner.Runner` can take
turns with other pollers; no batching window (at most 10 messages, one receive, per batch).
Locally, ``retry_visibility_timeout`` can make reported messages visible again sooner than the
queue's timeout (Lambda leaves them as they are; the template's queue waits 360 s).
"""

from __future__ import annotations

from typing import Any

from local_runner.events import reported_failures, sqs_event
from local_runner.invocation import DEFAULT_FUNCTION_TIMEOUT_SECONDS, Handler, PollResult, invoke

# Messages still in the queue: visible, in flight (received, not deleted), or not yet delivered.
_BACKLOG_ATTRIBUTES = (
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed",
)


class QueuePoller:
    """Receives from one SQS queue and invokes ``handler`` on each batch as Lambda's mapping does.

    ``sqs_client`` is a boto3 ``sqs`` client (pointing at moto server, say). Each
    :meth:`poll_once` makes one receive and at most one invocation.
    """

    def __init__(
        self,
        sqs_client: Any,
        queue_url: str,
        handler: Handler,
        *,
        batch_size: int = 10,
        wait_time_seconds: int = 1,
        retry_visibility_timeout: int | None = None,
        function_name: str = "queue_sync",
        timeout_seconds: float = DEFAULT_FUNCTION_TIMEOUT_SECONDS,
    ) -> None:
        if not 1 <= batch_size <= 10:
            raise ValueError("batch_size must be between 1 and 10 (one ReceiveMessage)")
        if not 0 <= wait_time_seconds <= 20:
            raise ValueError("wait_time_seconds must be between 0 and 20")
        self.queue_url = queue_url
        self.batch_size = batch_size
        self.wait_time_seconds = wait_time_seconds
        self.retry_visibility_timeout = retry_visibility_timeout
        self.function_name = function_name
        self.timeout_seconds = timeout_seconds
        self._client = sqs_client
        self._handler = handler
        self.queue_arn: str = sqs_client.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        self.name = f"queue {self.queue_arn.rsplit(':', 1)[-1]}"

    def poll_once(self) -> PollResult:
        """Receive one batch (waiting up to ``wait_time_seconds`` for it), invoke, delete what succeeded."""
        messages = self._client.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=self.batch_size,
            WaitTimeSeconds=self.wait_time_seconds,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        if not messages:
            return PollResult(source=self.name)

        event = sqs_event(messages, self.queue_arn)
        message_ids = [record["messageId"] for record in event["Records"]]
        invocation = invoke(
            self._handler, event, function_name=self.function_name, timeout_seconds=self.timeout_seconds
        )
        error, reported = invocation.error, []
        if error is None:
            failures = reported_failures(invocation.response, message_ids)
            if failures is None:
                error = "gave an invalid batch response"
            else:
                reported = failures
        stay = set(message_ids) if error else set(reported)

        done = [message for message in messages if message["MessageId"] not in stay]
        staying = [message for message in messages if message["MessageId"] in stay]
        notes = []
        if done:
            notes.append(f"{self._delete(done)} deleted")
        if staying:
            notes.append(f"{len(staying)} left in the queue")
            if self.retry_visibility_timeout is not None:
                self._change_visibility(staying, self.retry_visibility_timeout)
        outcome = "failed" if error else "partial" if reported else "ok"
        return PollResult(
            source=self.name,
            records=len(messages),
            reported=tuple(reported),
            error=error,
            outcome=outcome,
            notes=tuple(notes),
        )

    def is_drained(self) -> bool:
        """True when the queue holds no message: none visible, none in flight, none delayed."""
        attributes = self._client.get_queue_attributes(
            QueueUrl=self.queue_url, AttributeNames=list(_BACKLOG_ATTRIBUTES)
        )
        return all(int(attributes["Attributes"].get(name, "0")) == 0 for name in _BACKLOG_ATTRIBUTES)

    def _delete(self, messages: list[dict[str, Any]]) -> int:
        """Delete the messages; returns how many went (a message whose receipt expired stays, as in Lambda)."""
        deleted = 0
        for start in range(0, len(messages), 10):
            entries = [
                {"Id": str(index), "ReceiptHandle": message["ReceiptHandle"]}
                for index, message in enumerate(messages[start : start + 10])
            ]
            response = self._client.delete_message_batch(QueueUrl=self.queue_url, Entries=entries)
            deleted += len(response.get("Successful", []))
        return deleted

    def _change_visibility(self, messages: list[dict[str, Any]], seconds: int) -> None:
        for start in range(0, len(messages), 10):
            entries = [
                {"Id": str(index), "ReceiptHandle": message["ReceiptHandle"], "VisibilityTimeout": seconds}
                for index, message in enumerate(messages[start : start + 10])
            ]
            self._client.change_message_visibility_batch(QueueUrl=self.queue_url, Entries=entries)
