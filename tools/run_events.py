"""Run the real handlers on the events/ files, locally, over real HTTP.

    python -m tools.run_events [EVENT_FILE ...] [--verbose]

Starts moto server (Secrets Manager, SQS) and a Vercel stub on free loopback ports, stores
an installation token and a resource secret, creates the failed-records queue, then sends
each event file through its handler (the stream one for DynamoDB stream events, the queue one
for SQS) exactly as Lambda would call it, and prints: the partial batch response, what Vercel
received (secret values masked), and what reached the failed-records queue with its reason.
Exits non-zero if a handler raised or reported a record back for retry (the stub never fails,
so either means the sync went wrong).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from tools.lambda_local import ROOT, LambdaContext, load_handler

EVENTS_DIR = ROOT / "events"
INSTALLATION_ID = "icfg_demo01"
RESOURCE_SECRETS = {
    "partner/resources/db_primary": {
        "DATABASE_URL": "postgres://orders:{password}@db.internal:5432/orders",
        "PGPASSWORD": {"value": "{password}", "preview": "{preview_password}"},
    }
}


def handler_name_for(event: dict[str, Any]) -> str:
    sources = {record.get("eventSource") for record in event.get("Records", [])}
    if sources == {"aws:dynamodb"}:
        return "stream_sync"
    if sources == {"aws:sqs"}:
        return "queue_sync"
    raise SystemExit(f"cannot tell which handler takes an event with sources {sorted(map(str, sources))}")


def masked(body: dict[str, Any]) -> dict[str, Any]:
    """The payload with every secret value replaced, safe to print."""
    shown = json.loads(json.dumps(body))
    for secret in shown.get("secrets", []):
        secret["value"] = "***"
        for env in secret.get("environmentOverrides", {}):
            secret["environmentOverrides"][env] = "***"
    return shown


class LocalStack:
    """moto server and the Vercel stub, with the secrets and queue the handlers need."""

    def __init__(self) -> None:
        from moto.server import ThreadedMotoServer

        from tools.stub_vercel import StubVercel

        self.token = "vrcl_local_" + secrets.token_urlsafe(24)  # never printed
        self.password = secrets.token_urlsafe(18)
        self.moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.vercel = StubVercel(tokens={INSTALLATION_ID: self.token})

    def start(self) -> LocalStack:
        import logging

        import boto3
        import httpx

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto server's request log
        self.moto.start()
        self.vercel.start()
        host, port = self.moto.get_host_and_port()
        self.aws_endpoint = f"http://{host}:{port}"
        # moto keeps its state per process: start from an empty account every time.
        httpx.post(f"{self.aws_endpoint}/moto-api/reset", timeout=10).raise_for_status()
        os.environ.update(
            {
                "AWS_ENDPOINT_URL": self.aws_endpoint,
                "AWS_DEFAULT_REGION": "us-east-1",
                "AWS_ACCESS_KEY_ID": "local",
                "AWS_SECRET_ACCESS_KEY": "local",
                "VERCEL_API_URL": self.vercel.url,
            }
        )
        self.secretsmanager = boto3.client("secretsmanager")
        self.sqs = boto3.client("sqs")
        self.secretsmanager.create_secret(
            Name=f"vercel/installations/{INSTALLATION_ID}",
            SecretString=json.dumps({"access_token": self.token, "token_type": "Bearer"}),
        )
        for name, template in RESOURCE_SECRETS.items():
            document = json.dumps(template).replace("{password}", self.password)
            document = document.replace("{preview_password}", self.password[::-1])
            self.secretsmanager.create_secret(Name=name, SecretString=document)
        self.failed_records_url = self.sqs.create_queue(QueueName="failed-records")["QueueUrl"]
        os.environ["FAILED_RECORDS_QUEUE_URL"] = self.failed_records_url
        return self

    def drain_failed_records(self) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = []
        while True:
            batch = self.sqs.receive_message(QueueUrl=self.failed_records_url, MaxNumberOfMessages=10).get(
                "Messages", []
            )
            if not batch:
                return messages
            for message in batch:
                messages.append(json.loads(message["Body"]))
                self.sqs.delete_message(QueueUrl=self.failed_records_url, ReceiptHandle=message["ReceiptHandle"])

    def secret_values(self) -> list[str]:
        return [self.token, self.password, self.password[::-1]]

    def stop(self) -> None:
        self.vercel.stop()
        self.moto.stop()


def run(
    event_files: list[Path],
    *,
    verbose: bool = False,
    out: Callable[[str], None] = print,
    stack: LocalStack | None = None,
) -> int:
    saved_environ = dict(os.environ)
    os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    from vercel_sync.observability import logger
    from vercel_sync.runtime import set_sync_service

    previous_level = logger.log_level
    logger.setLevel("INFO" if verbose else "ERROR")
    stack = (stack or LocalStack()).start()
    problems = 0
    try:
        set_sync_service(None)  # built from this environment at the first invocation
        handlers = {name: load_handler(name) for name in ("stream_sync", "queue_sync")}
        for path in event_files:
            problems += run_event_file(path, handlers, stack, out)
        out("\n== Vercel (stub) now holds")
        for (installation, resource), body in sorted(stack.vercel.resources.items()):
            out(f"   {installation}/{resource}: {body['name']} [{body['status']}]")
        out(f"\n{len(stack.vercel.received)} imports sent; {problems} problem(s).")
    finally:
        logger.setLevel(previous_level)
        set_sync_service(None)
        stack.stop()
        os.environ.clear()
        os.environ.update(saved_environ)
    return 1 if problems else 0


def run_event_file(path: Path, handlers: dict[str, ModuleType], stack: LocalStack, out: Callable[[str], None]) -> int:
    """Send one event file through its handler and print what happened; returns the problems seen."""
    event = json.loads(path.read_text())
    name = handler_name_for(event)
    sent_before = len(stack.vercel.received)
    out(f"\n== {path.name} -> functions/{name} ({len(event['Records'])} records)")
    try:
        response = handlers[name].lambda_handler(event, LambdaContext(function_name=name, aws_request_id="local-run"))
    except Exception as exc:  # noqa: BLE001 - reported, and the run fails
        out(f"   handler raised {type(exc).__name__}: {exc}")
        return 1
    for received in stack.vercel.received[sent_before:]:
        body = json.dumps(masked(received.body), sort_keys=True)
        out(f"   PUT {received.installation_id}/{received.resource_id}: {body}")
    for message in stack.drain_failed_records():
        source = message["source"]
        where = source.get("messageId") or source.get("sequenceNumber")
        out(f"   failed-records queue <- {where}: {message['reason']}: {message['detail']}")
    out(f"   batch response: {json.dumps(response)}")
    return 1 if response.get("batchItemFailures") else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("events", nargs="*", type=Path, help="event files (default: every events/*.json)")
    parser.add_argument("--verbose", action="store_true", help="show the handlers' structured logs")
    args = parser.parse_args(argv)
    files = args.events or sorted(p for p in EVENTS_DIR.glob("*.json") if not p.name.startswith("env."))
    return run(files, verbose=args.verbose)


if __name__ == "__main__":
    sys.exit(main())
