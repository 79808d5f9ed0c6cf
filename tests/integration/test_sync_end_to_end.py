"""Both handlers, driven by the local runner, over real HTTP: moto server and the Vercel emulator.

Partner changes are written where a partner writes them (the table, the queue); the runner
delivers them to the handlers as Lambda's event source mappings do; the emulator says what
Vercel would now hold.
"""

from __future__ import annotations

import json
from types import ModuleType
from typing import Any

import pytest

from local_aws.provision import drain_json_messages
from local_runner import QueuePoller, Runner
from tests.conftest import LogCapture
from tests.integration.conftest import INSTALLATION_ID, LocalStack
from tests.integration.support import delete_item, held, put_item, record, reported, send, sync_queue, sync_stream

pytestmark = pytest.mark.integration


def failed_records(stack: LocalStack) -> list[dict[str, Any]]:
    return drain_json_messages(stack.aws["sqs"], stack.queue_url("FailedRecordsQueue"))


def test_stream_insert_modify_remove_reach_vercel_in_order(
    local_stack: LocalStack, handlers: dict[str, ModuleType]
) -> None:
    secret_arn = local_stack.resource_secret_name
    put_item(local_stack, record("db_primary", "provisioning", secretsArn=secret_arn, secretsPrefix="ORDERS"))
    put_item(local_stack, record("db_primary", "active", secretsArn=secret_arn, secretsPrefix="ORDERS"))
    put_item(local_stack, record("cache/eu west#1", "active"))
    delete_item(local_stack, "cache/eu west#1")

    results = sync_stream(local_stack, handlers)

    assert reported(results) == []
    primary = held(local_stack, "db_primary")
    assert primary is not None
    assert primary["status"] == "ready"
    assert [s["name"] for s in primary["secrets"]] == ["DATABASE_URL", "PGPASSWORD"]
    body = local_stack.emulator.imported_body(INSTALLATION_ID, "db_primary")
    assert body is not None
    assert body["secrets"][1] == {
        "name": "PGPASSWORD",
        "value": local_stack.database_password,
        "prefix": "ORDERS",
        "environmentOverrides": {"preview": local_stack.preview_password},
    }
    cache = held(local_stack, "cache/eu west#1")  # one resource, its id kept whole
    assert cache is not None
    assert cache["status"] == "uninstalled"
    # Both changes came in one batch: coalesced into one call carrying the newer.
    assert local_stack.emulator.call_count(INSTALLATION_ID, "db_primary").total == 1
    assert failed_records(local_stack) == []


@pytest.mark.parametrize(
    "template_parameters", [{"CreatedPartnerQueueType": "fifo"}, {"CreatedPartnerQueueType": "standard"}]
)
def test_queue_messages_raw_sns_and_eventbridge(
    template_parameters: dict[str, str], local_stack: LocalStack, handlers: dict[str, ModuleType]
) -> None:
    fifo = local_stack.queue_url("PartnerEventsQueue").endswith(".fifo")
    assert fifo == (template_parameters["CreatedPartnerQueueType"] == "fifo")
    send(local_stack, record("raw_1"), group="raw_1")
    send(
        local_stack,
        {"Type": "Notification", "MessageId": "m-1", "Message": json.dumps(record("sns_1", "paused"))},
        group="sns_1",
    )
    send(
        local_stack,
        {"detail-type": "ResourceChanged", "source": "partner", "detail": record("eb_1", "failed")},
        group="eb_1",
    )

    results = sync_queue(local_stack, handlers)

    assert reported(results) == []
    statuses = {rid: (held(local_stack, rid) or {}).get("status") for rid in ("raw_1", "sns_1", "eb_1")}
    assert statuses == {"raw_1": "ready", "sns_1": "suspended", "eb_1": "error"}


def test_fifo_group_keeps_order_and_deleted_flag_uninstalls(
    local_stack: LocalStack, handlers: dict[str, ModuleType]
) -> None:
    for status, extra in (("creating", {}), ("active", {}), ("active", {"deleted": True})):
        send(local_stack, record("kv_1", status, **extra), group="kv_1")

    results = sync_queue(local_stack, handlers)

    assert reported(results) == []
    kv = held(local_stack, "kv_1")
    assert kv is not None
    assert kv["status"] == "uninstalled"
    # One batch: the three changes are coalesced into one call, the newest.
    assert local_stack.emulator.call_count(INSTALLATION_ID, "kv_1").total == 1


def test_invalid_records_reach_the_failed_records_queue_with_their_reason(
    local_stack: LocalStack, handlers: dict[str, ModuleType]
) -> None:
    put_item(local_stack, record("ok_1"))
    put_item(local_stack, record("bad_status", "exploding"))
    put_item(local_stack, {"integrationConfigurationId": INSTALLATION_ID, "resourceId": "no_name"})
    send(local_stack, "not json at all", group="x")
    send(local_stack, record("foreign_secret", secretsArn=f"vercel/installations/{INSTALLATION_ID}"), group="y")

    results = sync_stream(local_stack, handlers) + sync_queue(local_stack, handlers)

    assert reported(results) == []
    parked = failed_records(local_stack)
    reasons = {(m["resourceId"], m["reason"]) for m in parked}
    assert reasons == {
        ("bad_status", "invalid_record"),
        ("no_name", "invalid_record"),
        (None, "invalid_record"),
        ("foreign_secret", "invalid_record"),
    }
    by_id = {m["resourceId"]: m for m in parked}
    assert "status" in by_id["bad_status"]["detail"]
    assert by_id["bad_status"]["source"]["kind"] == "dynamodb-stream"
    assert "resource-secret prefix" in by_id["foreign_secret"]["detail"]
    assert (held(local_stack, "ok_1") or {}).get("status") == "ready"
    assert held(local_stack, "foreign_secret") is None


def test_vercel_rejections_are_parked_with_status_and_body(
    local_stack: LocalStack, handlers: dict[str, ModuleType]
) -> None:
    # The token is valid, but Vercel knows no installation "icfg_gone" (404), and "icfg_other"
    # belongs to someone else's token (403): neither can succeed by retrying.
    from local_aws.provision import store_installation_token

    for installation in ("icfg_gone", "icfg_other"):
        store_installation_token(
            local_stack.aws["secretsmanager"], local_stack.resources, installation, local_stack.token
        )
    local_stack.emulator.set_token("icfg_other", "vrcl_other_installation_token")
    send(local_stack, {**record("r_gone"), "integrationConfigurationId": "icfg_gone"}, group="a")
    send(local_stack, {**record("r_other"), "integrationConfigurationId": "icfg_other"}, group="b")

    results = sync_queue(local_stack, handlers)

    assert reported(results) == []
    parked = {m["resourceId"]: m for m in failed_records(local_stack)}
    assert {rid: (m["reason"], m["httpStatus"]) for rid, m in parked.items()} == {
        "r_gone": ("installation_unavailable", 404),
        "r_other": ("installation_unavailable", 403),
    }
    assert json.loads(parked["r_gone"]["vercelError"])["error"]["code"] == "not_found"
    assert parked["r_gone"]["record"]["integrationConfigurationId"] == "icfg_gone"


def test_a_rotated_token_is_read_again_after_a_401(local_stack: LocalStack, handlers: dict[str, ModuleType]) -> None:
    send(local_stack, record("rot_1", "creating"), group="rot_1")
    assert reported(sync_queue(local_stack, handlers)) == []  # the token is now cached

    local_stack.rotate_token()  # the old token is revoked at once
    send(local_stack, record("rot_1", "active"), group="rot_1")
    results = sync_queue(local_stack, handlers)

    assert reported(results) == []
    assert (held(local_stack, "rot_1") or {}).get("status") == "ready"
    counts = local_stack.emulator.call_count(INSTALLATION_ID, "rot_1")
    assert counts.by_status == {"200": 2, "401": 1}


def test_transient_vercel_failures_go_back_to_the_source_and_succeed_later(
    local_stack: LocalStack, handlers: dict[str, ModuleType]
) -> None:
    from vercel_emulator.state import FaultSettings

    local_stack.emulator.set_faults(FaultSettings(error_rate=1.0))  # the fixture clears it for the next test
    send(local_stack, record("flaky_1"), group="flaky_1")
    poller = QueuePoller(
        local_stack.aws["sqs"],
        local_stack.queue_url("PartnerEventsQueue"),
        handlers["queue_sync"].lambda_handler,
        retry_visibility_timeout=0,
    )
    first = poller.poll_once()
    assert first.records == 1
    assert len(first.reported) == 1  # reported back, left in the queue
    assert held(local_stack, "flaky_1") is None

    local_stack.emulator.set_faults(FaultSettings())
    results = list(Runner([poller]).run_until_idle(idle_seconds=0.3, timeout_seconds=30))

    assert reported(results) == []
    assert (held(local_stack, "flaky_1") or {}).get("status") == "ready"
    assert failed_records(local_stack) == []


def test_a_429_without_retry_after_is_waited_out_until_its_bodys_limit_reset(
    local_stack: LocalStack, handlers: dict[str, ModuleType]
) -> None:
    from vercel_emulator.state import FaultSettings

    # One import per 3 s at "Vercel", its 429s saying when in the body only; the backoff alone
    # (at most 0.2 s after a first failure) would call again inside the window.
    local_stack.emulator.set_rate_limit("1/3")
    local_stack.emulator.set_faults(FaultSettings(retry_after_in="body"))
    send(local_stack, record("limited_1"), group="limited_1")
    send(local_stack, record("limited_2"), group="limited_2")

    results = sync_queue(local_stack, handlers)

    assert reported(results) == []
    assert {held(local_stack, r)["status"] for r in ("limited_1", "limited_2")} == {"ready"}  # type: ignore[index]
    assert local_stack.emulator.calls()["byStatus"] == {"200": 2, "429": 1}


def test_no_secret_appears_in_logs_or_failed_records(
    local_stack: LocalStack,
    handlers: dict[str, ModuleType],
    captured_logs: LogCapture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    secret_arn = local_stack.resource_secret_name
    put_item(local_stack, record("db_primary", secretsArn=secret_arn))
    put_item(local_stack, record("db_bad", "exploding", secretsArn=secret_arn))
    sync_stream(local_stack, handlers)
    # Vercel now refuses every token: the secrets are read and sent, the call fails twice (401,
    # then after the re-read), and the record goes back to its queue.
    old_token = local_stack.token
    local_stack.rotate_token()
    local_stack.emulator.set_token(INSTALLATION_ID, "vrcl_someone_elses_token_123")
    send(local_stack, record("db_401", secretsArn=secret_arn), group="db_401")
    poller = QueuePoller(
        local_stack.aws["sqs"], local_stack.queue_url("PartnerEventsQueue"), handlers["queue_sync"].lambda_handler
    )
    result = poller.poll_once()

    assert len(result.reported) == 1
    parked = failed_records(local_stack)
    assert [m["resourceId"] for m in parked] == ["db_bad"]
    emitted = "\n".join(captured_logs.lines) + json.dumps(parked) + "".join(capfd.readouterr()) + result.describe()
    assert any("db_401" in line for line in captured_logs.lines)  # the handlers did log the failure
    for value in [*local_stack.secret_values, old_token]:
        assert value not in emitted
