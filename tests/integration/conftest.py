"""Real parts over real HTTP: moto server (Secrets Manager, SQS, DynamoDB and its streams) and
the Vercel emulator, each on a free loopback port, started here and torn down after.

The AWS resources come from template.yaml (``local_aws``), and so does the functions'
environment: a test sees what a deployed stack would give the handlers.
"""

from __future__ import annotations

import itertools
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import pytest

from local_aws.moto_server import aws_clients, moto_server
from local_aws.provision import LocalResources, provision, store_installation_token, store_resource_secret
from local_aws.template import Template
from tools.lambda_local import load_handler
from vercel_emulator import EmulatorServer
from vercel_emulator.state import FaultSettings
from vercel_sync.runtime import set_sync_service

INSTALLATION_ID = "icfg_it_01"
RESOURCE_SECRET_NAME = "db_primary"
DEFAULT_RATE_LIMIT = "100/60"  # Vercel's
_stack_numbers = itertools.count(1)


@pytest.fixture(scope="session")
def aws_endpoint() -> Iterator[str]:
    with moto_server() as endpoint:
        yield endpoint


@pytest.fixture(scope="session")
def aws(aws_endpoint: str) -> dict[str, Any]:
    return aws_clients(aws_endpoint)


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
    token: str
    database_password: str
    preview_password: str

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
        Template.load(template_parameters),
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
    emulator.set_rate_limit(DEFAULT_RATE_LIMIT)
    emulator.set_token(INSTALLATION_ID, stack.token)

    environment = resources.local_function_environment(
        aws_endpoint=aws_endpoint,
        vercel_api_url=emulator.url,
        POWERTOOLS_TRACE_DISABLED="true",
        POWERTOOLS_METRICS_NAMESPACE="VercelResourceSyncTests",
    )
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    set_sync_service(None)  # the next invocation builds its service from this environment
    yield stack
    set_sync_service(None)


@pytest.fixture(scope="session")
def handlers() -> dict[str, ModuleType]:
    return {name: load_handler(name) for name in ("stream_sync", "queue_sync")}
