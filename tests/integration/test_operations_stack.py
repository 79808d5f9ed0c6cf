"""``--stack-name``: the operations tools read what they need from a deployed stack's outputs and its
functions' configuration (CloudFormation and Lambda of moto server, with template.yaml's outputs)."""

from __future__ import annotations

import os
import secrets
from types import ModuleType

import pytest

from operations.__main__ import main
from operations.stack import OUTPUT_VARIABLES
from tests.integration.conftest import INSTALLATION_ID, LocalStack
from tests.integration.support import (
    add_installation,
    cloudformation_stack,
    partner_item,
    put_items,
    queue_bodies,
    send,
    sync_queue,
)

pytestmark = pytest.mark.integration

TOKENLESS = "icfg_stack_tokenless"


def test_the_tools_find_the_queues_the_tables_and_the_functions_settings_from_the_stack(
    local_stack: LocalStack,
    handlers: dict[str, ModuleType],
    aws_endpoint: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # A record parked for want of its installation's token, while the functions' environment is set.
    send(local_stack, partner_item(1, TOKENLESS), group="g1")
    sync_queue(local_stack, handlers)
    assert [m["reason"] for m in queue_bodies(local_stack, "FailedRecordsQueue", delete=False)] == ["token_unavailable"]
    put_items(local_stack, [partner_item(n, INSTALLATION_ID) for n in range(3)])
    name = cloudformation_stack(local_stack, aws_endpoint, vercel_api_url=local_stack.emulator.url)
    for variable in [*local_stack.resources.function_environment(), *OUTPUT_VARIABLES.values(), "AWS_REGION"]:
        monkeypatch.delenv(variable, raising=False)
    add_installation(local_stack, TOKENLESS, "vrcl_it_" + secrets.token_urlsafe(16))
    capsys.readouterr()

    # The backfill's table and queue: the stack's outputs.
    assert main(["backfill", "--stack-name", name, "--region", "us-east-1", "--dry-run", "--progress", "off"]) == 0
    output = capsys.readouterr()
    table = local_stack.resources.tables["PartnerTable"].name
    assert f"table {table}, 4 segments -> {local_stack.queue_url('PartnerEventsQueue')}" in output.err
    assert "would send 3" in output.out
    assert f"stack {name} (us-east-1): " in output.err
    assert "PARTNER_TABLE_NAME" in output.err
    assert "VERCEL_TOKEN_SECRET_ID" in output.err

    # The replay's queue and the sync settings (Vercel's URL, the token secret, the state table): the
    # outputs and the functions' configuration.
    assert main(["replay", "--stack-name", name, "--wait-seconds", "0", "--apply", "--progress", "off"]) == 0
    out = capsys.readouterr().out
    assert f"  {TOKENLESS}/res_00001 (token_unavailable): done: imported" in out, out
    assert queue_bodies(local_stack, "FailedRecordsQueue", delete=False) == []
    assert local_stack.emulator.held_resource(TOKENLESS, "res_00001") is not None

    assert main(["replay-stream-failures", "--stack-name", name, "--wait-seconds", "0"]) == 0
    assert "0 message(s) in the stream-failure queue" in capsys.readouterr().out
    # Only for the command's run: the process's environment is as it was.
    assert "VERCEL_TOKEN_SECRET_ID" not in os.environ
    assert "FAILED_RECORDS_QUEUE_URL" not in os.environ


def test_what_the_operator_sets_wins_over_the_stack(
    local_stack: LocalStack, aws_endpoint: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    name = cloudformation_stack(local_stack, aws_endpoint, vercel_api_url=local_stack.emulator.url)
    monkeypatch.delenv("FAILED_RECORDS_QUEUE_URL", raising=False)
    # A variable: the stream-failure queue given as the failed-records queue is the one read.
    send(local_stack, '{"not": "a failed record"}', queue="StreamFailureQueue", group="g")
    monkeypatch.setenv("FAILED_RECORDS_QUEUE_URL", local_stack.queue_url("StreamFailureQueue"))
    assert main(["replay", "--stack-name", name, "--wait-seconds", "0"]) == 0
    output = capsys.readouterr()
    assert "1 message(s) in the failed-records queue" in output.out
    assert "yours kept: " in output.err
    assert "FAILED_RECORDS_QUEUE_URL" in output.err.split("yours kept: ")[1]
    # A flag wins over both.
    assert (
        main(
            [
                "replay",
                "--stack-name",
                name,
                "--wait-seconds",
                "0",
                "--queue-url",
                local_stack.queue_url("FailedRecordsQueue"),
            ]
        )
        == 0
    )
    assert "0 message(s) in the failed-records queue" in capsys.readouterr().out


def test_a_stack_that_does_not_exist_is_said_and_nothing_runs(
    local_stack: LocalStack, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["replay", "--stack-name", "no-such-stack", "--wait-seconds", "0"]) == 2
    assert "stack no-such-stack: ValidationError: Stack with id no-such-stack does not exist" in capsys.readouterr().err
