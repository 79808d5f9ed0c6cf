"""``python -m operations backfill``: every partner table item, through the partner events queue.

    python -m operations backfill --table TABLE --queue-url URL [--segments 4]
        [--installation ID] [--product ID] [--dry-run [--show-body]] [--rate 100/60|off]
        [--run-id ID | --resume ID] [--checkpoint-dir .backfill | --checkpoint-table TABLE]

The engine is the core's (``vercel_sync.backfill.engine``, which BackfillFunction runs too); this is
its command line: a progress bar on a terminal (plain lines otherwise), Ctrl-C to stop at the
next batch boundary (resume with ``--resume RUN_ID``), and a dry run that prints what would be
sent and sends nothing.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import sys
import threading
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

from operations.checkpoints import DEFAULT_DIRECTORY, FileCheckpoints
from operations.progress import ProgressDisplay, duration, summary
from operations.redrive import import_problem
from operations.text import safe
from vercel_sync.backfill.checkpoints import (
    DEFAULT_SEGMENTS,
    BackfillError,
    BackfillPlan,
    CheckpointStore,
    RunState,
    new_run_id,
    start_or_resume,
)
from vercel_sync.backfill.engine import (
    DEFAULT_PAGE_SIZE,
    Backfill,
    BackfillResult,
    OutboundMessage,
    ProgressSnapshot,
)
from vercel_sync.backfill.settings import parse_rate
from vercel_sync.mapping import MappingError, PartnerMapping
from vercel_sync.ratelimit.limiter import InstallationPacer

EXIT_INTERRUPTED = 130
PLAN_OPTIONS = ("table", "queue_url", "segments", "installation", "product")


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "backfill",
        help="send every partner table item through the partner events queue (resumable)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--table", help="the partner table (default: $PARTNER_TABLE_NAME)")
    parser.add_argument("--queue-url", help="the partner events queue (default: $PARTNER_EVENTS_QUEUE_URL)")
    parser.add_argument(
        "--segments", type=int, help=f"parallel scan segments, one worker thread each (default {DEFAULT_SEGMENTS})"
    )
    parser.add_argument(
        "--mapping", help="the partner mapping file (default: $PARTNER_MAPPING_FILE, else the default mapping)"
    )
    parser.add_argument("--installation", help="only this installation (integrationConfigurationId)")
    parser.add_argument("--product", help="only this product (productId)")
    parser.add_argument("--dry-run", action="store_true", help="print what would be sent; send and store nothing")
    parser.add_argument("--show-body", action="store_true", help="with --dry-run: print each message body too")
    parser.add_argument(
        "--rate",
        help="at most CALLS/SECONDS messages per installation, as Vercel imports them, or 'off' "
        "(default: $VERCEL_RATE_LIMIT, else 100/60)",
    )
    runs = parser.add_mutually_exclusive_group()
    runs.add_argument("--run-id", help="name the run (a run with this id and the same plan is resumed)")
    runs.add_argument("--resume", metavar="RUN_ID", help="resume a run from its checkpoint, with its plan")
    stores = parser.add_mutually_exclusive_group()
    stores.add_argument(
        "--checkpoint-dir", type=Path, default=DEFAULT_DIRECTORY, help="checkpoint files (default .backfill/)"
    )
    stores.add_argument(
        "--checkpoint-table",
        help="keep checkpoints in the sync-state table instead (as BackfillFunction does; a run can then "
        "be resumed by either)",
    )
    parser.add_argument("--page-size", type=int, default=DEFAULT_PAGE_SIZE, help="items per Scan page (default 100)")
    parser.add_argument("--progress", choices=["auto", "bar", "lines", "off"], default="auto")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, *, out: TextIO | None = None, err: TextIO | None = None) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        return _run(args, out, err)
    except BackfillError as exc:
        err.write(f"backfill: {exc}\n")
        return 2


def partner_mapping(path: str | None, environ: Mapping[str, str]) -> PartnerMapping:
    """The mapping the items are read through: ``--mapping``, else ``$PARTNER_MAPPING_FILE``, else the default."""
    from vercel_sync.mapping import default_mapping, read_mapping_file

    chosen = path or environ.get("PARTNER_MAPPING_FILE")
    try:
        return read_mapping_file(chosen) if chosen else default_mapping()
    except MappingError as error:
        raise BackfillError(str(error)) from None


def _plan_from(args: argparse.Namespace, environ: os._Environ[str] | dict[str, str]) -> BackfillPlan:
    return BackfillPlan(
        table_name=args.table or environ.get("PARTNER_TABLE_NAME", ""),
        queue_url=args.queue_url or environ.get("PARTNER_EVENTS_QUEUE_URL", ""),
        total_segments=args.segments or DEFAULT_SEGMENTS,
        installation_id=args.installation,
        product_id=args.product,
    )


def _run(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    rate = parse_rate(args.rate or os.environ.get("VERCEL_RATE_LIMIT") or "100/60")
    args.rate_in_effect = str(rate) if rate else "off"  # repeated in the resume command
    if args.resume:
        given = [f"--{name.replace('_', '-')}" for name in PLAN_OPTIONS if getattr(args, name) is not None]
        if given:
            raise BackfillError(f"--resume takes the plan from its checkpoint; leave out {', '.join(given)}")
        plan = None
        run_id = args.resume
    else:
        plan = _plan_from(args, os.environ)
        run_id = args.run_id or new_run_id()

    from vercel_sync.adapters.checkpoint_table import StateTableCheckpoints
    from vercel_sync.adapters.partner_table import DynamoDBScanner
    from vercel_sync.adapters.queue_sender import SqsSender

    table_store: StateTableCheckpoints | None = None
    store: CheckpointStore
    if args.checkpoint_table:
        table_store = StateTableCheckpoints(args.checkpoint_table)
        store = table_store
    else:
        store = FileCheckpoints(args.checkpoint_dir)

    state, how = _state_of(run_id, plan, store, dry_run=args.dry_run)

    owner = f"cli-{socket.gethostname()}-{os.getpid()}"
    if table_store is not None and not args.dry_run and not table_store.claim(run_id, owner, seconds=7 * 24 * 3600):
        raise BackfillError(f"run {run_id} is being worked on elsewhere (its lease is held)")

    display = ProgressDisplay.auto(err, args.progress)
    mapping = partner_mapping(args.mapping, os.environ)
    lines = MessageLines(mapping, display, out, show_body=args.show_body)
    printing, invalid = lines.printing, lines.invalid
    stop = threading.Event()
    backfill = Backfill(
        state,
        source=DynamoDBScanner(state.plan.table_name),
        sink=None if args.dry_run else SqsSender(state.plan.queue_url, run_id=run_id),
        checkpoints=None if args.dry_run else store,
        pacer=InstallationPacer(rate) if rate and not args.dry_run else None,
        dry_run=args.dry_run,
        on_message=lines.show,
        page_size=args.page_size,
        stop=stop,
        mapping=mapping,
    )
    done_before = state.totals()
    err.write(
        f"backfill {run_id} ({how}): {state.plan.describe()} -> {state.plan.queue_url}"
        + (f"; pacing {rate} per installation" if rate and not args.dry_run else "")
        + (
            f"; resuming after {done_before.scanned:,} scanned, {done_before.sent:,} sent"
            if how == "resumed" and done_before.scanned
            else ""
        )
        + "\n"
    )
    if not args.dry_run and isinstance(store, FileCheckpoints):
        err.write(f"checkpoint: {store.path(run_id)}\n")

    result = _run_with_progress(backfill, display, printing, stop, err)
    if table_store is not None and not args.dry_run:
        table_store.release(run_id, owner)
    return _report(args, result, backfill, invalid, out, err)


def _state_of(run_id: str, plan: BackfillPlan | None, store: CheckpointStore, *, dry_run: bool) -> tuple[RunState, str]:
    """The run's state and how it starts: a dry run reads a checkpoint but never writes one."""
    if not dry_run:
        return start_or_resume(store, run_id, plan)
    if plan is not None:
        return RunState.new(run_id, plan), "dry run"
    loaded = store.load(run_id)
    if loaded is None:
        raise BackfillError(f"no checkpoint for run {run_id}")
    return loaded, "dry run"


class MessageLines:
    """A line per message the backfill would send, or why the queue function would park it (counted)."""

    def __init__(self, mapping: PartnerMapping, display: ProgressDisplay, out: TextIO, *, show_body: bool) -> None:
        self.mapping, self.display, self.out, self.show_body = mapping, display, out, show_body
        self.printing = threading.Lock()
        self.invalid: Counter[str] = Counter()  # by reason

    def show(self, message: OutboundMessage) -> None:
        problem = import_problem(message.body, self.mapping)
        with self.printing:
            self.display.clear()
            ids = f"{safe(message.installation_id)}/{safe(message.resource_id)}"
            if problem is not None:
                self.invalid[problem] += 1
                self.out.write(f"invalid {ids}: {safe(problem, 300)}\n")
            else:
                product = _field(message.body, "productId")
                status = _field(message.body, "status")
                self.out.write(
                    f"would send {ids}  product={safe(product)} status={safe(status)}  "
                    f"{len(message.body.encode()):,} B\n"
                )
            if self.show_body:
                self.out.write(f"  {message.body}\n")


def _run_with_progress(
    backfill: Backfill, display: ProgressDisplay, printing: threading.Lock, stop: threading.Event, err: TextIO
) -> BackfillResult:
    results: list[BackfillResult] = []
    failure: list[BaseException] = []

    def work() -> None:
        try:
            results.append(backfill.run())
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread
            failure.append(exc)

    def interrupt(signum: int, frame: FrameType | None) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        with printing:
            display.clear()
            err.write("stopping at the next batch boundary (Ctrl-C again to quit at once)\n")
            err.flush()

    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, interrupt) if in_main_thread else None
    worker = threading.Thread(target=work, name="backfill", daemon=True)
    worker.start()
    try:
        while worker.is_alive():
            worker.join(0.2)
            with printing:
                display.update(backfill.snapshot())
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
    if failure:
        raise failure[0]
    with printing:
        display.finish(backfill.snapshot())
    return results[0]


def _report(
    args: argparse.Namespace,
    result: BackfillResult,
    backfill: Backfill,
    invalid: Counter[str],
    out: TextIO,
    err: TextIO,
) -> int:
    snapshot = backfill.snapshot()
    elapsed = duration(snapshot.elapsed_seconds)
    for installation, resource in result.not_sendable:
        err.write(f"not sendable (too large for one message, or not JSON): {safe(installation)}/{safe(resource)}\n")
    for error in result.errors:
        err.write(f"error: {error}\n")
    if args.dry_run:
        out.write(_dry_run_report(result, snapshot, invalid))
        return 0
    resume = f"python -m operations backfill --resume {result.run_id} --rate {args.rate_in_effect}" + (
        f" --checkpoint-table {args.checkpoint_table}"
        if args.checkpoint_table
        else (f" --checkpoint-dir {args.checkpoint_dir}" if args.checkpoint_dir != DEFAULT_DIRECTORY else "")
    )
    if result.complete:
        out.write(f"backfill {result.run_id} complete in {elapsed}: {summary(snapshot)}\n")
        return 0
    state = "interrupted" if result.interrupted else "stopped by errors"
    out.write(f"backfill {result.run_id} {state} after {elapsed}: {summary(snapshot)}\nresume with: {resume}\n")
    return EXIT_INTERRUPTED if result.interrupted and not result.errors else 1


def _dry_run_report(result: BackfillResult, snapshot: ProgressSnapshot, invalid: Counter[str]) -> str:
    """Each item counted once, by what would become of it: sent and imported, sent and parked, or not sent."""
    counts, total = result.counts, snapshot.approximate_total
    parts = [f"would send {counts.sent - invalid.total():,}"]
    if invalid:
        parts.append(f"invalid {invalid.total():,} (would be sent and parked as invalid_record)")
    if counts.filtered:
        parts.append(f"{counts.filtered:,} filtered out")
    if counts.skipped:
        parts.append(f"{counts.skipped:,} not sent (not a resource, or too large)")
    lines = [f"  {count:>7,}  invalid: {safe(reason, 300)}\n" for reason, count in invalid.most_common()]
    scanned = f"{counts.scanned:,}" + (f"/~{total:,}" if total else "")
    return "".join(lines) + f"dry run {result.run_id}: {scanned} scanned: {', '.join(parts)}; nothing sent\n"


def _field(body: str, name: str) -> str:
    import json

    value = json.loads(body).get(name)
    return value if isinstance(value, str) else "-"
