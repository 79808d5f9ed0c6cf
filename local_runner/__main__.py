"""Poll a DynamoDB stream and SQS queues on moto server and invoke the real handlers, as Lambda would.

    python -m local_runner --table partner-resources --queue-url http://127.0.0.1:5000/123456789012/partner-events.fifo
    python -m local_runner --stream-arn ARN --until-idle
    python -m local_runner --secrets-prefix partner/resources/      # rotation sync (local_runner/secrets.py)

The stream sources go to functions/stream_sync, the queues to functions/queue_sync, and changes of
the secrets under --secrets-prefix (a new current version) to functions/rotation_sync as the event
EventBridge would deliver; all loaded as SAM would load them (the layer's package importable).
AWS_ENDPOINT_URL (or --aws-endpoint-url) points both the runner and the handlers at moto server;
moto accepts any credentials, but boto3 needs some (e.g. AWS_ACCESS_KEY_ID=local
AWS_SECRET_ACCESS_KEY=local). The handlers read the rest of their settings (VERCEL_API_URL,
FAILED_RECORDS_QUEUE_URL, ...) from the environment.

One line per invocation: records in, failures reported, what happened to them; never record
contents. Ctrl-C (or SIGTERM) stops after the invocation under way; a second Ctrl-C abandons it
(its records are delivered again: the stream from the last checkpoint, the queue after the
visibility timeout).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from local_runner.invocation import DEFAULT_FUNCTION_TIMEOUT_SECONDS, Handler, PollResult
from local_runner.queue import QueuePoller
from local_runner.runner import Poller, Runner, RunnerTimeout
from local_runner.secrets import SecretRotationPoller, send_failure_to_queue
from local_runner.stream import StreamPoller, send_to_queue
from tools.lambda_local import load_handler


class InvocationAbandoned(BaseException):
    """A second stop signal: leave the invocation under way (BaseException, so handlers do not catch it)."""


def load_lambda_handler(name: str) -> Handler:
    """``functions/<name>/app.py``'s lambda_handler; the core is installed in .venv (in Lambda: /opt/python)."""
    # Locally, no X-Ray daemon and no CloudWatch: keep traces off and metrics out of the output.
    os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    handler: Handler = load_handler(name).lambda_handler
    return handler


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m local_runner", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sources = parser.add_argument_group("sources (at least one; each may repeat)")
    sources.add_argument("--stream-arn", action="append", default=[], metavar="ARN", help="a DynamoDB stream")
    sources.add_argument("--table", action="append", default=[], metavar="NAME", help="a table: its LatestStreamArn")
    sources.add_argument("--queue-url", action="append", default=[], metavar="URL", help="an SQS queue")
    sources.add_argument(
        "--secrets-prefix",
        metavar="PREFIX",
        help="secrets under this name prefix: a new current version invokes rotation sync (e.g. partner/resources/)",
    )
    mapping = parser.add_argument_group("event source mapping (defaults as template.yaml, where they apply)")
    mapping.add_argument("--batch-size", type=int, help="records per invocation (default: the template's, per source)")
    mapping.add_argument("--starting-position", choices=["TRIM_HORIZON", "LATEST"], default="TRIM_HORIZON")
    mapping.add_argument(
        "--max-retry-attempts",
        type=int,
        default=-1,
        help="stream: retries of a failed batch before giving up (default -1: never; the template's 10000, "
        "bounded by its 24 h record age, comes to the same locally)",
    )
    mapping.add_argument(
        "--retry-delay", type=float, default=1.0, metavar="SECONDS", help="stream: wait before a retry"
    )
    mapping.add_argument("--no-bisect", action="store_true", help="stream: do not halve a batch whose retries ran out")
    mapping.add_argument(
        "--on-failure-queue-url", metavar="URL", help="stream: where a given-up batch's description goes"
    )
    mapping.add_argument(
        "--function-timeout", type=float, metavar="SECONDS", help="default: the template's Globals Timeout"
    )
    mapping.add_argument(
        "--rotation-failure-queue-url",
        metavar="URL",
        help="secrets: where an event goes after its tries failed (the template's RotationFailureQueue)",
    )
    mapping.add_argument("--wait-time-seconds", type=int, default=1, help="queue: long-poll wait (0-20)")
    mapping.add_argument(
        "--retry-visibility-timeout",
        type=int,
        metavar="SECONDS",
        help="queue: make reported messages visible again after this (default: the queue's visibility timeout)",
    )
    run = parser.add_argument_group("run")
    run.add_argument("--until-idle", action="store_true", help="stop once every source stays drained")
    run.add_argument("--idle-seconds", type=float, default=2.0, help="with --until-idle: how long drained")
    run.add_argument("--timeout", type=float, default=300.0, help="with --until-idle: give up (exit 1) after this")
    aws = parser.add_argument_group("AWS")
    aws.add_argument("--aws-endpoint-url", help="default: $AWS_ENDPOINT_URL (moto server)")
    aws.add_argument("--region", help="default: $AWS_REGION, $AWS_DEFAULT_REGION or us-east-1")
    args = parser.parse_args(argv)
    if not (args.stream_arn or args.table or args.queue_url or args.secrets_prefix):
        parser.error("give at least one --stream-arn, --table, --queue-url or --secrets-prefix")
    return args


def template_defaults() -> dict[str, Any]:
    """The event source mappings' batch sizes and the function timeout, as template.yaml sets them."""
    try:
        from local_aws.template import Template

        template = Template.load()
        return {
            "stream_batch_size": int(template.event_source("StreamSyncFunction", "PartnerTableStream")["BatchSize"]),
            "queue_batch_size": int(template.event_source("QueueSyncFunction", "PartnerEvents")["BatchSize"]),
            "function_timeout": float(template.function_timeout_seconds()),
            "rotation_timeout": float(
                template.resources["RotationSyncFunction"]["Properties"].get(
                    "Timeout", template.function_timeout_seconds()
                )
            ),
        }
    except (ImportError, OSError, KeyError):  # no template beside the code: Lambda's own defaults
        return {
            "stream_batch_size": 100,
            "queue_batch_size": 10,
            "function_timeout": DEFAULT_FUNCTION_TIMEOUT_SECONDS,
            "rotation_timeout": DEFAULT_FUNCTION_TIMEOUT_SECONDS,
        }


def build_pollers(args: argparse.Namespace, load: Callable[[str], Handler], out: Callable[[str], None]) -> list[Poller]:
    import boto3

    endpoint = os.environ.get("AWS_ENDPOINT_URL")
    session = boto3.session.Session(region_name=args.region)

    def client(service: Any) -> Any:  # Any: the boto3 stubs type each service name as a literal
        return session.client(service, endpoint_url=endpoint)

    defaults = template_defaults()
    function_timeout = args.function_timeout or defaults["function_timeout"]
    pollers: list[Poller] = []
    stream_arns = list(args.stream_arn)
    for table in args.table:
        stream_arn = client("dynamodb").describe_table(TableName=table)["Table"].get("LatestStreamArn")
        if not stream_arn:
            raise LookupError(f"table {table} has no stream")
        stream_arns.append(stream_arn)
    if stream_arns:
        stream_handler = load("stream_sync")
        on_failure = send_to_queue(client("sqs"), args.on_failure_queue_url) if args.on_failure_queue_url else None
        for stream_arn in stream_arns:
            pollers.append(
                StreamPoller(
                    client("dynamodbstreams"),
                    stream_arn,
                    stream_handler,
                    batch_size=args.batch_size or defaults["stream_batch_size"],
                    starting_position=args.starting_position,
                    max_retry_attempts=args.max_retry_attempts,
                    retry_delay_seconds=args.retry_delay,
                    bisect_batch_on_function_error=not args.no_bisect,
                    on_failure=on_failure,
                    timeout_seconds=function_timeout,
                )
            )
            out(f"polling {stream_arn} -> functions/stream_sync")
    if args.queue_url:
        queue_handler = load("queue_sync")
        for queue_url in args.queue_url:
            pollers.append(
                QueuePoller(
                    client("sqs"),
                    queue_url,
                    queue_handler,
                    batch_size=min(args.batch_size or defaults["queue_batch_size"], 10),
                    wait_time_seconds=args.wait_time_seconds,
                    retry_visibility_timeout=args.retry_visibility_timeout,
                    timeout_seconds=function_timeout,
                )
            )
            out(f"polling {queue_url} -> functions/queue_sync")
    if args.secrets_prefix:
        failure = (
            send_failure_to_queue(client("sqs"), args.rotation_failure_queue_url)
            if args.rotation_failure_queue_url
            else None
        )
        pollers.append(
            SecretRotationPoller(
                client("secretsmanager"),
                load("rotation_sync"),
                prefix=args.secrets_prefix,
                timeout_seconds=args.function_timeout or defaults["rotation_timeout"],
                on_failure=failure,
            )
        )
        out(f"watching secrets {args.secrets_prefix}* (a new current version) -> functions/rotation_sync")
    return pollers


@contextmanager
def stop_signals(stop_event: threading.Event, out: Callable[[str], None]) -> Iterator[None]:
    """SIGINT/SIGTERM set ``stop_event``; a second one abandons the invocation under way."""

    def on_signal(signum: int, frame: Any) -> None:
        if stop_event.is_set():
            raise InvocationAbandoned
        stop_event.set()
        out("stopping after the invocation under way (Ctrl-C again to abandon it)")

    if threading.current_thread() is not threading.main_thread():  # only the main thread may set handlers
        yield
        return
    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def main(
    argv: list[str] | None = None,
    *,
    load: Callable[[str], Handler] = load_lambda_handler,
    out: Callable[[str], None] = print,
) -> int:
    args = parse_args(argv)
    if args.aws_endpoint_url:
        os.environ["AWS_ENDPOINT_URL"] = args.aws_endpoint_url  # the handlers' own clients too
    args.region = args.region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    os.environ.setdefault("AWS_DEFAULT_REGION", args.region)

    from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError

    def report(result: PollResult) -> None:
        out(f"{time.strftime('%H:%M:%S')} {result.describe()}")

    stop_event = threading.Event()
    try:
        with stop_signals(stop_event, out):
            pollers = build_pollers(args, load, out)
            runner = Runner(pollers, on_invocation=report)
            if args.until_idle:
                summary = runner.run_until_idle(args.idle_seconds, args.timeout, stop_event)
            else:
                out("Ctrl-C to stop")
                summary = runner.run_forever(stop_event)
    except NoCredentialsError:
        out("no AWS credentials: moto accepts any, e.g. AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local")
        return 2
    except EndpointConnectionError as exc:
        out(f"cannot reach {exc.kwargs.get('endpoint_url')}: is moto server running (AWS_ENDPOINT_URL)?")
        return 2
    except ClientError as exc:  # a source that does not exist, say
        error = exc.response.get("Error", {})
        out(f"{exc.operation_name} failed: {error.get('Code')}: {error.get('Message')}")
        return 2
    except LookupError as exc:
        out(str(exc))
        return 2
    except RunnerTimeout as exc:
        out(f"not idle: {exc}")
        return 1
    except (InvocationAbandoned, KeyboardInterrupt):
        out("stopped at once: the records of an unfinished invocation will be delivered again")
        return 130
    out(f"done: {summary.describe()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
