"""Short-lived installation tokens end to end (issue 16): TOKEN_MODE short-lived from the template, the
integration's client id and secret in moto server's Secrets Manager, the emulator's token endpoint checking
them and issuing tokens that expire. The installation's long-lived token is in its secret as before but
Vercel no longer takes it: every import and secrets update below went out with a requested token."""

from __future__ import annotations

import json
import secrets
import time
import uuid
from collections.abc import Iterator
from types import ModuleType

import pytest

from local_aws.provision import drain_json_messages
from local_runner import Runner, SecretRotationPoller
from tests.integration.conftest import INSTALLATION_ID, LocalStack
from tests.integration.support import put_item, record, reported, send, sync_queue, sync_stream
from tests.leak_scan import register_secret
from tools.lambda_local import load_handler
from vercel_sync import wiring

pytestmark = pytest.mark.integration

CLIENT_ID = "oac_short_lived_integration"
CLIENT_SECRET = "short-lived-integration-client-secret-" + secrets.token_urlsafe(12)
register_secret(CLIENT_SECRET, label="the integration's client secret (short-lived tokens)")


@pytest.fixture
def template_parameters() -> dict[str, str]:
    # moto server is the session's: each test's credentials secret has a name of its own.
    return {"TokenMode": "short-lived", "IntegrationCredentialsSecretName": f"it/credentials-{uuid.uuid4().hex[:8]}"}


@pytest.fixture
def short_lived(local_stack: LocalStack) -> Iterator[LocalStack]:
    """The stack in short-lived mode: the credentials stored, Vercel checking them and refusing the
    long-lived token the installation's secret still holds."""
    name = local_stack.resources.template.parameters["IntegrationCredentialsSecretName"]
    document = {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}
    local_stack.aws["secretsmanager"].create_secret(Name=name, SecretString=json.dumps(document))
    emulator = local_stack.emulator
    emulator.state.tokens.on_issue = lambda token: register_secret(token, label="a token the emulator issued")
    emulator.set_client_credentials(CLIENT_ID, CLIENT_SECRET)
    not_stored = "vrcl_it_not_stored_" + secrets.token_urlsafe(12)
    register_secret(not_stored, label="a token no secret holds")
    emulator.set_token(INSTALLATION_ID, not_stored)  # the stored long-lived token is refused from now on
    wiring.rotation_service.set(None)
    yield local_stack
    emulator.set_client_credentials(None, None)
    emulator.set_token_lifetime(3600)
    emulator.state.tokens.on_issue = None
    wiring.rotation_service.set(None)


def test_the_stream_trigger_imports_with_a_requested_token(
    short_lived: LocalStack, handlers: dict[str, ModuleType]
) -> None:
    stack = short_lived
    for n in range(3):
        put_item(stack, record(f"db_{n}", secretsArn=stack.resource_secret_name))

    assert reported(sync_stream(stack, handlers)) == []

    emulator = stack.emulator
    assert [emulator.call_count(INSTALLATION_ID, f"db_{n}").by_status for n in range(3)] == [{"200": 1}] * 3
    assert emulator.token_requests(INSTALLATION_ID).by_status == {"200": 1}  # one token for the batch
    body = emulator.imported_body(INSTALLATION_ID, "db_0") or {}
    assert stack.database_password in json.dumps(body)


def test_the_queue_trigger_imports_with_a_requested_token_and_renews_it_before_it_expires(
    short_lived: LocalStack, handlers: dict[str, ModuleType]
) -> None:
    stack, emulator = short_lived, short_lived.emulator
    emulator.set_token_lifetime(2)  # kept for 1 s (half of it: the margin is longer than that)
    send(stack, record("q_1"))
    assert reported(sync_queue(stack, handlers)) == []
    time.sleep(2.2)  # the token has expired at Vercel
    send(stack, record("q_2"))
    assert reported(sync_queue(stack, handlers)) == []

    assert emulator.call_count(INSTALLATION_ID, "q_1").by_status == {"200": 1}
    assert emulator.call_count(INSTALLATION_ID, "q_2").by_status == {"200": 1}  # renewed before: no 401
    assert emulator.token_requests(INSTALLATION_ID).by_status == {"200": 2}


def test_a_token_vercel_stops_taking_is_replaced_after_one_401(
    short_lived: LocalStack, handlers: dict[str, ModuleType]
) -> None:
    stack, emulator = short_lived, short_lived.emulator
    put_item(stack, record("db_a"))
    assert reported(sync_stream(stack, handlers)) == []
    emulator.set_token(INSTALLATION_ID, "vrcl_it_not_stored_" + secrets.token_urlsafe(12))  # issued ones revoked

    put_item(stack, record("db_b"))
    assert reported(sync_stream(stack, handlers)) == []

    assert emulator.call_count(INSTALLATION_ID, "db_b").by_status == {"401": 1, "200": 1}
    assert emulator.token_requests(INSTALLATION_ID).by_status == {"200": 2}
    assert drain_json_messages(stack.aws["sqs"], stack.queue_url("FailedRecordsQueue")) == []


def test_wrong_client_credentials_park_the_records_without_quoting_them(
    short_lived: LocalStack, handlers: dict[str, ModuleType]
) -> None:
    stack, emulator = short_lived, short_lived.emulator
    emulator.set_client_credentials(CLIENT_ID, "the-integrations-real-secret-is-another")
    put_item(stack, record("db_x"))

    assert reported(sync_stream(stack, handlers)) == []

    (parked,) = drain_json_messages(stack.aws["sqs"], stack.queue_url("FailedRecordsQueue"))
    assert parked["reason"] == "token_unavailable"
    assert "401" in parked["detail"]
    assert CLIENT_SECRET not in json.dumps(parked)
    assert emulator.call_count(INSTALLATION_ID, "db_x").total == 0


def test_rotation_sync_pushes_a_rotated_secret_with_a_requested_token(
    short_lived: LocalStack, handlers: dict[str, ModuleType]
) -> None:
    stack, emulator = short_lived, short_lived.emulator
    put_item(stack, record("db_primary", secretsArn=stack.resource_secret_name))
    assert reported(sync_stream(stack, handlers)) == []
    poller = SecretRotationPoller(
        stack.aws["secretsmanager"],
        load_handler("rotation_sync").lambda_handler,
        prefix=stack.resources.template.parameters["ResourceSecretPrefix"],
        retry_delay_seconds=0.2,
    )
    password = secrets.token_urlsafe(18)
    register_secret(password, label="a rotated resource secret value (short-lived tokens)")
    rotated = {"DATABASE_URL": f"postgres://orders:{password}@db.internal:5432/orders", "PGPASSWORD": password}
    stack.aws["secretsmanager"].put_secret_value(SecretId=stack.resource_secret_name, SecretString=json.dumps(rotated))

    summary = Runner([poller], idle_sleep_seconds=0.05).run_until_idle(idle_seconds=0.3, timeout_seconds=30)

    assert [(r.error, r.outcome) for r in summary] == [(None, "ok")]
    assert emulator.secrets_call_count(INSTALLATION_ID, "db_primary").by_status == {"201": 1}
    assert password in json.dumps(emulator.imported_body(INSTALLATION_ID, "db_primary"))
    # The sync's container and rotation's are two: each requested its own token.
    assert emulator.token_requests(INSTALLATION_ID).by_status == {"200": 2}


def test_an_unchanged_payload_is_skipped_after_the_token_is_renewed(
    short_lived: LocalStack, handlers: dict[str, ModuleType]
) -> None:
    """Change suppression's digests must not be keyed by a token that changes every hour (and per
    container): with short-lived tokens the key is derived from the integration's client secret."""
    stack, emulator = short_lived, short_lived.emulator
    emulator.set_token_lifetime(1)
    send(stack, record("q_same", metadata={"rev": 1}))
    assert reported(sync_queue(stack, handlers)) == []
    time.sleep(1.2)  # the next batch requests a new token
    send(stack, record("q_same", metadata={"rev": 1}))
    assert reported(sync_queue(stack, handlers)) == []

    assert emulator.token_requests(INSTALLATION_ID).by_status == {"200": 2}
    assert emulator.call_count(INSTALLATION_ID, "q_same").by_status == {"200": 1}  # the second one skipped
