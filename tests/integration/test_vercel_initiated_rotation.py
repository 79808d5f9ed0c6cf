"""Vercel-initiated secret rotation, end to end locally (docs/operations.md, "Vercel-initiated secret
rotation"): Vercel asks the provider's API to rotate a resource's secrets; the provider answers 202,
rotates the secret in Secrets Manager (moto server), and rotation sync pushes the new value with
Update Resource Secrets, so the emulator ends up holding it. The provider's endpoint here is the
smallest one that follows the documented steps."""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import ModuleType
from typing import Any

import httpx
import pytest

from local_runner import Runner, SecretRotationPoller
from tests.integration.conftest import INSTALLATION_ID, LocalStack
from tests.integration.support import put_item, record, reported, sync_stream
from tests.leak_scan import register_secret
from tools.lambda_local import load_handler
from vercel_sync import wiring

pytestmark = pytest.mark.integration


class ProviderApi:
    """The provider's rotate-secrets endpoint: answers 202, then rotates the resource's secret in
    Secrets Manager (step 2 of the docs), recording each request it was asked."""

    def __init__(self, stack: LocalStack) -> None:
        self.stack = stack
        self.requests: list[dict[str, Any]] = []
        self.rotated = threading.Event()
        self.new_password = ""
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                provider.requests.append({"path": self.path, **body})
                self.send_response(202)
                self.send_header("Content-Length", "0")
                self.end_headers()
                threading.Thread(target=provider.rotate, daemon=True).start()

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def rotate(self) -> None:
        password = secrets.token_urlsafe(18)
        register_secret(password, label="the rotated resource secret (Vercel-initiated rotation test)")
        document = {
            "DATABASE_URL": f"postgres://orders:{password}@db.internal:5432/orders",
            "PGPASSWORD": {"value": password},
        }
        self.stack.aws["secretsmanager"].put_secret_value(
            SecretId=self.stack.resource_secret_name, SecretString=json.dumps(document)
        )
        self.new_password = password
        self.rotated.set()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def provider(local_stack: LocalStack) -> Iterator[ProviderApi]:
    api = ProviderApi(local_stack)
    yield api
    api.close()


@pytest.fixture(autouse=True)
def fresh_rotation_service() -> Iterator[None]:
    wiring.rotation_service.set(None)
    yield
    wiring.rotation_service.set(None)


def test_vercels_rotate_request_ends_with_the_new_secret_at_vercel(
    local_stack: LocalStack, handlers: dict[str, ModuleType], provider: ProviderApi
) -> None:
    stack = local_stack
    put_item(stack, record("db_primary", secretsArn=stack.resource_secret_name))
    assert reported(sync_stream(stack, handlers)) == []
    poller = SecretRotationPoller(
        stack.aws["secretsmanager"],
        load_handler("rotation_sync").lambda_handler,
        prefix=stack.resources.template.parameters["ResourceSecretPrefix"],
        retry_delay_seconds=0.2,
    )  # the secret's current version is its baseline
    before = (stack.emulator.imported_body(INSTALLATION_ID, "db_primary") or {})["secrets"]

    # Vercel asks the provider to rotate the resource's secrets; the provider accepts at once.
    asked = httpx.post(
        f"{provider.url}/v1/installations/{INSTALLATION_ID}/resources/db_primary/secrets/rotate",
        json={"reason": "Vercel-initiated rotation", "delayOldSecretsExpirationHours": 0},
        timeout=5,
    )
    assert asked.status_code == 202
    assert provider.rotated.wait(10)

    summary = Runner([poller], idle_sleep_seconds=0.05).run_until_idle(idle_seconds=0.3, timeout_seconds=30)

    assert [(r.records, r.error) for r in summary] == [(1, None)]
    assert provider.requests == [
        {
            "path": f"/v1/installations/{INSTALLATION_ID}/resources/db_primary/secrets/rotate",
            "reason": "Vercel-initiated rotation",
            "delayOldSecretsExpirationHours": 0,
        }
    ]
    assert stack.emulator.secrets_call_count(INSTALLATION_ID, "db_primary").by_status == {"201": 1}
    after = (stack.emulator.imported_body(INSTALLATION_ID, "db_primary") or {})["secrets"]
    values = {secret["name"]: secret["value"] for secret in after}
    assert values["PGPASSWORD"] == provider.new_password
    assert values != {secret["name"]: secret["value"] for secret in before}
    assert (stack.emulator.held_resource(INSTALLATION_ID, "db_primary") or {})["secrets"] == [
        {"name": "DATABASE_URL"},
        {"name": "PGPASSWORD"},
    ]
