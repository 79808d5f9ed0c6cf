"""Run the real handlers on the events/ files, locally, over real HTTP.

    python -m tools.run_events [EVENT_FILE ...] [--verbose]

Starts moto server and the Vercel API emulator on free loopback ports, creates the template's
queues and tables, stores an installation token and a resource secret, then sends
each event file through its handler (the stream one for DynamoDB stream events, the queue one
for SQS) exactly as Lambda would call it, and prints: the partial batch response, what Vercel
received (secret values masked), and what reached the failed-records queue with its reason.
Exits non-zero if a handler raised or reported a record back for retry (the emulator injects
no faults here, so either means the sync went wrong).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import secrets
import sys
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx

from tools.lambda_local import ROOT, LambdaContext, load_handler

EVENTS_DIR = ROOT / "events"
INSTALLATION_ID = "icfg_demo01"
RESOURCE_SECRETS = {
    f"{INSTALLATION_ID}/db_primary": {  # in the installation's folder under the resource-secret prefix
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
    shown: dict[str, Any] = json.loads(json.dumps(body))
    for secret in shown.get("secrets", []):
        secret["value"] = "***"
        for env in secret.get("environmentOverrides", {}):
            secret["environmentOverrides"][env] = "***"
    return shown


class LocalStack:
    """moto server with the template's resources, and the Vercel emulator, for the event files."""

    def __init__(self, *, vercel_accepts: str | None = None) -> None:
        """``vercel_accepts``: the token Vercel takes for the installation (default: the stored one)."""
        from vercel_emulator import EmulatorServer

        self.token = "vrcl_local_" + secrets.token_urlsafe(24)  # never printed
        self.password = secrets.token_urlsafe(18)
        self.vercel = EmulatorServer(tokens={INSTALLATION_ID: vercel_accepts or self.token})
        self._exit = ExitStack()
        self._final_imports: list[dict[str, Any]] | None = None

    def start(self) -> LocalStack:
        from local_aws.moto_server import aws_clients, moto_server
        from local_aws.provision import provision, store_installation_token, store_resource_secret
        from local_aws.template import Template

        self.aws_endpoint = self._exit.enter_context(moto_server())
        self._exit.enter_context(self.vercel)
        clients = aws_clients(self.aws_endpoint)
        self.sqs = clients["sqs"]
        resources = provision(Template.load(), sqs=clients["sqs"], dynamodb=clients["dynamodb"])
        store_installation_token(clients["secretsmanager"], resources, INSTALLATION_ID, self.token)
        for name, template in RESOURCE_SECRETS.items():
            document = json.loads(
                json.dumps(template)
                .replace("{password}", self.password)
                .replace("{preview_password}", self.password[::-1])
            )
            store_resource_secret(clients["secretsmanager"], resources, name, document)
        self.failed_records_url = resources.queues["FailedRecordsQueue"].url
        # The functions' environment, as the template sets it, pointed at the local servers.
        os.environ.update(
            resources.local_function_environment(aws_endpoint=self.aws_endpoint, vercel_api_url=self.vercel.url)
        )
        return self

    def imported(self) -> list[dict[str, Any]]:
        """Every import the emulator holds: ids and the last body (secret values included).
        After :meth:`stop`, what it held when it stopped."""
        if self._final_imports is not None:
            return self._final_imports
        document = httpx.get(f"{self.vercel.url}/_emulator/imports", timeout=10).json()
        imports: list[dict[str, Any]] = document["imports"]
        return imports

    def import_calls(self) -> dict[tuple[str, str], int]:
        """PUT calls per (installation, resource) the emulator received so far."""
        return {
            (entry["installationId"], entry["resourceId"]): entry["total"]
            for entry in self.vercel.calls()["calls"]
            if (entry["method"], entry["route"]) == ("PUT", "resource")
        }

    def successful_imports(self) -> int:
        return sum(
            entry["byStatus"].get("200", 0)
            for entry in self.vercel.calls()["calls"]
            if (entry["method"], entry["route"]) == ("PUT", "resource")
        )

    def drain_failed_records(self) -> list[dict[str, Any]]:
        from local_aws.provision import drain_json_messages

        return drain_json_messages(self.sqs, self.failed_records_url)

    def secret_values(self) -> list[str]:
        return [self.token, self.password, self.password[::-1]]

    def stop(self) -> None:
        self._final_imports = self.imported()
        self._exit.close()


def run(
    event_files: list[Path],
    *,
    verbose: bool = False,
    out: Callable[[str], None] = print,
    stack: LocalStack | None = None,
) -> int:
    saved_environ = dict(os.environ)
    os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
    if not verbose:
        os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    from vercel_sync import wiring
    from vercel_sync.observability import logger

    previous_level = logger.log_level
    logger.setLevel("INFO" if verbose else "ERROR")
    stack = (stack or LocalStack()).start()
    problems = 0
    try:
        wiring.sync_service.set(None)  # built from this environment at the first invocation
        handlers = {name: load_handler(name) for name in ("stream_sync", "queue_sync")}
        for path in event_files:
            problems += run_event_file(path, handlers, stack, out, verbose=verbose)
        out("\n== Vercel (the emulator) now holds")
        for held in stack.imported():
            out(f"   {held['installationId']}/{held['resourceId']}: {held['body']['name']} [{held['body']['status']}]")
        out(f"\n{stack.successful_imports()} imports sent; {problems} problem(s).")
    finally:
        logger.setLevel(previous_level)
        wiring.sync_service.set(None)
        stack.stop()
        os.environ.clear()
        os.environ.update(saved_environ)
    return 1 if problems else 0


def run_event_file(
    path: Path, handlers: dict[str, ModuleType], stack: LocalStack, out: Callable[[str], None], *, verbose: bool = False
) -> int:
    """Send one event file through its handler and print what happened; returns the problems seen."""
    event = json.loads(path.read_text())
    name = handler_name_for(event)
    calls_before = stack.import_calls()
    out(f"\n== {path.name} -> functions/{name} ({len(event['Records'])} records)")
    printed = io.StringIO()
    try:
        with contextlib.redirect_stdout(printed):
            response = handlers[name].lambda_handler(
                event, LambdaContext(function_name=name, aws_request_id="local-run")
            )
    except Exception as exc:  # noqa: BLE001 - reported, and the run fails
        # Its type only: a message (a pydantic error, say) can quote the values, secrets included.
        out(f"   handler raised {type(exc).__name__}")
        return 1
    finally:
        sys.stdout.write(printed.getvalue() if verbose else without_metrics(printed.getvalue()))
    bodies = {(held["installationId"], held["resourceId"]): held["body"] for held in stack.imported()}
    for key, count in stack.import_calls().items():
        if count > calls_before.get(key, 0):
            calls = count - calls_before.get(key, 0)
            body = json.dumps(masked(bodies[key]), sort_keys=True) if key in bodies else "(nothing held)"
            out(f"   PUT {key[0]}/{key[1]} x{calls}, Vercel now holds: {body}")
    for message in stack.drain_failed_records():
        source = message["source"]
        where = source.get("messageId") or source.get("sequenceNumber")
        out(f"   failed-records queue <- {where}: {message['reason']}: {message['detail']}")
    out(f"   batch response: {json.dumps(response)}")
    return 1 if response.get("batchItemFailures") else 0


def without_metrics(printed: str) -> str:
    """What a handler printed, less its EMF metric lines. Powertools prints the cold-start metric even with
    POWERTOOLS_METRICS_DISABLED; among the readable output it is noise, so it shows only with --verbose."""
    return "".join(line for line in printed.splitlines(keepends=True) if not line.startswith('{"_aws":'))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("events", nargs="*", type=Path, help="event files (default: every events/*.json)")
    parser.add_argument("--verbose", action="store_true", help="show the handlers' structured logs and metrics (EMF)")
    args = parser.parse_args(argv)
    files = args.events or sorted(p for p in EVENTS_DIR.glob("*.json") if not p.name.startswith("env."))
    return run(files, verbose=args.verbose)


if __name__ == "__main__":
    sys.exit(main())
