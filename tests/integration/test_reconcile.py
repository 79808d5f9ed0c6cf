"""A reconcile run over moto server's partner table and the Vercel emulator when they disagree in each of
the four ways: first dry (a report, nothing changes), then ``--apply --remove-orphans`` (repairs through
the partner events queue, past change suppression), after which a second run finds everything in step."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pytest

from operations.__main__ import main
from tests.integration.conftest import INSTALLATION_ID, LocalStack
from tests.integration.support import (
    held,
    loopback_client,
    message_count,
    put,
    put_item,
    record,
    reported,
    resource_path,
    sync_queue,
    sync_stream,
)

pytestmark = pytest.mark.integration


def reconcile(stack: LocalStack, tmp_path: Path, *flags: str) -> int:
    return main(
        [
            "reconcile",
            "--table",
            stack.resources.tables["PartnerTable"].name,
            "--queue-url",
            stack.queue_url("PartnerEventsQueue"),
            "--checkpoint-dir",
            str(tmp_path),
            "--progress",
            "off",
            *flags,
        ]
    )


def row(output: str) -> list[str]:
    """The installation's counts: in step, missing, different, orphaned, repairs, removed, unreadable."""
    (line,) = [line for line in output.splitlines() if line.startswith(INSTALLATION_ID + " ")]
    return line.split()[1:]


def statuses(stack: LocalStack, *resource_ids: str) -> dict[str, tuple[str | None, str | None]]:
    return {rid: ((held(stack, rid) or {}).get("status"), (held(stack, rid) or {}).get("name")) for rid in resource_ids}


def test_a_dry_run_reports_each_kind_then_apply_repairs_and_a_second_run_is_in_step(
    local_stack: LocalStack,
    handlers: dict[str, ModuleType],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    put_item(local_stack, record("db_in_step", secretsArn=local_stack.resource_secret_name))
    put_item(local_stack, record("db_lost"))
    put_item(local_stack, record("db_changed"))
    assert reported(sync_stream(local_stack, handlers)) == []
    with loopback_client(local_stack.emulator.url, local_stack.token) as vercel:
        # Vercel lost one (the sync-state table still says it was sent), another was changed there,
        # and it holds one the partner never had (or removed with its history lost).
        assert vercel.delete(resource_path(INSTALLATION_ID, "db_lost")).status_code == 204
        changed = {"productId": "postgres", "name": "renamed-at-vercel", "status": "ready"}
        assert put(vercel, resource_path(INSTALLATION_ID, "db_changed"), changed).status_code == 200
        stray = {"productId": "postgres", "name": "stray", "status": "ready"}
        assert put(vercel, resource_path(INSTALLATION_ID, "db_orphan"), stray).status_code == 200
    before = statuses(local_stack, "db_in_step", "db_lost", "db_changed", "db_orphan")
    capsys.readouterr()

    assert reconcile(local_stack, tmp_path / "dry") == 0
    output = capsys.readouterr().out
    assert row(output) == ["1", "1", "1", "1", "0", "0", "0"]
    assert f"{INSTALLATION_ID}/db_changed: different (name)" in output
    assert f"{INSTALLATION_ID}/db_lost: missing" in output
    assert f"{INSTALLATION_ID}/db_orphan: orphaned" in output
    assert statuses(local_stack, "db_in_step", "db_lost", "db_changed", "db_orphan") == before
    assert message_count(local_stack, "PartnerEventsQueue") == 0

    assert reconcile(local_stack, tmp_path / "apply", "--apply", "--remove-orphans") == 0
    assert row(capsys.readouterr().out) == ["1", "1", "1", "1", "2", "1", "0"]
    # The repairs go through the queue path: the queue function imports them although the
    # sync-state table holds these very payloads (the repair marker passes suppression).
    assert reported(sync_queue(local_stack, handlers)) == []
    assert statuses(local_stack, "db_lost", "db_changed", "db_orphan") == {
        "db_lost": ("ready", "db_lost-name"),
        "db_changed": ("ready", "db_changed-name"),
        "db_orphan": ("uninstalled", "stray"),
    }

    assert reconcile(local_stack, tmp_path / "again") == 0
    output = capsys.readouterr().out
    assert row(output) == ["4", "0", "0", "0", "0", "0", "0"]
    assert "every installation compared" in output


def test_an_interrupted_run_resumes_with_the_installations_left(
    local_stack: LocalStack, handlers: dict[str, ModuleType], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    put_item(local_stack, record("db_1"))
    assert reported(sync_stream(local_stack, handlers)) == []
    store = tmp_path / "runs"
    # A run whose checkpoint has the installation finished already: resuming it compares nothing again.
    assert reconcile(local_stack, store, "--run-id", "rc-it") == 0
    lists_before = local_stack.emulator.call_count(INSTALLATION_ID, None, "GET").total
    capsys.readouterr()
    assert reconcile(local_stack, store, "--resume", "rc-it") == 0
    assert local_stack.emulator.call_count(INSTALLATION_ID, None, "GET").total == lists_before
    assert "1 installation(s) finished in an earlier session" in capsys.readouterr().out


def test_reconcile_function_repairs_on_its_schedule_as_its_parameters_say(
    local_stack: LocalStack, handlers: dict[str, ModuleType], monkeypatch: pytest.MonkeyPatch
) -> None:
    from tools.lambda_local import LambdaContext, load_handler
    from vercel_sync import wiring

    put_item(local_stack, record("db_lost"))
    assert reported(sync_stream(local_stack, handlers)) == []
    with loopback_client(local_stack.emulator.url, local_stack.token) as vercel:
        assert vercel.delete(resource_path(INSTALLATION_ID, "db_lost")).status_code == 204
    monkeypatch.setenv("PARTNER_TABLE_NAME", local_stack.resources.tables["PartnerTable"].name)
    monkeypatch.setenv("PARTNER_EVENTS_QUEUE_ARN", local_stack.resources.queues["PartnerEventsQueue"].arn)
    monkeypatch.setenv("PARTNER_EVENTS_QUEUE_URL", local_stack.queue_url("PartnerEventsQueue"))
    monkeypatch.setenv("RECONCILE_APPLY", "true")
    wiring.reconcile_parts.set(None)
    try:
        summary = load_handler("reconcile").lambda_handler({}, LambdaContext(remaining_ms=900_000))
    finally:
        wiring.reconcile_parts.set(None)

    assert (summary["missing"], summary["failed"], summary["apply"]) == (1, 0, True)
    assert reported(sync_queue(local_stack, handlers)) == []
    assert statuses(local_stack, "db_lost") == {"db_lost": ("ready", "db_lost-name")}
