"""The backfill engine (vercel_sync.backfill) with in-memory fakes: batching, checkpoints, resume,
filters, dry run, pacing, progress, and BackfillFunction's hand-over between invocations."""

from __future__ import annotations

import hashlib
import io
import json
import threading
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

import pytest

from operations.progress import ProgressDisplay, bar_line, duration, summary
from vercel_sync.backfill.checkpoints import (
    BackfillError,
    BackfillPlan,
    Counts,
    Key,
    RunState,
    SegmentState,
    start_or_resume,
)
from vercel_sync.backfill.engine import (
    MAX_BATCH_ENTRIES,
    Backfill,
    OutboundMessage,
    Page,
    ProgressSnapshot,
    ScannedItem,
    classify,
    message_group_id,
    record_body,
)
from vercel_sync.backfill.function import BackfillRequest, BackfillRunner
from vercel_sync.backfill.settings import BackfillSettings, parse_rate
from vercel_sync.ratelimit.limiter import InstallationPacer
from vercel_sync.settings import RateLimit


def item(n: int, installation: str = "icfg_a", product: str = "postgres", **extra: Any) -> dict[str, Any]:
    return {
        "integrationConfigurationId": installation,
        "resourceId": f"res_{n:04}",
        "productId": product,
        "name": f"name-{n}",
        "status": "active",
        **extra,
    }


@dataclass
class FakeTable:
    """Items split into segments by a hash of the key, scanned in key order, ``limit`` a page."""

    items: list[dict[str, Any]]
    pages_read: int = 0
    on_page: Any = None

    def _key(self, record: Mapping[str, Any]) -> Key:
        return {"id": {"S": f"{record.get('integrationConfigurationId')}|{record.get('resourceId')}"}}

    def approximate_item_count(self) -> int | None:
        return len(self.items)

    def scan_page(self, segment: int, total_segments: int, start_key: Key | None, limit: int) -> Page:
        self.pages_read += 1
        if self.on_page is not None:
            self.on_page()
        mine = sorted(
            (
                r
                for r in self.items
                if int(hashlib.sha256(self._key(r)["id"]["S"].encode()).hexdigest(), 16) % total_segments == segment
            ),
            key=lambda r: self._key(r)["id"]["S"],
        )
        if start_key is not None:
            mine = [r for r in mine if self._key(r)["id"]["S"] > start_key["id"]["S"]]
        page = mine[:limit]
        last = self._key(page[-1]) if len(mine) > limit else None
        return Page([ScannedItem(self._key(r), r) for r in page], last)


@dataclass
class FakeQueue:
    batches: list[list[OutboundMessage]] = field(default_factory=list)
    fail_after_batches: int | None = None
    on_batch: Any = None

    def send_batch(self, messages: Sequence[OutboundMessage]) -> None:
        if self.fail_after_batches is not None and len(self.batches) >= self.fail_after_batches:
            raise BackfillError("SQS did not take 10 message(s) after 5 tries (InternalError)")
        assert 1 <= len(messages) <= MAX_BATCH_ENTRIES
        self.batches.append(list(messages))
        if self.on_batch is not None:
            self.on_batch(self)

    @property
    def sent(self) -> list[str]:
        return [m.resource_id for batch in self.batches for m in batch]


@dataclass
class MemoryStore:
    runs: dict[str, dict[str, Any]] = field(default_factory=dict)
    saves: int = 0
    crash_on_save: int | None = None  # the nth save raises (a process killed after sending)
    leases: dict[str, tuple[str, float]] = field(default_factory=dict)

    def load(self, run_id: str) -> RunState | None:
        data = self.runs.get(run_id)
        return RunState.from_dict(json.loads(json.dumps(data))) if data else None

    def create(self, state: RunState) -> None:
        if state.run_id in self.runs:
            raise BackfillError("exists")
        self.runs[state.run_id] = state.to_dict()

    def save(self, run_id: str, segment: SegmentState) -> None:
        self.saves += 1
        if self.crash_on_save == self.saves:
            raise RuntimeError("killed")
        self.runs[run_id]["segments"][segment.segment] = segment.to_dict()

    def claim(self, run_id: str, owner: str, *, seconds: float) -> bool:
        holder = self.leases.get(run_id)
        if holder and holder[0] != owner and holder[1] > time.time():
            return False
        self.leases[run_id] = (owner, time.time() + seconds)
        return True

    def hand_over(self, run_id: str, owner: str, next_owner: str, *, seconds: float) -> bool:
        if self.leases.get(run_id, ("",))[0] != owner:
            return False
        self.leases[run_id] = (next_owner, time.time() + seconds)
        return True

    def release(self, run_id: str, owner: str) -> None:
        if self.leases.get(run_id, ("",))[0] == owner:
            del self.leases[run_id]


def plan(segments: int = 3, **filters: Any) -> BackfillPlan:
    return BackfillPlan("partner", "https://sqs.example/123/events.fifo", segments, **filters)


def run(
    table: FakeTable,
    queue: FakeQueue,
    store: MemoryStore,
    run_id: str = "r1",
    the_plan: BackfillPlan | None = None,
    **kw: Any,
) -> Any:
    state, _ = start_or_resume(store, run_id, the_plan or (plan() if run_id not in store.runs else None))
    return Backfill(state, source=table, sink=queue, checkpoints=store, page_size=kw.pop("page_size", 7), **kw).run()


# ---------------------------------------------------------------- messages


def test_group_id_is_the_resource_and_hashed_only_when_sqs_would_refuse_it() -> None:
    assert message_group_id("icfg_a", "db/primary#1") == "icfg_a/db/primary#1"
    spaced = message_group_id("icfg_a", "eu west")
    long = message_group_id("icfg_a", "x" * 200)
    assert spaced.startswith("sha256-")
    assert len(spaced) <= 128
    assert long.startswith("sha256-")
    assert len(long) <= 128
    assert message_group_id("icfg_a", "eu west") == spaced  # the same resource, the same group


def test_body_holds_only_the_record_fields_as_canonical_json() -> None:
    body = record_body(item(1, version=Decimal(7), metadata={"gb": Decimal("1.5"), "tags": {"b", "a"}}, other="x"))
    assert json.loads(body) == {**item(1), "version": 7, "metadata": {"gb": 1.5, "tags": ["a", "b"]}}
    assert body == json.dumps(json.loads(body), sort_keys=True, separators=(",", ":"))


def test_classify() -> None:
    verdict, message = classify(item(1), plan())
    assert verdict == "send"
    assert message is not None
    assert message.group_id == "icfg_a/res_0001"
    assert message.deduplication_id == hashlib.sha256(message.body.encode()).hexdigest()
    assert classify({"pk": "config#1"}, plan())[0] == "not_a_resource"
    assert classify(item(1), plan(installation_id="icfg_b"))[0] == "filtered"
    assert classify(item(1), plan(product_id="redis"))[0] == "filtered"
    assert classify(item(1, metadata={"blob": "x" * 300_000}), plan())[0] == "not_sendable"


# ---------------------------------------------------------------- runs


def test_a_run_sends_every_item_once_in_batches_and_checkpoints_each() -> None:
    table = FakeTable([item(n) for n in range(95)] + [{"integrationConfigurationId": 3, "resourceId": "x"}])
    queue, store = FakeQueue(), MemoryStore()
    result = run(table, queue, store)
    assert result.complete
    assert not result.errors
    assert sorted(queue.sent) == sorted(f"res_{n:04}" for n in range(95))
    assert result.counts == Counts(scanned=96, sent=95, filtered=0, skipped=1)
    assert store.saves >= len(queue.batches)  # a checkpoint after every batch (and at each page end)
    assert all(s["done"] for s in store.runs["r1"]["segments"])


def test_an_interrupted_run_resumes_where_it_stopped_and_sends_nothing_twice() -> None:
    table = FakeTable([item(n, installation=f"icfg_{n % 3}") for n in range(200)])
    stop = threading.Event()
    queue, store = FakeQueue(on_batch=lambda q: stop.set() if len(q.batches) == 6 else None), MemoryStore()
    first = run(table, queue, store, stop=stop)
    assert first.interrupted
    assert not first.complete
    sent_first = list(queue.sent)
    assert 0 < len(sent_first) < 200

    queue.on_batch = None
    second = run(table, queue, store)
    assert second.complete
    assert Counter(queue.sent) == Counter(f"res_{n:04}" for n in range(200))  # each exactly once
    assert second.counts.sent == 200
    assert second.counts.scanned == 200


def test_a_process_killed_between_send_and_checkpoint_resends_only_that_batch() -> None:
    table = FakeTable([item(n) for n in range(60)])
    queue, store = FakeQueue(), MemoryStore(crash_on_save=3)
    first = run(table, queue, store, the_plan=plan(segments=1), page_size=25)
    assert first.errors == ["segment 0: RuntimeError"]
    assert not first.complete
    second = run(table, queue, store)
    assert second.complete
    counts = Counter(queue.sent)
    resent = [resource for resource, n in counts.items() if n > 1]
    # The page's last batch was sent but not checkpointed: exactly it is sent again (on a FIFO queue,
    # its deduplication ids, derived from the content, make SQS drop the resend).
    assert resent == [f"res_{n:04}" for n in range(20, 25)]
    assert set(counts) == {f"res_{n:04}" for n in range(60)}


def test_failing_sends_stop_the_segment_and_leave_its_checkpoint_before_them() -> None:
    table = FakeTable([item(n) for n in range(40)])
    queue, store = FakeQueue(fail_after_batches=2), MemoryStore()
    first = run(table, queue, store, the_plan=plan(segments=1), page_size=40)
    assert first.errors
    assert "InternalError" in first.errors[0]
    assert first.counts.sent == 20
    queue.fail_after_batches = None
    assert run(table, queue, store).complete
    assert Counter(queue.sent) == Counter(f"res_{n:04}" for n in range(40))


def test_batches_are_cut_by_size_and_a_resume_after_a_size_cut_sends_nothing_twice() -> None:
    big = {"blob": "x" * 90_000}
    table = FakeTable([item(n, metadata=big) if n % 2 == 0 else item(n) for n in range(30)])
    stop = threading.Event()
    queue, store = FakeQueue(on_batch=lambda q: stop.set() if len(q.batches) == 4 else None), MemoryStore()
    run(table, queue, store, stop=stop, the_plan=plan(segments=1), page_size=30)
    assert all(sum(m.size for m in batch) <= 250 * 1024 for batch in queue.batches)
    queue.on_batch = None
    assert run(table, queue, store).complete
    assert Counter(queue.sent) == Counter(f"res_{n:04}" for n in range(30))


def test_filters_send_one_installation_and_one_product() -> None:
    items = [item(n, installation=f"icfg_{n % 2}", product="redis" if n % 3 else "postgres") for n in range(60)]
    queue, store = FakeQueue(), MemoryStore()
    result = run(FakeTable(items), queue, store, the_plan=plan(installation_id="icfg_1", product_id="postgres"))
    expected = [
        i["resourceId"] for i in items if i["integrationConfigurationId"] == "icfg_1" and i["productId"] == "postgres"
    ]
    assert sorted(queue.sent) == sorted(expected)
    assert result.counts.filtered == 60 - len(expected)


def test_resuming_with_another_plan_is_refused() -> None:
    store = MemoryStore()
    start_or_resume(store, "r1", plan(segments=3))
    with pytest.raises(BackfillError, match="another plan"):
        start_or_resume(store, "r1", plan(segments=4))
    with pytest.raises(BackfillError, match="run id"):
        start_or_resume(store, "../etc", plan())


def test_a_dry_run_sends_nothing_and_stores_nothing() -> None:
    shown: list[OutboundMessage] = []
    state = RunState.new("dry", plan())
    result = Backfill(
        state,
        source=FakeTable([item(n) for n in range(25)]),
        sink=None,
        checkpoints=None,
        dry_run=True,
        on_message=shown.append,
    ).run()
    assert result.complete
    assert result.counts.sent == 25
    assert sorted(m.resource_id for m in shown) == [f"res_{n:04}" for n in range(25)]


def test_the_pacer_holds_each_installation_to_its_rate_and_wakes_on_stop() -> None:
    now = [0.0]
    pacer = InstallationPacer(RateLimit(calls=2, seconds=1), monotonic=lambda: now[0])
    stop = threading.Event()
    assert pacer.acquire("a", stop)
    assert pacer.acquire("a", stop)
    assert pacer._take("a") == pytest.approx(0.5)  # a third must wait half a second
    assert pacer.acquire("b", stop)  # other installations have their own bucket
    now[0] += 0.5
    assert pacer.acquire("a", stop)
    stop.set()
    assert not pacer.acquire("a", stop)
    assert parse_rate("off") is None
    assert parse_rate("100/60") == RateLimit(calls=100, seconds=60)
    with pytest.raises(BackfillError):
        parse_rate("fast")


# ---------------------------------------------------------------- progress


def snapshot(scanned: int, total: int | None, done: int = 0, elapsed: float = 2.0) -> ProgressSnapshot:
    return ProgressSnapshot("r1", Counts(scanned, scanned - 5, 3, 2), scanned, elapsed, total, done, 4)


def test_progress_bar_and_lines() -> None:
    line = bar_line(snapshot(1000, 2000), 120)
    assert line.startswith("[")
    assert " 50% " in line
    assert "1,000/~2,000 scanned" in line
    assert "500 items/s" in line
    assert "0:02 left" in line
    assert " ?? " in bar_line(snapshot(10, None), 120)
    assert summary(snapshot(2000, 2000, done=4)).endswith("items/s")  # finished: no time left shown
    assert duration(3725) == "1:02:05"
    assert duration(None) == "?"
    stream = io.StringIO()
    display = ProgressDisplay(stream, "lines", line_interval=5)
    for elapsed in (0.0, 1.0, 6.0):
        display.update(snapshot(10, 100, elapsed=elapsed))
    assert stream.getvalue().count("progress: ") == 2  # one line per interval, not per update


# ---------------------------------------------------------------- BackfillFunction


@dataclass
class Invocations:
    events: list[dict[str, Any]] = field(default_factory=list)

    def invoke_async(self, function_arn: str, payload: Mapping[str, Any]) -> None:
        self.events.append(dict(payload))


def invoke(
    event: dict[str, Any], table: FakeTable, queue: FakeQueue, store: MemoryStore, invoker: Invocations, seconds: float
) -> dict[str, Any]:
    settings = BackfillSettings(
        table_name="partner",
        queue_url="https://sqs.example/1/q",
        state_table="state",
        rate=None,
        stop_margin_seconds=60,
    )
    runner = BackfillRunner(settings, source=table, sink_for=lambda run_id: queue, store=store, invoker=invoker)
    return runner.handle(
        event,
        function_arn="arn:aws:lambda:us-east-1:1:function:bf",
        time_left_ms=lambda: int((60 + seconds) * 1000),
    )


def test_the_function_hands_the_run_to_its_next_invocation_until_done() -> None:
    table = FakeTable([item(n) for n in range(600)], on_page=lambda: time.sleep(0.06))
    queue, store, invoker = FakeQueue(), MemoryStore(), Invocations()
    event: dict[str, Any] = {"runId": "lambda-1", "segments": 2}
    answers = []
    for _ in range(30):
        answers.append(invoke(event, table, queue, store, invoker, seconds=0.1))
        if not answers[-1].get("continued"):
            break
        event = invoker.events[-1]
        assert event["lease"] == store.leases["lambda-1"][0]  # handed to the next invocation by name
    assert len(answers) > 1
    assert answers[-1]["complete"]
    assert Counter(queue.sent) == Counter(f"res_{n:04}" for n in range(600))
    assert "lambda-1" not in store.leases  # released at the end
    # A stray invocation holding an old lease cannot work on the run while another holds it.
    store.leases["lambda-1"] = ("someone", time.time() + 60)
    with pytest.raises(BackfillError, match="another invocation"):
        invoke({"runId": "lambda-1", "segments": 2, "lease": "stale"}, table, queue, store, invoker, seconds=1)


def test_the_function_fails_rather_than_looping_when_it_makes_no_progress() -> None:
    with pytest.raises(BackfillError, match="no progress"):
        invoke({"runId": "lambda-2"}, FakeTable([item(1)]), FakeQueue(), MemoryStore(), Invocations(), seconds=0)


def test_the_function_event_is_validated() -> None:
    assert BackfillRequest.parse({"runId": "x", "installation": "icfg_a"}).installation_id == "icfg_a"
    for bad in ({"runId": 3}, {"runId": "x", "segments": "8"}, {"runId": "a b"}, {"runId": "x", "product": 1}):
        with pytest.raises(BackfillError):
            BackfillRequest.parse(bad)
    assert replace(plan(), total_segments=2).total_segments == 2
    with pytest.raises(BackfillError):
        plan(segments=0)


def test_the_function_settings_come_from_the_environment() -> None:
    environ = {
        "PARTNER_TABLE_NAME": "partner",
        "PARTNER_EVENTS_QUEUE_URL": "",  # the template's value when the queue is the partner's own
        "PARTNER_EVENTS_QUEUE_ARN": "arn:aws:sqs:us-east-1:123456789012:events.fifo",
        "SYNC_STATE_TABLE": "state",
        "VERCEL_RATE_LIMIT": "50/5",
    }
    settings = BackfillSettings.from_env(environ)
    assert (settings.queue_url, settings.queue_arn) == (None, environ["PARTNER_EVENTS_QUEUE_ARN"])
    assert settings.rate == RateLimit(calls=50, seconds=5)
    assert (settings.max_invocations, settings.stop_margin_seconds) == (200, 60.0)
    assert BackfillSettings.from_env({**environ, "BACKFILL_RATE": "off"}).rate is None
    assert BackfillSettings.from_env({**environ, "VERCEL_RATE_LIMIT": ""}).rate == RateLimit(calls=100, seconds=60)
    with pytest.raises(BackfillError, match="SYNC_STATE_TABLE"):
        BackfillSettings.from_env({**environ, "SYNC_STATE_TABLE": ""})
    with pytest.raises(BackfillError, match="BACKFILL_MAX_INVOCATIONS"):
        BackfillSettings.from_env({**environ, "BACKFILL_MAX_INVOCATIONS": "many"})
    with pytest.raises(BackfillError, match="rate must be"):
        BackfillSettings.from_env({**environ, "BACKFILL_RATE": "fast"})
