"""A stand-in Vercel over real HTTP rejects each import with a body that echoes the request in
another encoding (as a proxy's page, or in a JSON error's message): the real queue handler, over
moto server, parks each record with no secret value in its failed-records message."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import ModuleType
from typing import Any
from urllib.parse import unquote

import pytest

from local_aws.provision import drain_json_messages, store_resource_secret
from local_runner import QueuePoller, Runner
from tests.encodings import BODIES, ECHOED_PASSWORD, ENCODINGS, forms, strings
from tests.integration.conftest import INSTALLATION_ID, LocalStack
from vercel_sync import wiring

pytestmark = pytest.mark.integration


class EchoingVercel(BaseHTTPRequestHandler):
    """Answers every PUT 400, echoing its body the way the resource id names:
    ``{encoding}--{body kind}`` (``tests.encodings``)."""

    def do_PUT(self) -> None:
        request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        encoding, body = unquote(self.path.rsplit("/", 1)[-1]).split("--")
        encode, _ = ENCODINGS[encoding]
        answer = BODIES[body](encode(request)).encode("utf-8")
        self.send_response(400)
        self.send_header("Content-Type", "text/html" if body == "proxy_html_page" else "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def echoing_vercel(local_stack: LocalStack, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), EchoingVercel)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    monkeypatch.setenv("VERCEL_API_URL", url)
    wiring.sync_service.set(None)  # built again, for this Vercel
    try:
        yield url
    finally:
        server.shutdown()
        server.server_close()
        wiring.sync_service.set(None)


@pytest.mark.parametrize("template_parameters", [{"CreatedPartnerQueueType": "standard"}])
def test_every_echo_of_the_request_is_parked_without_the_secret(
    local_stack: LocalStack, echoing_vercel: str, handlers: dict[str, ModuleType]
) -> None:
    secret_name = store_resource_secret(
        local_stack.aws["secretsmanager"],
        local_stack.resources,
        f"{INSTALLATION_ID}/echoed",
        {"PGPASSWORD": ECHOED_PASSWORD},
    )
    queue_url = local_stack.queue_url("PartnerEventsQueue")
    resource_ids = [f"{encoding}--{body}" for encoding in sorted(ENCODINGS) for body in sorted(BODIES)]
    for resource_id in resource_ids:
        record = {
            "integrationConfigurationId": INSTALLATION_ID,
            "resourceId": resource_id,
            "productId": "postgres",
            "name": "echoed",
            "status": "active",
            "secretsArn": secret_name,
        }
        local_stack.aws["sqs"].send_message(QueueUrl=queue_url, MessageBody=json.dumps(record))

    poller = QueuePoller(local_stack.aws["sqs"], queue_url, handlers["queue_sync"].lambda_handler)
    results = list(Runner([poller]).run_until_idle(idle_seconds=0.3, timeout_seconds=60))

    assert [identifier for result in results for identifier in result.reported] == []
    messages = drain_json_messages(local_stack.aws["sqs"], local_stack.queue_url("FailedRecordsQueue"))
    assert sorted(message["resourceId"] for message in messages) == sorted(resource_ids)
    for message in messages:
        assert message["reason"] == "vercel_rejected"
        assert message["httpStatus"] == 400
        for text in strings(message):
            for value in (ECHOED_PASSWORD, local_stack.token):
                for form in forms(value):
                    assert form not in text, f"{message['resourceId']}: a secret value in the form {form!r}"
