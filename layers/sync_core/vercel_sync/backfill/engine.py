"""The backfill engine: each partner-table item naming a resource goes to the partner events queue as
the partner-record JSON, a worker thread per scan segment (docs/operations.md, "Backfill")."""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any, Literal, Protocol

from vercel_sync.backfill.checkpoints import (
    COUNT_FIELDS,
    INSTALLATION_FIELD,
    PRODUCT_FIELD,
    BackfillError,
    BackfillPlan,
    CheckpointStore,
    Counts,
    Key,
    RunState,
    SegmentState,
)
from vercel_sync.errors import InvalidRecordError
from vercel_sync.mapping import PartnerMapping, default_mapping
from vercel_sync.ratelimit.limiter import InstallationPacer
from vercel_sync.transform import json_safe

# SQS's limits per SendMessageBatch, message and group id (a little room left for attributes).
MAX_BATCH_ENTRIES = 10
MAX_BATCH_BYTES = 250 * 1024
MAX_MESSAGE_BYTES = 250 * 1024
MAX_GROUP_ID_LENGTH = 128
# What SQS takes in a MessageGroupId: alphanumerics and ASCII punctuation.
_GROUP_ID_CHARACTERS = re.compile(r"^[A-Za-z0-9!\"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~]+$")
DEFAULT_PAGE_SIZE = 100
MAX_REPORTED_NOT_SENDABLE = 100


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

    @cached_property
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


def record_body(item: Mapping[str, Any], mapping: PartnerMapping | None = None) -> str:
    """The attributes the partner mapping reads, as canonical JSON (the item's others are not copied):
    the queue function maps the message as the stream function maps the item."""
    fields = (mapping or default_mapping()).source_attributes
    record = {name: json_safe(value) for name, value in item.items() if name in fields}
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def classify(
    item: Mapping[str, Any], plan: BackfillPlan, mapping: PartnerMapping | None = None
) -> tuple[Verdict, OutboundMessage | None]:
    """What the backfill does with one item (read through ``mapping``): send it (with its message), or why not."""
    mapping = mapping or default_mapping()
    installation_id, resource_id = mapping.text(item, INSTALLATION_FIELD), mapping.text(item, "resourceId")
    if not mapping.is_resource(item) or not installation_id or resource_id is None:
        return "not_a_resource", None
    if not plan.matches({INSTALLATION_FIELD: installation_id, PRODUCT_FIELD: mapping.text(item, PRODUCT_FIELD)}):
        return "filtered", None
    try:
        body = record_body(item, mapping)
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


@dataclass(frozen=True)
class ProgressSnapshot:
    """The facts of a run's progress; the rate, share and time left are ``operations/progress.py``'s."""

    run_id: str
    counts: Counts  # the whole run's, resumed parts included
    scanned_this_session: int
    elapsed_seconds: float
    approximate_total: int | None  # the table's item count as DynamoDB last reported it
    segments_done: int
    total_segments: int

    @property
    def finished(self) -> bool:
        return self.segments_done == self.total_segments


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
        counts = {name: getattr(self.counts, name) for name in COUNT_FIELDS}
        return {
            "runId": self.run_id,
            "complete": self.complete,
            "interrupted": self.interrupted,
            **counts,
            "errors": self.errors,
        }


class Backfill:
    """One session of a run: every unfinished segment, in parallel, until done or ``stop`` (at a batch
    boundary). ``dry_run`` sends and checkpoints nothing, handing each message to ``on_message``."""

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
        mapping: PartnerMapping | None = None,
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
        self.mapping = mapping or default_mapping()
        self._lock = threading.Lock()
        self._errors: list[str] = []
        self._not_sendable: list[tuple[str, str]] = []
        self._scanned_at_start = state.totals().scanned
        self._started = monotonic()
        self._approximate_total: int | None = None
        self._progressed = False

    def snapshot(self) -> ProgressSnapshot:
        """The progress so far (from any thread)."""
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
                list(pool.map(self._run_segment_safely, pending))
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

    def _run_segment(self, segment: int) -> None:
        committed = replace(self.state.segments[segment])
        while not committed.done and not self.stop.is_set():
            page = self.source.scan_page(segment, self.plan.total_segments, committed.start_key, self.page_size)
            work = replace(committed)
            batch: list[OutboundMessage] = []
            last_counted: Key | None = committed.start_key
            for scanned in page.items:
                verdict, message = classify(scanned.item, self.plan, self.mapping)
                if message is not None:
                    full = batch and sum(m.size for m in batch) + message.size > MAX_BATCH_BYTES
                    # A full batch ends before this item: the checkpoint is the item counted last.
                    if full and not self._send_and_commit(batch, work, last_counted):
                        return
                    if self.pacer is not None and not self.pacer.acquire(message.installation_id, self.stop):
                        return  # stopped while waiting: the unsent batch is not checkpointed
                    batch.append(message)
                    work.sent += 1
                elif verdict == "filtered":
                    work.filtered += 1
                else:
                    work.skipped += 1
                    if verdict == "not_sendable":
                        self._note_not_sendable(scanned.item)
                work.scanned += 1
                last_counted = scanned.key
                if len(batch) == MAX_BATCH_ENTRIES and not self._send_and_commit(batch, work, last_counted):
                    return
            if batch:
                self._send(batch)
            work.start_key = page.last_key
            work.done = page.last_key is None
            self._commit(work)
            committed = work

    def _send_and_commit(self, batch: list[OutboundMessage], work: SegmentState, key: Key | None) -> bool:
        """Send the batch (emptying it), then checkpoint ``key``; False when the session is to stop."""
        self._send(tuple(batch))
        batch.clear()
        work.start_key = key
        self._commit(work)
        return not self.stop.is_set()

    def _send(self, batch: Sequence[OutboundMessage]) -> None:
        if self.dry_run:
            if self.on_message is not None:
                for message in batch:
                    self.on_message(message)
            return
        assert self.sink is not None
        self.sink.send_batch(batch)

    def _commit(self, work: SegmentState) -> None:
        if not self.dry_run:
            assert self.checkpoints is not None
            self.checkpoints.save(self.state.run_id, work)
        with self._lock:
            self.state.segments[work.segment] = replace(work)
            self._progressed = True

    def _note_not_sendable(self, item: Mapping[str, Any]) -> None:
        with self._lock:
            if len(self._not_sendable) < MAX_REPORTED_NOT_SENDABLE:
                ids = (self.mapping.text(item, INSTALLATION_FIELD), self.mapping.text(item, "resourceId"))
                self._not_sendable.append((str(ids[0]), str(ids[1])))
