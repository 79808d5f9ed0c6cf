"""Rotation sync end to end over real HTTP: a resource secret rotated in moto server reaches Vercel
(the emulator) through the local runner's secrets poller and the real RotationSyncFunction handler.

The resources are imported first by the real stream handler; the sync-state items that say which
secret each import used are written here in ``CONTRACT.md``'s format (the state adapter writes the
same ones when it records an import).
"""

from __future__ import annotations

import json
import os
import secrets
import threading
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest

from local_aws.provision import drain_json_messages, store_installation_token, store_resource_secret
from local_runner import Runner, SecretRotationPoller, send_failure_to_queue
from tests.integration.conftest import INSTALLATION_ID, LocalStack
from tests.integration.support import delete_item, put_item, record, sync_stream
from tests.leak_scan import register_secret
from tools.lambda_local import load_handler
from vercel_sync import wiring
from vercel_sync.calls import RetryPolicy
from vercel_sync.settings import RotationSettings
from vercel_sync.wiring import build_rotation_service

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def rotation_handler() -> ModuleType:
    return load_handler("rotation_sync")


@pytest.fixture(autouse=True)
def fresh_rotation_service() -> Iterator[None]:
    wiring.rotation_service.set(None)  # built from each test's environment
    yield
    wiring.rotation_service.set(None)


def state_key(installation_id: str, resource_id: str) -> str:
    return f"resource#{len(installation_id)}#{installation_id}#{resource_id}"


def write_state(
    stack: LocalStack,
    resource_id: str,
    secret: str | None,
    prefix: str | None = None,
    *,
    installation_id: str = INSTALLATION_ID,
) -> None:
    """The sync-state item of an imported resource, as the state adapter records it."""
    item: dict[str, Any] = {
        "pk": {"S": state_key(installation_id, resource_id)},
        "kind": {"S": "resource"},
        "installationId": {"S": installation_id},
        "resourceId": {"S": resource_id},
        "payloadDigest": {"S": "0" * 64},
        "productId": {"S": "postgres"},
        "status": {"S": "ready"},
        "importedAt": {"S": "2026-11-27T10:00:00+00:00"},
    }
    if secret is not None:
        item["secretName"] = {"S": secret}
    if prefix is not None:
        item["secretsPrefix"] = {"S": prefix}
    stack.aws["dynamodb"].put_item(TableName=stack.resources.tables["SyncStateTable"].name, Item=item)


def rotate_resource_secret(stack: LocalStack) -> tuple[str, str]:
    """put_secret_value: a new current version of the resource secret, with new values."""
    password, preview = secrets.token_urlsafe(18), secrets.token_urlsafe(18)
    register_secret(password, preview)
    document = {
        "DATABASE_URL": f"postgres://orders:{password}@db.internal:5432/orders",
        "PGPASSWORD": {"value": password, "preview": preview},
    }
    stack.aws["secretsmanager"].put_secret_value(SecretId=stack.resource_secret_name, SecretString=json.dumps(document))
    return password, preview


def rotation_poller(stack: LocalStack, handler: ModuleType, **options: Any) -> SecretRotationPoller:
    return SecretRotationPoller(
        stack.aws["secretsmanager"],
        handler.lambda_handler,
        prefix=stack.resources.template.parameters["ResourceSecretPrefix"],
        retry_delay_seconds=0.2,
        **options,
    )


@pytest.fixture
def imported(local_stack: LocalStack, handlers: dict[str, ModuleType]) -> LocalStack:
    """Three resources imported by the stream handler: two use the resource secret (by name with a
    prefix, by full ARN without), one uses none; and their sync-state items."""
    name = local_stack.resource_secret_name
    arn = local_stack.aws["secretsmanager"].describe_secret(SecretId=name)["ARN"]
    put_item(local_stack, record("db_primary", secretsArn=name, secretsPrefix="ORDERS"))
    put_item(local_stack, record("db_replica", secretsArn=arn))
    put_item(local_stack, record("cache_1"))
    assert [r for result in sync_stream(local_stack, handlers) for r in result.reported] == []
    write_state(local_stack, "db_primary", name, "ORDERS")
    write_state(local_stack, "db_replica", name)  # an ARN's name, without its -AbCdEf suffix
    write_state(local_stack, "cache_1", None)
    return local_stack


def test_a_rotated_resource_secret_reaches_vercel_in_one_run_with_one_call_per_resource(
    imported: LocalStack, rotation_handler: ModuleType
) -> None:
    stack = imported
    poller = rotation_poller(stack, rotation_handler)  # the versions current now are its baseline
    password, preview = rotate_resource_secret(stack)

    summary = Runner([poller], idle_sleep_seconds=0.05).run_until_idle(idle_seconds=0.3, timeout_seconds=30)

    assert [(r.records, r.error, r.outcome) for r in summary] == [(1, None, "ok")]
    emulator = stack.emulator
    assert emulator.secrets_call_count(INSTALLATION_ID, "db_primary").by_status == {"201": 1}
    assert emulator.secrets_call_count(INSTALLATION_ID, "db_replica").by_status == {"201": 1}
    assert emulator.secrets_call_count(INSTALLATION_ID, "cache_1").total == 0
    assert emulator.calls()["byRoute"].get("secrets") == 2
    assert emulator.call_count(INSTALLATION_ID, "db_primary").total == 1  # no import was sent again
    primary = emulator.imported_body(INSTALLATION_ID, "db_primary") or {}
    assert primary["secrets"] == [
        {"name": "DATABASE_URL", "value": f"postgres://orders:{password}@db.internal:5432/orders", "prefix": "ORDERS"},
        {"name": "PGPASSWORD", "value": password, "prefix": "ORDERS", "environmentOverrides": {"preview": preview}},
    ]
    replica = emulator.imported_body(INSTALLATION_ID, "db_replica") or {}
    assert [s["value"] for s in replica["secrets"]] == [primary["secrets"][0]["value"], password]
    assert all("prefix" not in s for s in replica["secrets"])
    assert (emulator.held_resource(INSTALLATION_ID, "db_primary") or {})["secrets"] == [
        {"name": "DATABASE_URL", "prefix": "ORDERS"},
        {"name": "PGPASSWORD", "prefix": "ORDERS"},
    ]
    assert drain_json_messages(stack.aws["sqs"], stack.queue_url("FailedRecordsQueue")) == []


def test_vercels_secrets_limit_is_waited_out_with_retry_after(
    imported: LocalStack, rotation_handler: ModuleType
) -> None:
    stack = imported
    stack.emulator.set_secrets_rate_limit("1/1")  # the second resource's call gets 429, Retry-After: 1
    poller = rotation_poller(stack, rotation_handler)
    rotate_resource_secret(stack)

    summary = Runner([poller], idle_sleep_seconds=0.05).run_until_idle(idle_seconds=0.3, timeout_seconds=30)

    assert [(r.records, r.error) for r in summary] == [(1, None)]
    assert stack.emulator.secrets_call_count(INSTALLATION_ID, "db_primary").by_status == {"201": 1}
    assert stack.emulator.secrets_call_count(INSTALLATION_ID, "db_replica").by_status == {"429": 1, "201": 1}


def test_a_resource_vercel_does_not_hold_is_parked_and_the_others_updated(
    imported: LocalStack, rotation_handler: ModuleType
) -> None:
    stack = imported
    write_state(stack, "ghost_1", stack.resource_secret_name)  # Vercel never imported it: 404
    poller = rotation_poller(stack, rotation_handler)
    password, _ = rotate_resource_secret(stack)

    Runner([poller], idle_sleep_seconds=0.05).run_until_idle(idle_seconds=0.3, timeout_seconds=30)

    (message,) = drain_json_messages(stack.aws["sqs"], stack.queue_url("FailedRecordsQueue"))
    assert (message["kind"], message["resourceId"], message["reason"]) == (
        "secret_rotation",
        "ghost_1",
        "vercel_rejected",
    )
    assert message["httpStatus"] == 404
    assert message["rotation"] == {"secretName": stack.resource_secret_name, "secretsPrefix": None}
    assert message["source"]["eventName"] == "PutSecretValue"
    assert password not in json.dumps(message)
    assert stack.emulator.secrets_call_count(INSTALLATION_ID, "db_primary").by_status == {"201": 1}


@pytest.mark.parametrize("template_parameters", [{"RemovalMode": "delete"}])
def test_a_resource_deleted_at_vercel_gets_no_secrets_update(
    local_stack: LocalStack, handlers: dict[str, ModuleType], rotation_handler: ModuleType
) -> None:
    """As for one imported uninstalled: the deletion's state records no secret, so rotation finds
    only the resource still using it."""
    stack = local_stack
    name = stack.resource_secret_name
    put_item(stack, record("db_primary", secretsArn=name))
    put_item(stack, record("db_gone", secretsArn=name))
    assert [r for result in sync_stream(stack, handlers) for r in result.reported] == []
    delete_item(stack, "db_gone")
    assert [r for result in sync_stream(stack, handlers) for r in result.reported] == []
    assert stack.emulator.call_count(INSTALLATION_ID, "db_gone", "DELETE").by_status == {"204": 1}
    poller = rotation_poller(stack, rotation_handler)
    rotate_resource_secret(stack)

    summary = Runner([poller], idle_sleep_seconds=0.05).run_until_idle(idle_seconds=0.3, timeout_seconds=30)

    assert [(r.records, r.error) for r in summary] == [(1, None)]
    assert stack.emulator.secrets_call_count(INSTALLATION_ID, "db_primary").by_status == {"201": 1}
    assert stack.emulator.secrets_call_count(INSTALLATION_ID, "db_gone").total == 0
    assert drain_json_messages(stack.aws["sqs"], stack.queue_url("FailedRecordsQueue")) == []


def test_a_rotation_never_reaches_a_resource_of_another_installation(
    imported: LocalStack, rotation_handler: ModuleType
) -> None:
    # Another installation's resource last imported this secret (before the rule, or the secret
    # was moved since): it is parked, never sent the new value, though Vercel would take it.
    stack = imported
    other, other_token = "icfg_it_other", "vrcl_it_" + secrets.token_urlsafe(24)
    register_secret(other_token, label="an installation token (integration fixture)")
    store_installation_token(stack.aws["secretsmanager"], stack.resources, other, other_token)
    stack.emulator.set_token(other, other_token)
    write_state(stack, "db_elsewhere", stack.resource_secret_name, installation_id=other)
    poller = rotation_poller(stack, rotation_handler)
    password, _ = rotate_resource_secret(stack)

    Runner([poller], idle_sleep_seconds=0.05).run_until_idle(idle_seconds=0.3, timeout_seconds=30)

    assert stack.emulator.secrets_call_count(other, "db_elsewhere").total == 0
    assert stack.emulator.secrets_call_count(INSTALLATION_ID, "db_primary").by_status == {"201": 1}
    (message,) = drain_json_messages(stack.aws["sqs"], stack.queue_url("FailedRecordsQueue"))
    assert (message["integrationConfigurationId"], message["resourceId"]) == (other, "db_elsewhere")
    assert message["reason"] == "invalid_record"
    assert "does not belong" in message["detail"]
    assert INSTALLATION_ID not in message["detail"]
    assert password not in json.dumps(message)


def test_an_event_that_keeps_failing_ends_in_the_rotation_failure_queue(
    imported: LocalStack, rotation_handler: ModuleType
) -> None:
    from vercel_emulator import FaultSettings

    stack = imported
    stack.emulator.set_faults(FaultSettings(error_rate=1.0))  # the fixture clears it for the next test
    service = build_rotation_service(RotationSettings.from_env(os.environ))
    service.retry = RetryPolicy(max_calls=2, base_delay_seconds=0.01)  # the in-invocation retries, made quick
    wiring.rotation_service.set(service)
    queue = stack.queue_url("RotationFailureQueue")
    poller = rotation_poller(stack, rotation_handler, on_failure=send_failure_to_queue(stack.aws["sqs"], queue))
    rotate_resource_secret(stack)

    summary = Runner([poller], idle_sleep_seconds=0.05).run_until_idle(idle_seconds=0.3, timeout_seconds=60)

    assert [r.outcome for r in summary] == ["failed", "failed", "gave up"]  # Lambda's two retries
    (record_,) = drain_json_messages(stack.aws["sqs"], queue)
    assert record_["requestContext"]["condition"] == "RetriesExhausted"
    assert record_["requestPayload"]["detail"]["eventName"] == "PutSecretValue"
    assert drain_json_messages(stack.aws["sqs"], stack.queue_url("FailedRecordsQueue")) == []


def test_the_runner_command_line_watches_the_resource_secrets(local_stack: LocalStack) -> None:
    """``python -m local_runner --secrets-prefix PREFIX``: one line per invocation, no value."""
    from local_runner.__main__ import main

    delivered: list[tuple[str, dict[str, Any]]] = []
    lines: list[str] = []
    watching = threading.Event()

    def out(line: str) -> None:
        lines.append(line)
        if line.startswith("watching secrets"):
            watching.set()  # the poller has taken its baseline

    def load(name: str) -> Any:
        return lambda event, context: delivered.append((name, event)) or {}

    prefix = local_stack.resources.template.parameters["ResourceSecretPrefix"]
    argv = ["--secrets-prefix", prefix, "--until-idle", "--idle-seconds", "0.5", "--timeout", "20"]
    codes: list[int] = []
    runner = threading.Thread(target=lambda: codes.append(main(argv, load=load, out=out)))
    runner.start()
    assert watching.wait(10)
    password, _ = rotate_resource_secret(local_stack)
    runner.join(30)

    assert codes == [0], lines
    assert [(name, event["detail"]["eventName"]) for name, event in delivered] == [("rotation_sync", "PutSecretValue")]
    assert delivered[0][1]["detail"]["requestParameters"]["secretId"] == local_stack.resource_secret_name
    assert any(f"{local_stack.resource_secret_name} (PutSecretValue)" in line for line in lines)
    assert lines[-1].startswith("done: 1 invocations, 1 records")
    assert not any(password in line for line in lines)


def test_a_secret_named_by_a_partial_arn_is_rotated_into_its_resources_only(
    local_stack: LocalStack, handlers: dict[str, ModuleType], rotation_handler: ModuleType
) -> None:
    stack = local_stack
    client = stack.aws["secretsmanager"]
    orders = store_resource_secret(client, stack.resources, f"{INSTALLATION_ID}/orders", {"PGPASSWORD": "x" * 20})
    backup = store_resource_secret(
        client, stack.resources, f"{INSTALLATION_ID}/orders-backup", {"PGPASSWORD": "y" * 20}
    )
    account = client.describe_secret(SecretId=backup)["ARN"].split(":")[4]
    put_item(stack, record("db_backup", secretsArn=f"arn:aws:secretsmanager:us-east-1:{account}:secret:{backup}"))
    assert [r for result in sync_stream(stack, handlers) for r in result.reported] == []
    poller = rotation_poller(stack, rotation_handler)

    new_values = {}
    for name in (orders, backup):
        new_values[name] = secrets.token_urlsafe(18)
        register_secret(new_values[name])
        client.put_secret_value(SecretId=name, SecretString=json.dumps({"PGPASSWORD": new_values[name]}))
        Runner([poller], idle_sleep_seconds=0.05).run_until_idle(idle_seconds=0.3, timeout_seconds=30)
        held = stack.emulator.imported_body(INSTALLATION_ID, "db_backup") or {}
        got = [s["value"] for s in held.get("secrets", [])]
        if name == orders:
            assert new_values[orders] not in got, "another secret's rotation reached the resource"
    assert got == [new_values[backup]], "the resource's own secret's rotation did not reach it"
