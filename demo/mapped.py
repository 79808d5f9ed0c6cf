"""The demo with a partner mapping of your own (``python -m demo --mapping FILE``): the items of the
``items.json`` beside the mapping go into a table of their own design (keyed ``pk``/``sk``, with a
stream), the real stream handler maps them, and the result is shown beside what the preview
promised: each resource imported as mapped, every other item ignored, nothing failed."""

from __future__ import annotations

import contextlib
import io
import json
import os
import secrets
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx

SYNC_TIMEOUT_SECONDS = 40


def run_mapped(mapping_file: Path, out: Callable[[str], None] = print, *, verbose: bool = False) -> int:
    from demo.scenario import _restore_environ, vercel_emulator_process
    from local_aws.moto_server import aws_clients, moto_server
    from operations.preview import preview_item
    from vercel_sync.mapping import read_mapping_file

    items_file = mapping_file.with_name("items.json")
    mapping = read_mapping_file(mapping_file)  # a bad mapping stops here, naming the key and its line
    items: list[dict[str, Any]] = json.loads(items_file.read_text(encoding="utf-8"))
    verdicts = [preview_item(item, mapping) for item in items]
    started, saved_environ = time.monotonic(), dict(os.environ)
    out(f"Vercel Resource Sync demo with the partner mapping {mapping_file} and its {items_file.name}")
    with ExitStack() as stack:
        aws_endpoint = stack.enter_context(moto_server())
        vercel_url = stack.enter_context(vercel_emulator_process())
        stack.callback(_restore_environ, saved_environ)
        out(f"== moto server on {aws_endpoint}, vercel-emulator on {vercel_url}")
        aws: dict[str, Any] = dict(aws_clients(aws_endpoint))
        vercel = stack.enter_context(httpx.Client(base_url=vercel_url, timeout=10))
        stream_arn, tokens, failed_url = _provision(aws, vercel, aws_endpoint, vercel_url, mapping_file, items, mapping)
        problems = _sync(aws, stream_arn, out, verbose=verbose)
        problems += _report(items, verdicts, mapping, vercel, tokens, out)
        problems += _failed_records(aws, failed_url, out)
    elapsed = time.monotonic() - started
    out(f"\n{'FAILED' if problems else 'OK'}: {problems} problem(s) ({elapsed:.1f} s)")
    return 1 if problems else 0


def _provision(
    aws: dict[str, Any],
    vercel: httpx.Client,
    aws_endpoint: str,
    vercel_url: str,
    mapping_file: Path,
    items: Any,
    mapping: Any,
) -> tuple[str, dict[str, str], str]:
    """The template's resources, a pk/sk table holding ``items``, a token per installation, the environment;
    the table's stream ARN, the tokens, the failed-records queue's URL."""
    from local_aws.provision import provision, store_installation_token
    from local_aws.template import Template

    resources = provision(Template.load(), sqs=aws["sqs"], dynamodb=aws["dynamodb"])
    tokens: dict[str, str] = {}
    for item in items:
        installation = mapping.text(item, "integrationConfigurationId")
        if installation and installation not in tokens:
            tokens[installation] = "vrcl_demo_" + secrets.token_urlsafe(24)  # never printed
            store_installation_token(aws["secretsmanager"], resources, installation, tokens[installation])
            body = {"installationId": installation, "token": tokens[installation]}
            vercel.post("/_emulator/installations", json=body).raise_for_status()
    stream_arn = single_table(aws["dynamodb"], "partner-single-table", items)
    os.environ.update(
        resources.local_function_environment(
            aws_endpoint=aws_endpoint,
            vercel_api_url=vercel_url,
            PARTNER_MAPPING_FILE=str(mapping_file),
            POWERTOOLS_METRICS_DISABLED="true",
            POWERTOOLS_TRACE_DISABLED="true",
        )
    )
    return stream_arn, tokens, resources.queues["FailedRecordsQueue"].url


def _sync(aws: dict[str, Any], stream_arn: str, out: Callable[[str], None], *, verbose: bool) -> int:
    from local_runner import Runner, StreamPoller
    from tools.lambda_local import load_handler
    from vercel_sync import wiring

    wiring.sync_service.set(None)  # built with the mapping at the first invocation
    handler_output = io.StringIO()
    with contextlib.redirect_stdout(handler_output):
        poller = StreamPoller(aws["dynamodbstreams"], stream_arn, load_handler("stream_sync").lambda_handler)
        results = list(Runner([poller]).run_until_idle(idle_seconds=1.0, timeout_seconds=SYNC_TIMEOUT_SECONDS))
    wiring.sync_service.set(None)
    out("== the stream, delivered to the stream handler as Lambda would")
    problems = 0
    for result in results:
        out(f"   {result.describe()}")
        problems += bool(result.error or result.reported)
    if problems or verbose:
        for line in handler_output.getvalue().splitlines():
            out(f"     {line}")
    return problems


def _report(
    items: Any, verdicts: Any, mapping: Any, vercel: httpx.Client, tokens: dict[str, str], out: Callable[[str], None]
) -> int:
    """Each item: the preview's verdict beside what Vercel (the emulator) holds."""
    out("\n== each item: what the preview said, and what Vercel now holds")
    problems = 0
    for item, verdict in zip(items, verdicts, strict=True):
        installation, resource = mapping.text(item, "integrationConfigurationId"), mapping.text(item, "resourceId")
        held = None
        if installation in tokens and resource:
            path = f"/v1/installations/{installation}/resources/{_quoted(resource)}"
            response = vercel.get(path, headers={"Authorization": f"Bearer {tokens[installation]}"})
            held = response.json() if response.status_code == 200 else None
        expected = json.loads(verdict.detail)["status"] if verdict.outcome == "would send" else None
        actual = held.get("status") if held else None
        mark = "" if actual == expected else f"   <- expected {expected or 'nothing'}"
        problems += actual != expected
        out(f"   {resource or '-':20} {verdict.outcome:15} Vercel: {actual or '-'}{mark}")
    return problems


def _failed_records(aws: dict[str, Any], queue_url: str, out: Callable[[str], None]) -> int:
    from local_aws.provision import drain_json_messages

    failed = drain_json_messages(aws["sqs"], queue_url)
    out(f"\n== failed-records queue: {len(failed) or 'empty'}")
    for message in failed:
        out(f"   {message['resourceId']}: {message['reason']}: {message['detail'][:90]}")
    return len(failed)


def _quoted(resource_id: str) -> str:
    from urllib.parse import quote

    return quote(resource_id, safe="")


def single_table(dynamodb: Any, name: str, items: Any) -> str:
    """A table of the example's own design (pk/sk) with a stream, holding ``items``; its stream ARN."""
    from boto3.dynamodb.types import TypeSerializer

    description = dynamodb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )["TableDescription"]
    serializer = TypeSerializer()
    for item in items:
        dynamodb.put_item(TableName=name, Item={k: serializer.serialize(v) for k, v in item.items()})
    return str(description["LatestStreamArn"])
