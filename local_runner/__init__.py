"""Local triggers: what the template's Lambda event source mappings do, against moto server.

``sam local`` invokes a function once with a file; it cannot poll a DynamoDB stream or an SQS
queue. This package does, over plain HTTP (``AWS_ENDPOINT_URL``), and calls a handler exactly
as Lambda would: the same event shapes (``events/*.json``), a context whose remaining time runs
down from the function timeout, the partial batch response honoured (checkpoints and retries
for the stream, deletes for the queue).

Python::

    streams = boto3.client("dynamodbstreams", endpoint_url=..., region_name="us-east-1")
    sqs = boto3.client("sqs", endpoint_url=..., region_name="us-east-1")
    runner = Runner([
        StreamPoller(streams, stream_arn, handler, batch_size=100, max_retry_attempts=2,
                     on_failure=send_to_queue(sqs, stream_failure_queue_url)),
        QueuePoller(sqs, queue_url, handler, batch_size=10),
    ], on_invocation=lambda result: print(result.describe()))
    for result in runner.run_until_idle(idle_seconds=1, timeout_seconds=60):  # or run_forever(stop_event)
        ...  # each invocation's PollResult, in order

A handler is any ``(event, context) -> dict`` callable. ``poll_once()`` on a poller makes at
most one invocation and returns a :class:`PollResult`. The command line
(``python -m local_runner --help``) does the same with the real handlers.

What each poller mirrors and simplifies is in the docstrings of :mod:`local_runner.stream`
and :mod:`local_runner.queue`. :class:`SecretRotationPoller` (:mod:`local_runner.secrets`) stands in
for CloudTrail and EventBridge: a new current version of a secret under a prefix invokes the rotation
handler with the event EventBridge would deliver.
"""

from local_runner.invocation import CountdownContext, Handler, Invocation, PollResult, invoke
from local_runner.queue import QueuePoller
from local_runner.runner import Poller, Runner, RunnerTimeout, RunSummary
from local_runner.secrets import SecretRotationPoller, put_secret_value_event, send_failure_to_queue
from local_runner.stream import StreamPoller, send_to_queue

__all__ = [
    "CountdownContext",
    "Handler",
    "Invocation",
    "PollResult",
    "Poller",
    "QueuePoller",
    "RunSummary",
    "Runner",
    "RunnerTimeout",
    "SecretRotationPoller",
    "StreamPoller",
    "invoke",
    "put_secret_value_event",
    "send_failure_to_queue",
    "send_to_queue",
]
