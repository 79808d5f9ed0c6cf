"""Backfill: every resource in the partner table, sent through the queue path.

Used when the integration is first deployed, or again after an outage. The partner table is
scanned in parallel segments; each item that names a resource (and matches the filters) goes
to the partner events queue as the raw partner-record JSON, exactly as a partner would send a
live change. The queue function then imports it like any other: the same rate limit, change
suppression, version guard and order per resource apply, and nothing here talks to Vercel.

Resumable: each segment's position is checkpointed after every ``SendMessageBatch`` (the key
of the last item it counted; at a page's end, the scan's ``LastEvaluatedKey``). A resumed run
starts each segment after its checkpoint, so the only items sent twice are those of a batch
that was sent but whose checkpoint was not written (the process killed in between): on a FIFO
queue the content-derived ``MessageDeduplicationId`` drops that resend inside SQS's 5-minute
window; on a standard queue (or later) change suppression skips the import.

FIFO: ``MessageGroupId`` is the resource (``<installation>/<resource>``, or a hash of it when
that is too long or holds characters SQS refuses), so one resource's messages stay in order;
use the same form for your live messages to share that order.

This module is the engine (pure apart from threads and the clock); the AWS edges (the scanner,
the SQS sender, the sync-state-table checkpoints) are in ``adapters/backfill_aws.py``, and the
command line in ``operations/``. The Lambda entry point is :func:`handle_backfill_event`.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from vercel_sync.errors import InvalidRecordError
from vercel_sync.partner_schema import PartnerRecord
from vercel_sync.settings import RateLimit
from vercel_sync.transform import json_safe

# The partner record's field names as they appear in the partner's item (partner_schema's aliases).
RECORD_FIELDS = frozenset(f.alias or name for name, f in PartnerRecord.model_fields.items())
INSTALLATION_FIELD = PartnerRecord.model_fields["integration_configuration_id"].alias or "integrationConfigurationId"
RESOURCE_FIELD = PartnerRecord.model_fields["resource_id"].alias or "resourceId"
PRODUCT_FIELD = PartnerRecord.model_fields["product_id"].alias or "productId"

# SQS limits: 10 entries and 256 KiB per SendMessageBatch (the sum of the entries), 256 KiB
# per message; 128 characters for group and deduplication ids. A little room for attributes.
MAX_BATCH_ENTRIES = 10
MAX_BATCH_BYTES = 250 * 1024
MAX_MESSAGE_BYTES = 250 * 1024
MAX_GROUP_ID_LENGTH = 128
# What SQS takes in a MessageGroupId: alphanumerics and ASCII punctuation.
_GROUP_ID_CHARACTERS = re.compile(r"^[A-Za-z0-9!\"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~]+$")
RUN_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
MAX_SEGMENTS = 1000
DEFAULT_SEGMENTS = 4
DEFAULT_PAGE_SIZE = 100

Key = dict[str, Any]
"""A DynamoDB primary key in the low-level form (``{"id": {"S": "x"}}``), JSON-safe (binary as base64)."""


class BackfillError(Exception):
    """A backfill cannot start or go on (a bad plan, a refused checkpoint, SQS refusing messages)."""


# ---------------------------------------------------------------- the plan and its checkpoints


@dataclass(frozen=True)
class BackfillPlan:
    """What a run reads and where it sends; fixed when the run starts (a resume reuses it)."""

    table_name: str
    queue_url: str
    total_segments: int = DEFAULT_SEGMENTS
    installation_id: str | None = None
    product_id: str | None = None

    def __post_init__(self) -> None:
        if not self.table_name or not self.queue_url:
            raise BackfillError("a backfill needs the partner table and the partner events queue")
        if not 1 <= self.total_segments <= MAX_SEGMENTS:
            raise BackfillError(f"segments must be between 1 and {MAX_SEGMENTS}")

    @property
    def fifo(self) -> bool:
        return self.queue_url.endswith(".fifo")

    def matches(self, item: Mapping[str, Any]) -> bool:
        if self.installation_id is not None and item.get(INSTALLATION_FIELD) != self.installation_id:
            return False
        return self.product_id is None or item.get(PRODUCT_FIELD) == self.product_id

    def to_dict(self) -> dict[str, Any]:
        return {
            "tableName": self.table_name,
            "queueUrl": self.queue_url,
            "totalSegments": self.total_segments,
            "installationId": self.installation_id,
            "productId": self.product_id,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BackfillPlan:
        return cls(
            table_name=str(data["tableName"]),
            queue_url=str(data["queueUrl"]),
            total_segments=int(data["totalSegments"]),
            installation_id=data.get("installationId"),
            product_id=data.get("productId"),
        )

    def describe(self) -> str:
        filters = [f"installation {self.installation_id}"] if self.installation_id else []
        filters += [f"product {self.product_id}"] if self.product_id else []
        return f"table {self.table_name}, {self.total_segments} segments" + (
            f", only {' and '.join(filters)}" if filters else ""
        )


@dataclass
class SegmentState:
    """One scan segment: where to go on from, and what it counted up to there."""

    segment: int
    start_key: Key | None = None  # resume after this key (None: from the start, unless done)
    done: bool = False
    scanned: int = 0  # items read
    sent: int = 0  # messages sent (dry run: that would be sent)
    filtered: int = 0  # not matching the filters
    skipped: int = 0  # not a resource (no ids), or not sendable (too large, not JSON)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SegmentState:
        return cls(
            segment=int(data["segment"]),
            start_key=data.get("start_key"),
            done=bool(data.get("done", False)),
            scanned=int(data.get("scanned", 0)),
            sent=int(data.get("sent", 0)),
            filtered=int(data.get("filtered", 0)),
            skipped=int(data.get("skipped", 0)),
        )


@dataclass
class RunState:
    run_id: str
    plan: BackfillPlan
    segments: list[SegmentState]
    created_at: str

    @classmethod
    def new(cls, run_id: str, plan: BackfillPlan, *, now: datetime | None = None) -> RunState:
        validate_run_id(run_id)
        moment = (now or datetime.now(UTC)).isoformat(timespec="seconds")
        return cls(run_id, plan, [SegmentState(i) for i in range(plan.total_segments)], moment)

    @property
    def complete(self) -> bool:
        return all(segment.done for segment in self.segments)

    def totals(self) -> Counts:
        return Counts.of(self.segments)

    def to_dict(self) -> dict[str, Any]:
        return {
            "runId": self.run_id,
            "plan": self.plan.to_dict(),
            "createdAt": self.created_at,
            "segments": [segment.to_dict() for segment in self.segments],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunState:
        plan = BackfillPlan.from_dict(data["plan"])
        segments = sorted((SegmentState.from_dict(s) for s in data["segments"]), key=lambda s: s.segment)
        if [s.segment for s in segments] != list(range(plan.total_segments)):
            raise BackfillError("checkpoint does not hold one state per segment")
        return cls(str(data["runId"]), plan, segments, str(data.get("createdAt", "")))


def validate_run_id(run_id: str) -> str:
    if not RUN_ID_PATTERN.fullmatch(run_id):
        raise BackfillError("a run id is 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit")
    return run_id


def new_run_id(now: datetime | None = None) -> str:
    moment = now or datetime.now(UTC)
    return f"bf-{moment:%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:6]}"


class CheckpointStore(Protocol):
    def load(self, run_id: str) -> RunState | None: ...

    def create(self, state: RunState) -> None:
        """Store a new run; refuses (BackfillError) a run id that exists."""

    def save(self, run_id: str, segment: SegmentState) -> None:
        """Record one segment's progress (called from the segment's worker thread)."""


# ---------------------------------------------------------------- items and messages


@dataclass(frozen=True)
class ScannedItem:
    key: Key
    item: Mapping[str, Any]  # the item's attributes as Python values (Decimal, set, bytes...)


@dataclass(frozen=True)
class Page:
    items: Sequence[ScannedItem]
    last_key: Key | None  # None: the segment is finished


class ItemSource(Protocol):
    def approximate_item_count(self) -> int | None: ...

    def scan_page(self, segment: int, total_segments: int, start_key: Key | None, limit: int) -> Page: ...


@dataclass(frozen=True)
class OutboundMessage:
    installation_id: str
    resource_id: str
    body: str
    group_id: str
    deduplication_id: str

    @property
    def size(self) -> int:
        return len(self.body.encode("utf-8")) + len(self.group_id) + len(self.deduplication_id)


class MessageSink(Protocol):
    def send_batch(self, messages: Sequence[OutboundMessage]) -> None:
        """Send every message (at most 10, within SQS's batch size) or raise BackfillError."""


Verdict = Literal["send", "filtered", "not_a_resource", "not_sendable"]


def message_group_id(installation_id: str, resource_id: str) -> str:
    """The resource as a FIFO message group: ``<installation>/<resource>``, hashed if SQS would refuse it."""
    group = f"{installation_id}/{resource_id}"
    if len(group) <= MAX_GROUP_ID_LENGTH and _GROUP_ID_CHARACTERS.fullmatch(group):
        return group
    digest = hashlib.sha256(f"{len(installation_id)}#{installation_id}#{resource_id}".encode()).hexdigest()
    return f"sha256-{digest}"


def record_body(item: Mapping[str, Any]) -> str:
    """The partner record's own fields as canonical JSON (other attributes of the item are not copied)."""
    record = {name: json_safe(value) for name, value in item.items() if name in RECORD_FIELDS}
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def classify(item: Mapping[str, Any], plan: BackfillPlan) -> tuple[Verdict, OutboundMessage | None]:
    """What the backfill does with one item: send it (with its message), or why not."""
    installation_id, resource_id = item.get(INSTALLATION_FIELD), item.get(RESOURCE_FIELD)
    if not isinstance(installation_id, str) or not isinstance(resource_id, str) or not installation_id:
        return "not_a_resource", None
    if not plan.matches(item):
        return "filtered", None
    try:
        body = record_body(item)
    except InvalidRecordError:  # e.g. a number that JSON cannot hold
        return "not_sendable", None
    if len(body.encode("utf-8")) > MAX_MESSAGE_BYTES:
        return "not_sendable", None
    return "send", OutboundMessage(
        installation_id=installation_id,
        resource_id=resource_id,
        body=body,
        group_id=message_group_id(installation_id, resource_id),
        # From the content: a resend of the same state inside 5 minutes is dropped by SQS.
        deduplication_id=hashlib.sha256(body.encode("utf-8")).hexdigest(),
    )


# ---------------------------------------------------------------- pacing and progress


class InstallationPacer:
    """At most ``rate.calls`` messages per ``rate.seconds`` per installation (a token bucket each).

    The queue function can import only so fast per installation (Vercel's limit); sending
    faster only keeps messages waiting in the queue, each receive counting toward the queue's
    ``maxReceiveCount``. Thread-safe; a waiting worker wakes when ``stop`` is set.
    """

    def __init__(self, rate: RateLimit, *, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self._per_second = rate.calls / rate.seconds
        self._monotonic = monotonic
        self._buckets: dict[str, tuple[float, float]] = {}  # installation -> (tokens, at)
        self._lock = threading.Lock()

    def _take(self, installation_id: str) -> float:
        """Take a token if there is one (returns 0), else the seconds until there is one."""
        with self._lock:
            now = self._monotonic()
            tokens, at = self._buckets.get(installation_id, (float(self.rate.calls), now))
            tokens = min(float(self.rate.calls), tokens + (now - at) * self._per_second)
            if tokens >= 1:
                self._buckets[installation_id] = (tokens - 1, now)
                return 0.0
            self._buckets[installation_id] = (tokens, now)
            return (1 - tokens) / self._per_second

    def acquire(self, installation_id: str, stop: threading.Event) -> bool:
        """Wait for a token; False if ``stop`` was set first."""
        while not stop.is_set():
            wait = self._take(installation_id)
            if wait == 0:
                return True
            stop.wait(wait)
        return False


@dataclass(frozen=True)
class Counts:
    scanned: int = 0
    sent: int = 0
    filtered: int = 0
    skipped: int = 0

    @classmethod
    def of(cls, segments: Sequence[SegmentState]) -> Counts:
        return cls(
            scanned=sum(s.scanned for s in segments),
            sent=sum(s.sent for s in segments),
            filtered=sum(s.filtered for s in segments),
            skipped=sum(s.skipped for s in segments),
        )


@dataclass(frozen=True)
class ProgressSnapshot:
    run_id: str
    counts: Counts  # the whole run's, resumed parts included
    scanned_this_session: int
    elapsed_seconds: float
    approximate_total: int | None  # the table's item count as DynamoDB last reported it
    segments_done: int
    total_segments: int

    @property
    def rate_per_second(self) -> float:
        return self.scanned_this_session / self.elapsed_seconds if self.elapsed_seconds > 0 else 0.0

    @property
    def finished(self) -> bool:
        return self.segments_done == self.total_segments

    @property
    def fraction(self) -> float | None:
        """How far the scan is, against the table's approximate item count (None: unknown)."""
        if self.finished:
            return 1.0
        if not self.approximate_total:
            return None
        return min(0.99, self.counts.scanned / self.approximate_total)

    @property
    def seconds_left(self) -> float | None:
        if self.finished:
            return 0.0
        if not self.approximate_total or self.rate_per_second <= 0:
            return None
        return max(0, self.approximate_total - self.counts.scanned) / self.rate_per_second


# ---------------------------------------------------------------- the run


@dataclass
class BackfillResult:
    run_id: str
    complete: bool
    interrupted: bool
    counts: Counts
    errors: list[str] = field(default_factory=list)
    not_sendable: list[tuple[str, str]] = field(default_factory=list)  # (installation, resource), capped
    progressed: bool = False  # some segment moved in this session

    def to_dict(self) -> dict[str, Any]:
        return {
            "runId": self.run_id,
            "complete": self.complete,
            "interrupted": self.interrupted,
            "scanned": self.counts.scanned,
            "sent": self.counts.sent,
            "filtered": self.counts.filtered,
            "skipped": self.counts.skipped,
            "errors": self.errors,
        }


MAX_REPORTED_NOT_SENDABLE = 100


class Backfill:
    """One session of a run: every unfinished segment, in parallel, until done or stopped.

    ``dry_run``: nothing is sent and no checkpoint is written; ``on_message`` (if given) is
    called with each message that would be sent. ``stop`` ends the session at the next batch
    boundary (what was sent is checkpointed; the rest waits for a resume).
    """

    def __init__(
        self,
        state: RunState,
        *,
        source: ItemSource,
        sink: MessageSink | None,
        checkpoints: CheckpointStore | None,
        pacer: InstallationPacer | None = None,
        dry_run: bool = False,
        on_message: Callable[[OutboundMessage], None] | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
        max_workers: int | None = None,
        stop: threading.Event | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if not dry_run and (sink is None or checkpoints is None):
            raise BackfillError("a backfill that sends needs a queue and a checkpoint store")
        self.state = state
        self.plan = state.plan
        self.source = source
        self.sink = sink
        self.checkpoints = checkpoints
        self.pacer = pacer if not dry_run else None
        self.dry_run = dry_run
        self.on_message = on_message
        self.page_size = max(1, min(page_size, 1000))
        self.max_workers = max_workers or min(self.plan.total_segments, 16)
        self.stop = stop or threading.Event()
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._errors: list[str] = []
        self._not_sendable: list[tuple[str, str]] = []
        self._scanned_at_start = state.totals().scanned
        self._started = monotonic()
        self._approximate_total: int | None = None
        self._progressed = False

    # -- progress, read from any thread
    def snapshot(self) -> ProgressSnapshot:
        with self._lock:
            segments = [replace(s) for s in self.state.segments]
        counts = Counts.of(segments)
        return ProgressSnapshot(
            run_id=self.state.run_id,
            counts=counts,
            scanned_this_session=counts.scanned - self._scanned_at_start,
            elapsed_seconds=self._monotonic() - self._started,
            approximate_total=self._approximate_total,
            segments_done=sum(s.done for s in segments),
            total_segments=len(segments),
        )

    def run(self) -> BackfillResult:
        try:
            self._approximate_total = self.source.approximate_item_count()
        except Exception:  # noqa: BLE001 - the count only feeds the progress bar
            self._approximate_total = None
        self._started = self._monotonic()
        pending = [s.segment for s in self.state.segments if not s.done]
        if pending:
            with ThreadPoolExecutor(max_workers=min(self.max_workers, len(pending))) as pool:
                for _ in pool.map(self._run_segment_safely, pending):
                    pass
        with self._lock:
            counts = self.state.totals()
            complete = self.state.complete
        return BackfillResult(
            run_id=self.state.run_id,
            complete=complete,
            interrupted=self.stop.is_set() and not complete,
            counts=counts,
            errors=list(self._errors),
            not_sendable=list(self._not_sendable),
            progressed=self._progressed,
        )

    def _run_segment_safely(self, segment: int) -> None:
        try:
            self._run_segment(segment)
        except Exception as exc:  # noqa: BLE001 - one segment's failure is reported; the others go on
            detail = exc.args[0] if isinstance(exc, BackfillError) and exc.args else type(exc).__name__
            with self._lock:
                self._errors.append(f"segment {segment}: {detail}")

    def _commit(self, work: SegmentState) -> None:
        if not self.dry_run:
            assert self.checkpoints is not None
            self.checkpoints.save(self.state.run_id, work)
        with self._lock:
            self.state.segments[work.segment] = replace(work)
            self._progressed = True

    def _run_segment(self, segment: int) -> None:
        committed = replace(self.state.segments[segment])
        while not committed.done and not self.stop.is_set():
            page = self.source.scan_page(segment, self.plan.total_segments, committed.start_key, self.page_size)
            work = replace(committed)
            batch: list[OutboundMessage] = []
            batch_bytes = 0
            last_counted: Key | None = committed.start_key
            for scanned in page.items:
                verdict, message = classify(scanned.item, self.plan)
                if message is not None:
                    if batch and batch_bytes + message.size > MAX_BATCH_BYTES:
                        # The batch ends before this item: the checkpoint is the item counted last.
                        self._send(batch)
                        work.start_key = last_counted
                        self._commit(work)
                        batch, batch_bytes = [], 0
                        if self.stop.is_set():
                            return
                    if self.pacer is not None and not self.pacer.acquire(message.installation_id, self.stop):
                        return  # stopped while waiting: the unsent batch is not checkpointed
                    batch.append(message)
                    batch_bytes += message.size
                    work.sent += 1
                elif verdict == "filtered":
                    work.filtered += 1
                else:
                    work.skipped += 1
                    if verdict == "not_sendable":
                        self._note_not_sendable(scanned.item)
                work.scanned += 1
                last_counted = scanned.key
                if len(batch) == MAX_BATCH_ENTRIES:
                    self._send(batch)
                    work.start_key = last_counted
                    self._commit(work)
                    batch, batch_bytes = [], 0
                    if self.stop.is_set():
                        return
            if batch:
                self._send(batch)
            work.start_key = page.last_key
            work.done = page.last_key is None
            self._commit(work)
            committed = work

    def _send(self, batch: list[OutboundMessage]) -> None:
        if self.dry_run:
            if self.on_message is not None:
                for message in batch:
                    self.on_message(message)
            return
        assert self.sink is not None
        self.sink.send_batch(batch)

    def _note_not_sendable(self, item: Mapping[str, Any]) -> None:
        with self._lock:
            if len(self._not_sendable) < MAX_REPORTED_NOT_SENDABLE:
                self._not_sendable.append((str(item.get(INSTALLATION_FIELD)), str(item.get(RESOURCE_FIELD))))


def start_or_resume(
    checkpoints: CheckpointStore, run_id: str, plan: BackfillPlan | None
) -> tuple[RunState, Literal["new", "resumed"]]:
    """The run's state: resumed from its checkpoint, or created from ``plan``.

    Resuming with a different plan is refused: a segment's position means nothing in another
    segmentation, and a filter changed midway would leave items out.
    """
    validate_run_id(run_id)
    existing = checkpoints.load(run_id)
    if existing is not None:
        if plan is not None and plan != existing.plan:
            raise BackfillError(
                f"run {run_id} exists with another plan ({existing.plan.describe()}); resume it as it is "
                "or start a new run id"
            )
        return existing, "resumed"
    if plan is None:
        raise BackfillError(f"no checkpoint for run {run_id}")
    state = RunState.new(run_id, plan)
    checkpoints.create(state)
    return state, "new"


# ---------------------------------------------------------------- the Lambda function (BackfillFunction)


class LeaseStore(CheckpointStore, Protocol):
    def claim(self, run_id: str, owner: str, *, seconds: float) -> bool:
        """Take the run for ``owner`` (free, expired, or already its own) for ``seconds``."""

    def hand_over(self, run_id: str, owner: str, next_owner: str, *, seconds: float) -> bool:
        """Pass the run from ``owner`` to ``next_owner``, who must claim it within ``seconds``."""

    def release(self, run_id: str, owner: str) -> None: ...


class Invoker(Protocol):
    def invoke_async(self, function_arn: str, payload: Mapping[str, Any]) -> None: ...


@dataclass(frozen=True)
class BackfillFunctionConfig:
    table_name: str
    queue_url: str
    state_table: str
    rate: RateLimit | None
    max_invocations: int = 200
    stop_margin_seconds: float = 60.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str], resolve_queue_url: Callable[[str], str]) -> BackfillFunctionConfig:
        table = environ.get("PARTNER_TABLE_NAME", "")
        queue_url = environ.get("PARTNER_EVENTS_QUEUE_URL", "")
        if not queue_url and environ.get("PARTNER_EVENTS_QUEUE_ARN"):
            queue_url = resolve_queue_url(environ["PARTNER_EVENTS_QUEUE_ARN"])
        state_table = environ.get("SYNC_STATE_TABLE", "")
        if not table or not queue_url or not state_table:
            raise BackfillError(
                "set PARTNER_TABLE_NAME, PARTNER_EVENTS_QUEUE_URL (or _ARN) and SYNC_STATE_TABLE for the backfill"
            )
        return cls(
            table_name=table,
            queue_url=queue_url,
            state_table=state_table,
            rate=parse_rate(environ.get("BACKFILL_RATE") or environ.get("VERCEL_RATE_LIMIT") or "100/60"),
            max_invocations=int(environ.get("BACKFILL_MAX_INVOCATIONS", "200")),
            stop_margin_seconds=float(environ.get("BACKFILL_STOP_MARGIN_SECONDS", "60")),
        )


def parse_rate(text: str) -> RateLimit | None:
    """``CALLS/SECONDS`` per installation, or ``off`` (no pacing)."""
    if text.strip().lower() in {"off", "none", "0"}:
        return None
    try:
        return RateLimit.parse(text)
    except ValueError:
        raise BackfillError(f"rate must be CALLS/SECONDS (e.g. 100/60) or off, not {text!r}") from None


@dataclass(frozen=True)
class BackfillRequest:
    """The function's event: ``{"runId", "segments", "installation", "product", "dryRun"}``.

    ``lease`` and ``invocation`` are set by the function when it hands the run to its next
    invocation; leave them out when starting or restarting a run.
    """

    run_id: str
    segments: int = DEFAULT_SEGMENTS
    installation_id: str | None = None
    product_id: str | None = None
    dry_run: bool = False
    lease: str | None = None
    invocation: int = 1
    plan_given: bool = True  # False: only a runId (resume the run with its stored plan)

    @classmethod
    def parse(cls, event: Mapping[str, Any]) -> BackfillRequest:
        if not isinstance(event, Mapping):
            raise BackfillError("the event must be a JSON object")
        run_id = event.get("runId") or new_run_id()
        if not isinstance(run_id, str):
            raise BackfillError("runId must be a string")
        segments = event.get("segments", DEFAULT_SEGMENTS)
        if not isinstance(segments, int) or isinstance(segments, bool):
            raise BackfillError("segments must be a whole number")
        for name in ("installation", "product", "lease"):
            if event.get(name) is not None and not isinstance(event.get(name), str):
                raise BackfillError(f"{name} must be a string")
        return cls(
            run_id=validate_run_id(run_id),
            plan_given=any(event.get(name) is not None for name in ("segments", "installation", "product")),
            segments=segments,
            installation_id=event.get("installation") or None,
            product_id=event.get("product") or None,
            dry_run=bool(event.get("dryRun", False)),
            lease=event.get("lease") or None,
            invocation=int(event.get("invocation", 1)),
        )


def handle_backfill_event(
    event: Mapping[str, Any],
    *,
    config: BackfillFunctionConfig,
    source: ItemSource,
    sink_for: Callable[[str], MessageSink],
    store: LeaseStore,
    invoker: Invoker,
    function_arn: str,
    time_left_ms: Callable[[], int],
    log: Callable[[str, dict[str, Any]], None] = lambda message, extra: None,
) -> dict[str, Any]:
    """One invocation of BackfillFunction: work on the run until a minute is left, then hand it to
    a fresh invocation of itself (asynchronous), until every segment is done.

    One invocation at a time works on a run: it holds a lease in the run's checkpoint item, and
    passes it to the next invocation by name, so a duplicate or stray invocation cannot work on
    the same segments. A run whose invocation made no progress is not handed on (the function
    fails, the errors alarm fires, and the run resumes with the same ``runId`` once fixed).
    """
    request = BackfillRequest.parse(event)
    plan = BackfillPlan(
        table_name=config.table_name,
        queue_url=config.queue_url,
        total_segments=request.segments,
        installation_id=request.installation_id,
        product_id=request.product_id,
    )
    if request.dry_run:
        state = RunState.new(request.run_id, plan)
        with _stop_before_the_end(time_left_ms, config.stop_margin_seconds) as stop:
            result = Backfill(state, source=source, sink=None, checkpoints=None, dry_run=True, stop=stop).run()
        return {**result.to_dict(), "dryRun": True}

    owner = request.lease or uuid.uuid4().hex
    existing = store.load(request.run_id)
    if existing is not None and (request.lease is not None or not request.plan_given):
        state = existing  # a continuation, or a resume by runId alone: the stored plan
    else:
        state, _ = start_or_resume(store, request.run_id, plan)
    lease_seconds = time_left_ms() / 1000 + 60
    if not store.claim(request.run_id, owner, seconds=lease_seconds):
        raise BackfillError(f"run {request.run_id} is being worked on by another invocation")
    try:
        with _stop_before_the_end(time_left_ms, config.stop_margin_seconds) as stop:
            result = Backfill(
                state,
                source=source,
                sink=sink_for(request.run_id),
                checkpoints=store,
                pacer=InstallationPacer(config.rate) if config.rate else None,
                stop=stop,
            ).run()
    except BaseException:
        store.release(request.run_id, owner)  # so a retry or a new invocation can take the run at once
        raise
    summary = {**result.to_dict(), "invocation": request.invocation}
    log("backfill invocation finished", summary)
    if result.complete:
        store.release(request.run_id, owner)
        return summary
    if not result.progressed:
        store.release(request.run_id, owner)
        why = "; ".join(result.errors)[:500] or "no time to work (is the function timeout above the stop margin?)"
        raise BackfillError(f"run {request.run_id} made no progress: {why}")
    if request.invocation >= config.max_invocations:
        store.release(request.run_id, owner)
        raise BackfillError(
            f"run {request.run_id} not finished after {request.invocation} invocations; invoke again with its runId"
        )
    next_owner = uuid.uuid4().hex
    if not store.hand_over(request.run_id, owner, next_owner, seconds=300):
        raise BackfillError(f"run {request.run_id}: lost the lease before handing it on")
    invoker.invoke_async(
        function_arn,
        {
            "runId": request.run_id,
            "segments": plan.total_segments,
            "installation": plan.installation_id,
            "product": plan.product_id,
            "lease": next_owner,
            "invocation": request.invocation + 1,
        },
    )
    return {**summary, "continued": True}


@contextmanager
def _stop_before_the_end(time_left_ms: Callable[[], int], margin_seconds: float) -> Iterator[threading.Event]:
    """An event set when only ``margin_seconds`` of the invocation are left."""
    stop = threading.Event()
    timer = threading.Timer(max(0.0, time_left_ms() / 1000 - margin_seconds), stop.set)
    timer.daemon = True
    timer.start()
    try:
        yield stop
    finally:
        timer.cancel()


def run_backfill_function(
    event: Mapping[str, Any], context: Any, environ: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """BackfillFunction's work, wired from the environment (the handler is one call to this)."""
    import os

    from vercel_sync.adapters.backfill_aws import (
        DynamoDBScanner,
        LambdaInvoker,
        SqsSender,
        StateTableCheckpoints,
        queue_url_from_arn,
    )
    from vercel_sync.observability import logger

    config = BackfillFunctionConfig.from_env(os.environ if environ is None else environ, queue_url_from_arn)
    return handle_backfill_event(
        event,
        config=config,
        source=DynamoDBScanner(config.table_name),
        sink_for=lambda run_id: SqsSender(config.queue_url, run_id=run_id),
        store=StateTableCheckpoints(config.state_table),
        invoker=LambdaInvoker(),
        function_arn=str(context.invoked_function_arn),
        time_left_ms=lambda: int(context.get_remaining_time_in_millis()),
        log=lambda message, extra: logger.info(message, extra=extra),
    )
