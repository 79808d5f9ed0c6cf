"""The demo scenario: what it writes, what it expects, and how it shows the result."""

from __future__ import annotations

import contextlib
import io
import json
import os
import secrets
import signal
import subprocess  # to start this project's own emulator  # nosec B404
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

INSTALLATION_ID = "icfg_demo01"
PRODUCT_ID = "postgres"
# How long the demo waits for the runner to go idle before calling the sync failed.
SYNC_TIMEOUT_SECONDS = 40


@dataclass(frozen=True)
class Change:
    """One partner-side change the demo makes, shown as it happens."""

    where: str  # "table" or "queue"
    action: str  # "put", "delete", "send"
    resource_id: str
    item: dict[str, Any] | None = None  # the partner record (None for a delete)
    note: str = ""


def partner_record(resource_id: str, name: str, status: str, version: int, **extra: Any) -> dict[str, Any]:
    return {
        "integrationConfigurationId": INSTALLATION_ID,
        "resourceId": resource_id,
        "productId": PRODUCT_ID,
        "name": name,
        "status": status,
        "version": version,
        **extra,
    }


def scenario(resource_secret_arn: str) -> list[Change]:
    database = {
        "ownership": "owned",
        "metadata": {"region": "iad1", "storageGb": 20},
        "billingPlan": {"id": "plan_pro", "type": "subscription", "name": "Pro", "cost": "$20/month"},
        "secretsArn": resource_secret_arn,
        "secretsPrefix": "ORDERS",
    }
    return [
        Change("table", "put", "db_primary", partner_record("db_primary", "orders-db", "provisioning", 1, **database)),
        Change("table", "put", "cache/eu west#1", partner_record("cache/eu west#1", "sessions", "active", 1)),
        Change("table", "put", "search_1", partner_record("search_1", "catalog-search", "active", 1)),
        Change(
            "table",
            "put",
            "db_primary",
            partner_record("db_primary", "orders-db", "active", 2, **database),
            note="update",
        ),
        Change("table", "delete", "search_1", note="REMOVE: uninstalled"),
        Change(
            "table",
            "put",
            "broken_1",
            partner_record("broken_1", "half-made", "exploding", 1),
            note="invalid: unknown status",
        ),
        Change("queue", "send", "kv_1", partner_record("kv_1", "feature-flags", "creating", 1)),
        Change("queue", "send", "kv_1", partner_record("kv_1", "feature-flags", "running", 2), note="update"),
    ]


# What Vercel must hold at the end: resource id -> (name, Vercel status, secret names).
EXPECTED_IN_VERCEL = {
    "db_primary": ("orders-db", "ready", ("DATABASE_URL", "PGPASSWORD")),
    "cache/eu west#1": ("sessions", "ready", ()),
    "search_1": ("catalog-search", "uninstalled", ()),
    "kv_1": ("feature-flags", "ready", ()),
}
EXPECTED_FAILED = {"broken_1": "invalid_record"}
# Calls Vercel must have received per resource, all accepted; none for the invalid record. The
# changes to one resource arrive in one batch, so they are coalesced: only the newest is sent.
EXPECTED_IMPORT_CALLS = {"db_primary": 1, "cache/eu west#1": 1, "search_1": 1, "kv_1": 1}


@contextmanager
def vercel_emulator_process() -> Iterator[str]:
    """The emulator's console script in its own process; yields its URL, stops it after."""
    executable = Path(sys.executable).with_name("vercel-emulator")
    command = [str(executable)] if executable.exists() else [sys.executable, "-m", "vercel_emulator"]
    # The token is added over the control API, not on the command line (visible in `ps`).
    # Its stderr goes to a file (a pipe nobody reads could fill and block it), shown if it fails.
    with tempfile.TemporaryFile(mode="w+") as errors:
        process = subprocess.Popen(  # noqa: S603 - our own console script, no shell  # nosec B603
            [*command, "--port", "0"], stdout=subprocess.PIPE, stderr=errors, text=True
        )
        try:
            assert process.stdout is not None
            line = process.stdout.readline()
            url = line.strip().rsplit(" ", 1)[-1]
            if not url.startswith("http://"):
                process.wait(timeout=10)
                errors.seek(0)
                raise RuntimeError(f"vercel-emulator did not start: {errors.read().strip() or line.strip()}")
            yield url
        finally:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()


class Demo:
    def __init__(self, out: Callable[[str], None] = print, *, verbose: bool = False) -> None:
        self.out = out
        self.verbose = verbose
        self.token = "vrcl_demo_" + secrets.token_urlsafe(24)  # never printed
        self.password = secrets.token_urlsafe(18)

    def run(self) -> int:
        started = time.monotonic()
        saved_environ = dict(os.environ)
        with ExitStack() as stack:
            from local_aws.moto_server import aws_clients, moto_server

            self.out("Vercel Resource Sync demo: the real handlers, moto server and the Vercel API emulator")
            aws_endpoint = stack.enter_context(moto_server())
            self.out(f"== moto server (Secrets Manager, SQS, DynamoDB streams) on {aws_endpoint}")
            vercel_url = stack.enter_context(vercel_emulator_process())
            self.out(f"== vercel-emulator on {vercel_url}")
            stack.callback(_restore_environ, saved_environ)
            self.aws = aws_clients(aws_endpoint)
            self.vercel = stack.enter_context(httpx.Client(base_url=vercel_url, timeout=10))
            self._provision(aws_endpoint, vercel_url)
            self._write_changes()
            problems = self._sync()
            problems += self._report()
        elapsed = time.monotonic() - started
        if problems:
            self.out(f"\nFAILED: {problems} problem(s), see above ({elapsed:.1f} s)")
            return 1
        self.out(
            f"\nOK: Vercel holds the partner's latest state; the invalid record waits with its reason ({elapsed:.1f} s)"
        )
        return 0

    def _provision(self, aws_endpoint: str, vercel_url: str) -> None:
        from local_aws.provision import provision, store_installation_token, store_resource_secret
        from local_aws.template import Template

        self.template = Template.load()
        self.resources = provision(self.template, sqs=self.aws["sqs"], dynamodb=self.aws["dynamodb"])
        created = ", ".join([*self.resources.tables, *self.resources.queues])
        self.out(f"== created from template.yaml: {created}")
        store_installation_token(self.aws["secretsmanager"], self.resources, INSTALLATION_ID, self.token)
        self.resource_secret = store_resource_secret(
            self.aws["secretsmanager"],
            self.resources,
            f"{INSTALLATION_ID}/db_primary",  # in the installation's folder
            {
                "DATABASE_URL": f"postgres://orders:{self.password}@db.internal:5432/orders",
                "PGPASSWORD": {"value": self.password, "preview": self.password[::-1]},
            },
        )
        self.out(
            f"== Secrets Manager: the installation token ({self.resources.token_secret_name(INSTALLATION_ID)})"
            f" and a resource secret ({self.resource_secret}); values never shown"
        )
        self.vercel.post(
            "/_emulator/installations", json={"installationId": INSTALLATION_ID, "token": self.token}
        ).raise_for_status()
        # The functions' environment, as the template sets it, pointed at the local servers.
        os.environ.update(
            self.resources.local_function_environment(
                aws_endpoint=aws_endpoint,
                vercel_api_url=vercel_url,
                POWERTOOLS_LOG_LEVEL="INFO",
                POWERTOOLS_METRICS_DISABLED="true",
                POWERTOOLS_TRACE_DISABLED="true",
            )
        )

    def _write_changes(self) -> None:
        from boto3.dynamodb.types import TypeSerializer

        serializer = TypeSerializer()
        table = self.resources.tables["PartnerTable"].name
        queue_url = self.resources.queues["PartnerEventsQueue"].url
        fifo = queue_url.endswith(".fifo")
        self.out("== partner changes")
        for change in scenario(self.resource_secret):
            if change.where == "table" and change.action == "put":
                assert change.item is not None
                item = {k: serializer.serialize(v) for k, v in change.item.items()}
                self.aws["dynamodb"].put_item(TableName=table, Item=item)
                shown = f"status={change.item['status']}"
            elif change.where == "table":
                key = {
                    "integrationConfigurationId": {"S": INSTALLATION_ID},
                    "resourceId": {"S": change.resource_id},
                }
                self.aws["dynamodb"].delete_item(TableName=table, Key=key)
                shown = ""
            else:
                assert change.item is not None
                request: dict[str, Any] = {"QueueUrl": queue_url, "MessageBody": json.dumps(change.item)}
                if fifo:
                    request["MessageGroupId"] = f"{INSTALLATION_ID}/{change.resource_id}"
                self.aws["sqs"].send_message(**request)
                shown = f"status={change.item['status']}"
            note = f"  ({change.note})" if change.note else ""
            self.out(f"   {change.where:5} {change.action:6} {change.resource_id:16} {shown}{note}")

    def _sync(self) -> int:
        from local_runner import Poller, QueuePoller, Runner, RunnerTimeout, StreamPoller, send_to_queue
        from tools.lambda_local import load_handler
        from vercel_sync import wiring

        wiring.sync_service.set(None)  # built from the environment above at the first invocation
        stream_source = self.template.event_source("StreamSyncFunction", "PartnerTableStream")
        stream_arn = self.resources.tables["PartnerTable"].stream_arn
        if stream_arn is None:
            raise RuntimeError("template.yaml's PartnerTable has no stream: the demo has nothing to read")
        queue_source = self.template.event_source("QueueSyncFunction", "PartnerEvents")
        timeout = self.template.function_timeout_seconds()
        self.out("== local runner: the stream and the queue, delivered to the handlers as Lambda would")
        # The handlers' structured logs and metrics (CloudWatch's JSON, on stdout) are kept
        # aside, and shown if something went wrong or with --verbose. The handlers are loaded
        # inside, as their logger takes the stdout of the moment it is made.
        handler_output = io.StringIO()
        with contextlib.redirect_stdout(handler_output):
            pollers: list[Poller] = [
                StreamPoller(
                    self.aws["dynamodbstreams"],
                    stream_arn,
                    load_handler("stream_sync").lambda_handler,
                    batch_size=int(stream_source["BatchSize"]),
                    on_failure=send_to_queue(self.aws["sqs"], self.resources.queues["StreamFailureQueue"].url),
                    timeout_seconds=timeout,
                ),
                QueuePoller(
                    self.aws["sqs"],
                    self.resources.queues["PartnerEventsQueue"].url,
                    load_handler("queue_sync").lambda_handler,
                    batch_size=int(queue_source["BatchSize"]),
                    timeout_seconds=timeout,
                    # A message reported back is retried after 1 s, not the queue's 360 s, so a
                    # demo that goes wrong says so within its timeout.
                    retry_visibility_timeout=1,
                ),
            ]
            try:
                results = Runner(pollers).run_until_idle(idle_seconds=1.0, timeout_seconds=SYNC_TIMEOUT_SECONDS)
                timed_out = False
            except RunnerTimeout as timeout_error:
                results, timed_out = timeout_error.summary, True
        problems = 0
        if timed_out:
            self.out(f"   the sources were not idle after {SYNC_TIMEOUT_SECONDS} s: something keeps failing")
            problems += 1
        for result in results:
            if result.delivered:
                self.out(f"   {result.describe()}")
                problems += bool(result.error or result.reported)
        lines = handler_output.getvalue().splitlines()
        if problems or self.verbose:
            self.out("   the handlers' log lines:")
            for line in lines:
                self.out(f"     {line}")
        else:
            self.out(f"   ({len(lines)} structured log and metric lines from the handlers; --verbose shows them)")
        wiring.sync_service.set(None)
        return problems

    def _report(self) -> int:
        from local_aws.provision import drain_json_messages

        problems = 0
        held = {
            resource["partnerId"]: resource
            for resource in self._get(f"/v1/installations/{INSTALLATION_ID}/resources")["resources"]
        }
        partner = self._partner_table()
        self.out("\n== the partner's resources beside what Vercel (the emulator) holds")
        self.out(f"   {'resource':16} {'partner status':16} {'Vercel status':14} {'Vercel name':16} secrets")
        queued = self._last_queued()
        for resource_id in sorted(set(EXPECTED_IN_VERCEL) | set(partner) | set(held)):
            if resource_id in queued:
                partner_status = f"{queued[resource_id]} (queue)"
            else:
                partner_status = partner.get(resource_id, {}).get("status", "(deleted)")
            resource = held.get(resource_id, {})
            names = tuple(s["name"] for s in resource.get("secrets", []))
            secret_names = ", ".join(names) or "-"
            expected = EXPECTED_IN_VERCEL.get(resource_id)
            actual = (resource.get("name"), resource.get("status"), names) if resource else None
            mark = "" if actual == expected else f"   <- expected {expected[:2] if expected else 'nothing'}"
            problems += actual != expected
            self.out(
                f"   {resource_id:16} {partner_status:16} {resource.get('status', '-'):14} "
                f"{resource.get('name', '-'):16} {secret_names}{mark}"
            )

        failed = drain_json_messages(self.aws["sqs"], self.resources.queues["FailedRecordsQueue"].url)
        self.out("\n== failed-records queue (records that can never succeed, with their reason)")
        for message in failed:
            detail = message["detail"] if len(message["detail"]) <= 90 else message["detail"][:90] + "..."
            self.out(f"   {message['resourceId']}: {message['reason']}: {detail}")
        if not failed:
            self.out("   (empty)")
        seen = {message["resourceId"]: message["reason"] for message in failed}
        if seen != EXPECTED_FAILED:
            self.out(f"   <- expected {EXPECTED_FAILED}")
            problems += 1
        for logical_id in ("PartnerEventsDeadLetterQueue", "StreamFailureQueue"):
            left = drain_json_messages(self.aws["sqs"], self.resources.queues[logical_id].url)
            if left:
                self.out(f"   <- {len(left)} message(s) in {logical_id}: the sync gave up on something")
                problems += 1

        calls = self._get("/_emulator/calls")
        self.out("\n== calls Vercel (the emulator) received, per resource")
        for entry in calls["calls"]:
            outcomes = ", ".join(f"{status}: {count}" for status, count in sorted(entry["byStatus"].items()))
            self.out(f"   {entry['method']:4} {entry['resourceId'] or '(list)':16} {entry['total']} ({outcomes})")
        self.out(f"   total {calls['total']}")
        imports = {e["resourceId"]: e for e in calls["calls"] if (e["method"], e["route"]) == ("PUT", "resource")}
        counts = {resource_id: entry["total"] for resource_id, entry in imports.items()}
        refused = {rid: e["byStatus"] for rid, e in imports.items() if set(e["byStatus"]) != {"200"}}
        if counts != EXPECTED_IMPORT_CALLS or refused:
            self.out(f"   <- expected {EXPECTED_IMPORT_CALLS}, each answered 200")
            problems += 1
        return problems

    def _get(self, path: str) -> dict[str, Any]:
        response = self.vercel.get(path, headers={"Authorization": f"Bearer {self.token}"})
        response.raise_for_status()
        document: dict[str, Any] = response.json()
        return document

    def _partner_table(self) -> dict[str, dict[str, Any]]:
        from boto3.dynamodb.types import TypeDeserializer

        deserializer = TypeDeserializer()
        items = self.aws["dynamodb"].scan(TableName=self.resources.tables["PartnerTable"].name)["Items"]
        rows = [{k: deserializer.deserialize(v) for k, v in item.items()} for item in items]
        return {row["resourceId"]: row for row in rows}

    def _last_queued(self) -> dict[str, str]:
        """The partner status each queued resource was last sent with."""
        return {
            c.resource_id: c.item["status"] for c in scenario(self.resource_secret) if c.where == "queue" and c.item
        }


def _restore_environ(saved: dict[str, str]) -> None:
    os.environ.clear()
    os.environ.update(saved)


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m demo", description="Vercel Resource Sync, end to end, locally.")
    parser.add_argument("--verbose", action="store_true", help="show the handlers' structured logs and metrics")
    parser.add_argument("--mapping", type=Path, help="a partner mapping, with the items.json beside it to sync")
    args = parser.parse_args(argv)
    # SIGTERM stops the demo as Ctrl-C does, so what it started is stopped too.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        if args.mapping is not None:
            from demo.mapped import run_mapped

            return run_mapped(args.mapping, verbose=args.verbose)
        return Demo(verbose=args.verbose).run()
    except KeyboardInterrupt:
        print("\ninterrupted; everything the demo started is stopped")
        return 130
