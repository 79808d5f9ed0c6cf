"""Real parts over real HTTP: moto server (Secrets Manager, SQS, DynamoDB and its streams) and
the Vercel emulator, each on a free loopback port, started here and torn down after.

The AWS resources come from template.yaml (``local_aws``), and so does the functions'
environment: a test sees what a deployed stack would give the handlers.
"""

from __future__ import annotations

import itertools
import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import httpx
import pytest

from local_aws.moto_server import aws_clients, moto_server
from local_aws.provision import (
    DRAINED_MESSAGE_OBSERVERS,
    LocalResources,
    provision,
    store_installation_token,
    store_resource_secret,
)
from local_aws.template import Template
from tests.leak_scan import SCANNER, register_secret
from tools.lambda_local import load_handler
from vercel_emulator import EmulatorServer
from vercel_emulator.state import FaultSettings
from vercel_sync import wiring

INSTALLATION_ID = "icfg_it_01"
RESOURCE_SECRET_NAME = f"{INSTALLATION_ID}/db_primary"  # in the installation's folder
# Vercel's limit is 100/60: at its ~93% pace, 120 imports for one installation take over a minute.
# Tests about other things run the template's VercelRateLimit and the emulator at this one; the
# rate limiter's own tests (and a test that sets VercelRateLimit) use realistic limits.
DEFAULT_RATE_LIMIT = "6000/60"
_stack_numbers = itertools.count(1)


@pytest.fixture(scope="session")
def aws_endpoint() -> Iterator[str]:
    with moto_server() as endpoint:
        yield endpoint


@pytest.fixture(scope="session")
def aws(aws_endpoint: str) -> Iterator[dict[str, Any]]:
    clients = aws_clients(aws_endpoint)
    DRAINED_MESSAGE_OBSERVERS.append(_scan_drained)
    yield clients
    DRAINED_MESSAGE_OBSERVERS.remove(_scan_drained)
    scan_what_moto_holds(clients)


def _scan_drained(body: str) -> None:
    SCANNER.scan_message(body, "message drained from a queue")


def scan_what_moto_holds(clients: dict[str, Any]) -> None:
    """The leak scan's last look: every message left in any queue, every item of every table."""
    SCANNER.current_test = "(end of session: moto server)"
    sqs, dynamodb = clients["sqs"], clients["dynamodb"]
    for url in sqs.list_queues(MaxResults=1000).get("QueueUrls", []):
        for _ in range(100):  # bounded: a queue holds a few messages here
            batch = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0)
            messages = batch.get("Messages", [])
            if not messages:
                break
            for message in messages:
                SCANNER.scan_message(message["Body"], f"message left in {url.rsplit('/', 1)[-1]}")
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    for table in dynamodb.list_tables().get("TableNames", []):
        for page in dynamodb.get_paginator("scan").paginate(TableName=table):
            for item in page.get("Items", []):
                SCANNER.scan_message(json.dumps(item), f"item of table {table}")


@pytest.fixture(scope="session")
def emulator() -> Iterator[EmulatorServer]:
    with EmulatorServer() as server:
        yield server


@dataclass
class LocalStack:
    """One test's stack: the template's resources, a token and a resource secret, the emulator."""

    resources: LocalResources
    aws: dict[str, Any]
    emulator: EmulatorServer
    # Kept out of the repr: a failed assertion prints the stack, and no secret value may reach test output.
    token: str = field(repr=False)
    database_password: str = field(repr=False)
    preview_password: str = field(repr=False)

    @property
    def secret_values(self) -> list[str]:
        return [self.token, self.database_password, self.preview_password]

    @property
    def resource_secret_name(self) -> str:
        return self.resources.resource_secret_name(RESOURCE_SECRET_NAME)

    def queue_url(self, logical_id: str) -> str:
        return self.resources.queues[logical_id].url

    def rotate_token(self) -> str:
        """Vercel rotates the token: the secret gets the new one, the old one stops working."""
        self.token = "vrcl_it_" + secrets.token_urlsafe(24)
        register_secret(self.token, label="an installation token (integration fixture)")
        store_installation_token(self.aws["secretsmanager"], self.resources, INSTALLATION_ID, self.token)
        self.emulator.set_token(INSTALLATION_ID, self.token)
        return self.token


@pytest.fixture
def template_parameters() -> dict[str, str]:
    """Template parameter values for a test's stack (a test parametrizes this to change them)."""
    return {}


@pytest.fixture
def local_stack(
    aws: dict[str, Any],
    aws_endpoint: str,
    emulator: EmulatorServer,
    template_parameters: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[LocalStack]:
    """A fresh stack per test (its own resource names in the shared moto server), and the
    functions' environment set from the template, pointed at moto server and the emulator."""
    resources = provision(
        Template.load({"VercelRateLimit": DEFAULT_RATE_LIMIT, **template_parameters}),
        sqs=aws["sqs"],
        dynamodb=aws["dynamodb"],
        stack_name=f"it{next(_stack_numbers)}",
    )
    stack = LocalStack(
        resources=resources,
        aws=aws,
        emulator=emulator,
        token="vrcl_it_" + secrets.token_urlsafe(24),
        database_password=secrets.token_urlsafe(18),
        preview_password=secrets.token_urlsafe(18),
    )
    register_secret(stack.token, label="an installation token (integration fixture)")
    register_secret(
        stack.database_password, stack.preview_password, label="a resource secret value (integration fixture)"
    )
    store_installation_token(aws["secretsmanager"], resources, INSTALLATION_ID, stack.token)
    store_resource_secret(
        aws["secretsmanager"],
        resources,
        RESOURCE_SECRET_NAME,
        {
            "DATABASE_URL": f"postgres://orders:{stack.database_password}@db.internal:5432/orders",
            "PGPASSWORD": {"value": stack.database_password, "preview": stack.preview_password},
        },
    )
    # The emulator is shared by the session: each test starts from its defaults, whatever an
    # earlier (perhaps failed) test changed. reset() keeps tokens and settings, so set them too.
    emulator.reset()
    emulator.set_faults(FaultSettings())
    emulator.set_rate_limit(template_parameters.get("VercelRateLimit", DEFAULT_RATE_LIMIT))
    emulator.set_delete_rate_limit(template_parameters.get("VercelRateLimit", DEFAULT_RATE_LIMIT))
    emulator.set_token(INSTALLATION_ID, stack.token)

    environment = resources.local_function_environment(
        aws_endpoint=aws_endpoint,
        vercel_api_url=emulator.url,
        POWERTOOLS_TRACE_DISABLED="true",
        POWERTOOLS_METRICS_NAMESPACE="VercelResourceSyncTests",
    )
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    wiring.sync_service.set(None)  # the next invocation builds its service from this environment
    yield stack
    wiring.sync_service.set(None)


@pytest.fixture(scope="session")
def handlers() -> dict[str, ModuleType]:
    return {name: load_handler(name) for name in ("stream_sync", "queue_sync")}


@pytest.fixture
def vercel() -> Iterator[EmulatorServer]:
    """An emulator of its own for one test, with two installations (the emulator tests')."""
    from tests.integration.support import TOKEN_1, TOKEN_2  # support imports this module

    with EmulatorServer({"icfg_1": TOKEN_1, "icfg_2": TOKEN_2}, rate_limit="1000/60") as server:
        yield server


@pytest.fixture
def client(vercel: EmulatorServer) -> Iterator[httpx.Client]:
    """Installation icfg_1's client of ``vercel``, with the headers the official SDK (and the sync's
    client) sends; ``put()`` adds Content-Type."""
    from tests.integration.support import TOKEN_1, loopback_client

    with loopback_client(vercel.url, TOKEN_1) as http:
        yield http
