"""The backfill against moto server (the partner table, the partner events queue, the sync-state
table) and, end to end, the queue function importing into the Vercel emulator."""

from __future__ import annotations

import re
import threading
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from operations.__main__ import main
from operations.checkpoints import FileCheckpoints
from tests.integration.conftest import INSTALLATION_ID, LocalStack
from tests.integration.support import (
    message_count,
    partner_item,
    put_items,
    puts_per_resource,
    queue_bodies,
    queue_consumer,
)
from tools.lambda_local import LambdaContext, load_handler
from vercel_sync import wiring
from vercel_sync.adapters.checkpoint_table import StateTableCheckpoints
from vercel_sync.adapters.partner_table import DynamoDBScanner
from vercel_sync.adapters.queue_sender import SqsSender
from vercel_sync.backfill.checkpoints import BackfillError, BackfillPlan, SegmentState, start_or_resume
from vercel_sync.backfill.engine import Backfill, OutboundMessage

pytestmark = pytest.mark.integration


def plan_for(stack: LocalStack, segments: int = 3, **filters: Any) -> BackfillPlan:
    return BackfillPlan(
        stack.resources.tables["PartnerTable"].name, stack.queue_url("PartnerEventsQueue"), segments, **filters
    )


class StoppingSender(SqsSender):
    """The real sender, setting ``stop`` after ``after`` batches: a Ctrl-C in the middle of a run."""

    def __init__(self, queue_url: str, stop: threading.Event, after: int) -> None:
        super().__init__(queue_url)
        self.stop, self.after, self.batches = stop, after, 0

    def send_batch(self, messages: Sequence[OutboundMessage]) -> None:
        super().send_batch(messages)
        self.batches += 1
        if self.batches == self.after:
            self.stop.set()


def test_interrupted_backfill_resumes_and_vercel_gets_each_resource_once(
    local_stack: LocalStack, handlers: dict[str, ModuleType]
) -> None:
    put_items(local_stack, [partner_item(n, INSTALLATION_ID) for n in range(120)])
    local_stack.emulator.set_rate_limit("10000/60")  # this test is about the backfill, not Vercel's limit
    store = StateTableCheckpoints(
        local_stack.resources.tables["SyncStateTable"].name, client=local_stack.aws["dynamodb"]
    )
    scanner = DynamoDBScanner(local_stack.resources.tables["PartnerTable"].name, client=local_stack.aws["dynamodb"])
    plan = plan_for(local_stack)

    stop = threading.Event()
    state, how = start_or_resume(store, "it-resume", plan)
    assert how == "new"
    sender = StoppingSender(plan.queue_url, stop, after=4)
    first = Backfill(state, source=scanner, sink=sender, checkpoints=store, page_size=25, stop=stop).run()
    assert first.interrupted
    assert 10 <= first.counts.sent < 120

    state, how = start_or_resume(store, "it-resume", plan)
    assert how == "resumed"
    assert state.totals().sent == first.counts.sent  # the checkpoint holds what was sent
    second = Backfill(state, source=scanner, sink=SqsSender(plan.queue_url), checkpoints=store, page_size=25).run()
    assert second.complete
    assert second.counts.sent == 120

    with queue_consumer(local_stack, handlers):
        deadline = time.monotonic() + 30
        while message_count(local_stack, "PartnerEventsQueue") and time.monotonic() < deadline:
            time.sleep(0.1)
    # Each resource imported once, with no call refused or repeated.
    assert puts_per_resource(local_stack, accepted=False) == {(INSTALLATION_ID, f"res_{n:05}"): 1 for n in range(120)}
    held = local_stack.emulator.held_resource(INSTALLATION_ID, "res_00007")
    assert held is not None
    assert held["status"] == "ready"

    item = local_stack.aws["dynamodb"].get_item(
        TableName=store.table_name, Key={"pk": {"S": "backfill#it-resume"}}, ConsistentRead=True
    )["Item"]
    assert item["kind"] == {"S": "backfill"}
    assert int(item["expiresAt"]["N"]) > time.time() + 13 * 24 * 3600
    assert all(segment["M"]["done"]["BOOL"] for segment in item["segments"]["M"].values())


class CrashingCheckpoints(FileCheckpoints):
    """Fails the nth save: the process killed after a batch was sent, before its checkpoint."""

    def __init__(self, directory: Path, crash_on: int) -> None:
        super().__init__(directory)
        self.saves, self.crash_on = 0, crash_on

    def save(self, run_id: str, segment: SegmentState) -> None:
        self.saves += 1
        if self.saves == self.crash_on:
            raise RuntimeError("killed")
        super().save(run_id, segment)


def test_a_resend_after_a_kill_is_dropped_by_the_fifo_queue(local_stack: LocalStack, tmp_path: Path) -> None:
    put_items(local_stack, [partner_item(n, INSTALLATION_ID) for n in range(45)])
    scanner = DynamoDBScanner(local_stack.resources.tables["PartnerTable"].name, client=local_stack.aws["dynamodb"])
    plan = plan_for(local_stack, segments=1)
    sender = SqsSender(plan.queue_url, client=local_stack.aws["sqs"])

    crashing = CrashingCheckpoints(tmp_path, crash_on=2)
    state, _ = start_or_resume(crashing, "it-kill", plan)
    first = Backfill(state, source=scanner, sink=sender, checkpoints=crashing, page_size=100).run()
    assert first.errors == ["segment 0: RuntimeError"]

    store = FileCheckpoints(tmp_path)
    state, _ = start_or_resume(store, "it-kill", None)
    assert state.totals().sent == 10  # the second batch was sent, its checkpoint lost
    assert Backfill(state, source=scanner, sink=sender, checkpoints=store, page_size=100).run().complete

    bodies = queue_bodies(local_stack, "PartnerEventsQueue")
    assert Counter(b["resourceId"] for b in bodies) == Counter({f"res_{n:05}": 1 for n in range(45)})


def run_cli(*args: str) -> int:
    return main(["backfill", "--rate", "off", "--progress", "lines", *args])


def test_cli_dry_run_prints_what_would_be_sent_and_sends_nothing(
    local_stack: LocalStack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    put_items(local_stack, [partner_item(n, INSTALLATION_ID) for n in range(12)])
    plan = plan_for(local_stack)
    code = run_cli(
        "--table", plan.table_name, "--queue-url", plan.queue_url, "--dry-run", "--checkpoint-dir", str(tmp_path / "ck")
    )
    output = capsys.readouterr()
    assert code == 0
    assert sum(line.startswith("would send ") for line in output.out.splitlines()) == 12
    assert f"would send {INSTALLATION_ID}/res_00003  product=postgres status=active" in output.out
    assert "dry run" in output.out
    assert "nothing sent" in output.out
    assert "progress: 12/~12 scanned, 12 sent" in output.err
    assert message_count(local_stack, "PartnerEventsQueue") == 0
    assert not (tmp_path / "ck").exists()  # no checkpoint either


def test_cli_filters_one_installation_and_one_product(
    local_stack: LocalStack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    items = [
        partner_item(n, f"icfg_f{n % 3}", product="redis" if n % 2 else "postgres", metadata={"n": n})
        for n in range(60)
    ]
    put_items(local_stack, items)
    plan = plan_for(local_stack)
    code = run_cli(
        "--table", plan.table_name, "--queue-url", plan.queue_url, "--installation", "icfg_f1", "--product", "redis",
        "--run-id", "filtered", "--checkpoint-dir", str(tmp_path),
    )  # fmt: skip
    output = capsys.readouterr()
    assert code == 0
    expected = {
        i["resourceId"] for i in items if i["integrationConfigurationId"] == "icfg_f1" and i["productId"] == "redis"
    }
    bodies = queue_bodies(local_stack, "PartnerEventsQueue")
    assert {b["resourceId"] for b in bodies} == expected
    assert len(bodies) == len(expected) == 10
    assert bodies[0]["metadata"] == {"n": int(bodies[0]["resourceId"][4:])}  # the record as it is in the table
    assert "60/~60 scanned, 10 sent, 50 filtered out" in output.out
    assert "backfill filtered complete" in output.out
    # The same command again finds the run complete and sends nothing more.
    assert run_cli(
        "--table", plan.table_name, "--queue-url", plan.queue_url, "--installation", "icfg_f1", "--product", "redis",
        "--run-id", "filtered", "--checkpoint-dir", str(tmp_path),
    ) == 0  # fmt: skip
    assert message_count(local_stack, "PartnerEventsQueue") == 0
    # Resuming it with another plan is refused.
    assert run_cli("--resume", "filtered", "--segments", "8", "--checkpoint-dir", str(tmp_path)) == 2
    assert "--resume takes the plan from its checkpoint" in capsys.readouterr().err


@pytest.mark.parametrize("template_parameters", [{"CreatedPartnerQueueType": "standard"}])
def test_cli_to_a_standard_queue(local_stack: LocalStack, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    put_items(local_stack, [partner_item(n, INSTALLATION_ID) for n in range(15)])
    plan = plan_for(local_stack)
    assert not plan.fifo
    assert run_cli("--table", plan.table_name, "--queue-url", plan.queue_url, "--checkpoint-dir", str(tmp_path)) == 0
    assert len(queue_bodies(local_stack, "PartnerEventsQueue")) == 15


def test_the_state_table_lease_lets_one_worker_at_a_time_move_a_run(local_stack: LocalStack) -> None:
    table = local_stack.resources.tables["SyncStateTable"].name
    a = StateTableCheckpoints(table, client=local_stack.aws["dynamodb"])
    b = StateTableCheckpoints(table, client=local_stack.aws["dynamodb"])
    state, _ = start_or_resume(a, "leased", plan_for(local_stack))
    with pytest.raises(BackfillError, match="exists already"):
        a.create(state)
    assert a.claim("leased", "A", seconds=60)
    assert not b.claim("leased", "B", seconds=60)
    a.save("leased", SegmentState(0, start_key={"id": {"S": "x"}}, sent=10, scanned=10))
    assert a.hand_over("leased", "A", "B", seconds=60)
    with pytest.raises(BackfillError, match="held by another worker"):
        a.claim("leased", "A", seconds=60) or a.save("leased", SegmentState(0))
    assert b.claim("leased", "B", seconds=60)
    b.save("leased", SegmentState(1, sent=5, scanned=6))
    b.release("leased", "B")
    loaded = a.load("leased")
    assert loaded is not None
    assert loaded.segments[0].start_key == {"id": {"S": "x"}}
    assert loaded.totals().sent == 15
    assert loaded.totals().scanned == 16


def test_backfill_function_runs_a_whole_run_and_a_repeat_finds_it_done(
    local_stack: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    put_items(local_stack, [partner_item(n, INSTALLATION_ID) for n in range(30)])
    monkeypatch.setenv("PARTNER_TABLE_NAME", local_stack.resources.tables["PartnerTable"].name)
    monkeypatch.setenv("PARTNER_EVENTS_QUEUE_ARN", local_stack.resources.queues["PartnerEventsQueue"].arn)
    wiring.backfill_runner.set(None)  # built from this test's environment
    handler = load_handler("backfill")
    context = LambdaContext(function_name="backfill", remaining_ms=900_000)

    answer = handler.lambda_handler({"runId": "fn-run", "segments": 2}, context)
    assert answer["complete"]
    assert answer["sent"] == 30
    again = handler.lambda_handler({"runId": "fn-run"}, context)  # the runId alone resumes with the run's plan
    assert again["complete"]
    assert again["sent"] == 30  # the run's totals; nothing sent again
    assert len(queue_bodies(local_stack, "PartnerEventsQueue")) == 30
    dry = handler.lambda_handler({"runId": "fn-dry", "dryRun": True, "installation": "nobody"}, context)
    assert dry["dryRun"]
    assert dry["sent"] == 0
    assert dry["filtered"] == 30


def test_cli_dry_run_checks_each_item_as_the_sync_would_and_leaves_one_summary(
    local_stack: LocalStack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    items = [partner_item(n, INSTALLATION_ID) for n in range(4)]
    items.append(partner_item(9, INSTALLATION_ID, status="exploding"))  # no such status word
    put_items(local_stack, items)
    plan = plan_for(local_stack)

    code = main(
        ["backfill", "--rate", "off", "--progress", "bar", "--dry-run", "--table", plan.table_name,
         "--queue-url", plan.queue_url, "--checkpoint-dir", str(tmp_path / "ck")]
    )  # fmt: skip

    output = capsys.readouterr()
    assert code == 0
    assert sum(line.startswith("would send ") for line in output.out.splitlines()) == 4
    assert f"invalid {INSTALLATION_ID}/res_00009: invalid partner record: status: " in output.out
    assert "unknown partner status 'exploding'" in output.out
    last = output.out.splitlines()[-1]
    assert last.endswith(
        ": 5/~5 scanned: would send 4, invalid 1 (would be sent and parked as invalid_record); nothing sent"
    ), last
    assert "1  invalid: invalid partner record: status: " in output.out
    # The bar is erased when the run ends: its last state is not left above the report that repeats it.
    assert not re.search(r"\] 100% [^\r\n]*\n", output.err), output.err
    assert message_count(local_stack, "PartnerEventsQueue") == 0
