"""Replaying the failed-records queue and the stream's on-failure positions, against moto server
and the Vercel emulator: records parked by the real queue function, then re-driven once their
cause is fixed."""

from __future__ import annotations

import json
import re
import secrets
from types import ModuleType

import pytest

from local_aws.provision import store_installation_token
from local_runner import Runner, StreamPoller, send_to_queue
from operations.__main__ import main
from tests.integration.conftest import INSTALLATION_ID, LocalStack
from tests.integration.support import (
    add_installation,
    partner_item,
    put_items,
    queue_bodies,
    send,
    sync_queue,
)
from vercel_emulator.state import FaultSettings

pytestmark = pytest.mark.integration

TOKENLESS = "icfg_tokenless"  # no token stored: token_unavailable
UNKNOWN = "icfg_unknown"  # a token Vercel gives another installation: 404, installation_unavailable


def park_failures(stack: LocalStack, handlers: dict[str, ModuleType]) -> None:
    """Partner events the queue function parks: 3 without a token, 2 Vercel refuses, 1 invalid, 2 fine."""
    shared = "vrcl_it_" + secrets.token_urlsafe(16)
    add_installation(stack, "icfg_shadow", shared)
    store_installation_token(stack.aws["secretsmanager"], stack.resources, UNKNOWN, shared)
    records = [partner_item(n, TOKENLESS) for n in range(3)]
    records += [partner_item(10 + n, UNKNOWN) for n in range(2)]
    records += [partner_item(20, INSTALLATION_ID, status="exploding")]
    records += [partner_item(30 + n, INSTALLATION_ID) for n in range(2)]
    for index, record in enumerate(records):
        send(stack, record, group=f"g{index}")
    sync_queue(stack, handlers)


def replay(*args: str) -> int:
    return main(["replay", "--wait-seconds", "0", *args])


def waiting(stack: LocalStack) -> list[dict[str, object]]:
    """The failed-records queue's messages, left in place."""
    return queue_bodies(stack, "FailedRecordsQueue", delete=False)


def test_replay_groups_reasons_and_a_dry_run_deletes_nothing(
    local_stack: LocalStack, handlers: dict[str, ModuleType], capsys: pytest.CaptureFixture[str]
) -> None:
    park_failures(local_stack, handlers)
    capsys.readouterr()

    assert replay("--list") == 0
    out = capsys.readouterr().out
    assert "6 message(s) in the failed-records queue" in out
    reasons = (
        "by reason:\n        3  token_unavailable\n        2  installation_unavailable\n        1  invalid_record\n"
    )
    assert reasons in out
    assert f"        3  {TOKENLESS}\n" in out
    assert f"        2  {UNKNOWN}\n" in out
    assert f"        1  {INSTALLATION_ID}\n" in out
    assert "chosen (all): 6" in out
    assert f"{UNKNOWN}/res_00010  Vercel refused the installation (404)" in out
    assert "dry run: nothing re-driven or deleted" in out
    assert len(waiting(local_stack)) == 6  # all there, and visible again at once

    assert replay("--reason", "installation_unavailable", "--installation", UNKNOWN) == 0
    assert "chosen (reason installation_unavailable; installation icfg_unknown): 2" in capsys.readouterr().out
    assert local_stack.token not in out


def test_a_replay_that_partly_fails_again_keeps_those_and_a_replay_after_the_fix_empties_the_queue(
    local_stack: LocalStack, handlers: dict[str, ModuleType], capsys: pytest.CaptureFixture[str]
) -> None:
    park_failures(local_stack, handlers)
    # The invalid record is the partner's to fix at the source; discard its message.
    assert replay("--reason", "invalid_record", "--apply", "--discard") == 0
    before = {(m["resourceId"], m["failedAt"]) for m in waiting(local_stack)}
    assert len(before) == 5
    capsys.readouterr()

    # One cause fixed: the tokenless installation's token is stored. Replay everything.
    add_installation(local_stack, TOKENLESS, "vrcl_it_" + secrets.token_urlsafe(16))
    assert replay("--apply") == 1
    out = capsys.readouterr().out
    assert out.count("done: imported") == 3
    assert out.count(": failed again: installation_unavailable: ") == 2
    assert "replayed 3 and deleted their messages; 2 still failing, kept in the queue" in out
    left = waiting(local_stack)
    # The two still failing stay as they were: the same messages, not parked a second time.
    assert {(m["resourceId"], m["failedAt"]) for m in left} == {
        (r, t) for r, t in before if r in {"res_00010", "res_00011"}
    }
    for n in range(3):
        held = local_stack.emulator.held_resource(TOKENLESS, f"res_{n:05}")
        assert held is not None
        assert held["status"] == "ready"

    # The other cause fixed (Vercel knows the installation, with its own token): the queue empties.
    token = "vrcl_it_" + secrets.token_urlsafe(16)
    add_installation(local_stack, UNKNOWN, token)
    assert replay("--apply", "--installation", UNKNOWN) == 0
    assert "replayed 2 and deleted their messages; 0 still failing" in capsys.readouterr().out
    assert waiting(local_stack) == []
    assert replay() == 0
    assert "0 message(s) in the failed-records queue" in capsys.readouterr().out
    assert local_stack.emulator.held_resource(UNKNOWN, "res_00011") is not None


def test_stream_failure_positions_are_read_back_and_synced(
    local_stack: LocalStack, handlers: dict[str, ModuleType], capsys: pytest.CaptureFixture[str]
) -> None:
    local_stack.emulator.set_faults(FaultSettings(error_rate=1.0))  # Vercel down: every call a 5xx
    put_items(local_stack, [partner_item(n, INSTALLATION_ID) for n in range(4)])
    poller = StreamPoller(
        local_stack.aws["dynamodbstreams"],
        local_stack.resources.tables["PartnerTable"].stream_arn,
        handlers["stream_sync"].lambda_handler,
        max_retry_attempts=0,
        bisect_batch_on_function_error=False,
        on_failure=send_to_queue(local_stack.aws["sqs"], local_stack.queue_url("StreamFailureQueue")),
    )
    Runner([poller]).run_until_idle(idle_seconds=0.3, timeout_seconds=30)
    positions = queue_bodies(local_stack, "StreamFailureQueue", delete=False)
    assert len(positions) == 1
    assert "DDBStreamBatchInfo" in positions[0]
    assert local_stack.emulator.held_resource(INSTALLATION_ID, "res_00000") is None

    # A position the stream does not hold (moto cannot trim; one past its end reads as nothing).
    gone = json.loads(json.dumps(positions[0]))
    gone["DDBStreamBatchInfo"].update(startSequenceNumber="9" * 22, endSequenceNumber="9" * 22)
    local_stack.aws["sqs"].send_message(
        QueueUrl=local_stack.queue_url("StreamFailureQueue"), MessageBody=json.dumps(gone)
    )
    capsys.readouterr()

    assert (
        main(
            [
                "replay-stream-failures",
                "--wait-seconds",
                "0",
                "--queue-url",
                local_stack.queue_url("StreamFailureQueue"),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "2 message(s) in the stream-failure queue" in out
    assert ": in stream (4 records readable)" in out
    assert ": gone: " in out
    assert "backfill table" in out

    local_stack.emulator.set_faults(FaultSettings())  # Vercel is back
    assert (
        main(
            [
                "replay-stream-failures",
                "--wait-seconds",
                "0",
                "--queue-url",
                local_stack.queue_url("StreamFailureQueue"),
                "--apply",
            ]
        )
        == 1
    )
    out = capsys.readouterr().out
    assert ": done (4 of 4 synced)" in out
    assert "1 message(s) done and deleted; 1 kept in the queue" in out
    for n in range(4):
        assert local_stack.emulator.held_resource(INSTALLATION_ID, f"res_{n:05}") is not None
    # After a backfill has covered it, the unreadable position is discarded.
    assert (
        main(
            [
                "replay-stream-failures",
                "--wait-seconds",
                "0",
                "--queue-url",
                local_stack.queue_url("StreamFailureQueue"),
                "--apply",
                "--discard-gone",
            ]
        )
        == 0
    )
    assert queue_bodies(local_stack, "StreamFailureQueue") == []


def test_a_stream_replay_counts_each_record_by_what_the_sync_did_with_it(
    local_stack: LocalStack, handlers: dict[str, ModuleType], capsys: pytest.CaptureFixture[str]
) -> None:
    # One record of five belongs to an installation Vercel refuses (404): the replay parks it.
    shared = "vrcl_it_" + secrets.token_urlsafe(16)
    add_installation(local_stack, "icfg_shadow", shared)
    store_installation_token(local_stack.aws["secretsmanager"], local_stack.resources, UNKNOWN, shared)
    local_stack.emulator.set_faults(FaultSettings(error_rate=1.0))  # Vercel down: the batch fails whole
    put_items(local_stack, [partner_item(n, INSTALLATION_ID) for n in range(4)] + [partner_item(10, UNKNOWN)])
    poller = StreamPoller(
        local_stack.aws["dynamodbstreams"],
        local_stack.resources.tables["PartnerTable"].stream_arn,
        handlers["stream_sync"].lambda_handler,
        max_retry_attempts=0,
        bisect_batch_on_function_error=False,
        on_failure=send_to_queue(local_stack.aws["sqs"], local_stack.queue_url("StreamFailureQueue")),
    )
    Runner([poller]).run_until_idle(idle_seconds=0.3, timeout_seconds=30)
    assert len(queue_bodies(local_stack, "StreamFailureQueue", delete=False)) == 1
    local_stack.emulator.set_faults(FaultSettings())  # Vercel is back
    capsys.readouterr()

    queue_url = local_stack.queue_url("StreamFailureQueue")
    assert main(["replay-stream-failures", "--wait-seconds", "0", "--queue-url", queue_url, "--apply"]) == 0

    out = capsys.readouterr().out
    assert ": done (4 of 5 synced): 4 imported, 1 parked in the failed-records queue\n" in out, out
    assert "records: 4 imported, 1 parked in the failed-records queue\n" in out
    (parked,) = waiting(local_stack)
    assert parked["resourceId"] == "res_00010"


def test_a_replay_draws_the_backfills_progress_bar(
    local_stack: LocalStack, handlers: dict[str, ModuleType], capsys: pytest.CaptureFixture[str]
) -> None:
    tokenless = "icfg_tokenless_progress"  # its own: an earlier test may have stored TOKENLESS's token
    for n in range(3):
        send(local_stack, partner_item(n, tokenless), group=f"g{n}")
    sync_queue(local_stack, handlers)
    add_installation(local_stack, tokenless, "vrcl_it_" + secrets.token_urlsafe(16))
    capsys.readouterr()

    assert replay("--apply", "--installation", tokenless, "--progress", "bar") == 0

    captured = capsys.readouterr()
    assert re.search(r"\r\x1b\[K\[-+\]\s+0% 0/3 re-driven, 0 done, 0 still failing", captured.err), captured.err
    assert re.search(r"\r\x1b\[K\[#+\] 100% 3/3 re-driven, 3 done, 0 still failing, [\d.]+/s", captured.err)
    assert captured.err.endswith("\r\x1b[K")  # erased at the end: the report says the same, once
    assert captured.out.count("done: imported") == 3
