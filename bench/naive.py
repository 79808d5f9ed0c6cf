"""The naive baseline: one call per record, sequentially, as Powertools' batch example and Vercel's
example integration do.

Powertools' ``BatchProcessor`` with a record handler that makes one PUT per record in a plain
loop: no coalescing, no change suppression, no concurrency, no rate limiting, no retries (a
failed call fails its record, which goes back to its source). It builds the very body the
project sends, with the project's own transform, so the two differ only in how they call
Vercel. It is generous to itself in one way: one keep-alive ``httpx.Client`` per process and
the token read once per process (a ``fetch`` per record, as in Vercel's example, would open a
connection each time).

``lambda_stream_handler`` and ``lambda_queue_handler`` take Lambda events as the real handlers
do. :func:`use` swaps the Vercel call and the secrets reads (the overhead case runs it with no
network).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from vercel_sync.transform import build_import_body, needs_secrets, parse_partner_record, unwrap_message_body

PutImport = Callable[..., Any]  # (installation_id, resource_id, body, *, token) -> Any


class _Deps:
    def __init__(self) -> None:
        self.put: PutImport | None = None
        self.token: Callable[[str], str] | None = None
        self.resource_secret: Callable[[str], Any] | None = None
        self._tokens: dict[str, str] = {}
        self._http: Any = None
        self._secrets: Any = None

    def _secretsmanager(self) -> Any:
        if self._secrets is None:
            import boto3

            self._secrets = boto3.client("secretsmanager")
        return self._secrets

    def installation_token(self, installation_id: str) -> str:
        if self.token is not None:
            return self.token(installation_id)
        if installation_id not in self._tokens:
            secret_id = os.environ.get("VERCEL_TOKEN_SECRET_ID", "vercel/installations/{integrationConfigurationId}")
            raw = self._secretsmanager().get_secret_value(
                SecretId=secret_id.replace("{integrationConfigurationId}", installation_id)
            )["SecretString"]
            self._tokens[installation_id] = json.loads(raw)["access_token"] if raw.startswith("{") else raw
        return self._tokens[installation_id]

    def secret_document(self, secret_id: str) -> Any:
        if self.resource_secret is not None:
            return self.resource_secret(secret_id)
        return json.loads(self._secretsmanager().get_secret_value(SecretId=secret_id)["SecretString"])

    def import_resource(self, installation_id: str, resource_id: str, body: Mapping[str, Any], *, token: str) -> None:
        if self.put is not None:
            self.put(installation_id, resource_id, body, token=token)
            return
        if self._http is None:
            import httpx

            self._http = httpx.Client(timeout=10.0)
        base = os.environ.get("VERCEL_API_URL", "https://api.vercel.com").rstrip("/")
        url = f"{base}/v1/installations/{quote(installation_id, safe='')}/resources/{quote(resource_id, safe='')}"
        response = self._http.put(
            url,
            content=json.dumps(body, separators=(",", ":")).encode(),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        response.raise_for_status()


_deps = _Deps()


def use(
    *,
    put: PutImport | None = None,
    token: Callable[[str], str] | None = None,
    resource_secret: Callable[[str], Any] | None = None,
) -> None:
    """Replace the Vercel call and the secrets reads (``None``: the real ones, over the network)."""
    _deps.put, _deps.token, _deps.resource_secret = put, token, resource_secret


def _import(item: Mapping[str, Any], *, removed: bool) -> None:
    record = parse_partner_record(item)
    document = _deps.secret_document(record.secrets_arn or "") if needs_secrets(record, removed=removed) else None
    body = build_import_body(record, removed=removed, secret_document=document)[0].to_body()
    installation = record.integration_configuration_id
    _deps.import_resource(installation, record.resource_id, body, token=_deps.installation_token(installation))


def stream_record_handler(record: DynamoDBRecord) -> None:
    removed = record.event_name is not None and record.event_name.name == "REMOVE"
    stream = record.dynamodb
    assert stream is not None
    image = stream.old_image if removed else stream.new_image
    _import(image, removed=removed)


def queue_record_handler(record: SQSRecord) -> None:
    _import(unwrap_message_body(record.body), removed=False)


def lambda_stream_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    processor = BatchProcessor(event_type=EventType.DynamoDBStreams)
    return dict(
        process_partial_response(
            event=event, record_handler=stream_record_handler, processor=processor, context=context
        )
    )


def lambda_queue_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    processor = BatchProcessor(event_type=EventType.SQS)
    return dict(
        process_partial_response(event=event, record_handler=queue_record_handler, processor=processor, context=context)
    )
