"""``python -m operations reconcile``: Vercel's view of each installation against the partner table.

    python -m operations reconcile [--installation ID ...] [--apply] [--remove-orphans]
        [--table TABLE] [--queue-url URL] [--mapping FILE] [--run-id ID | --resume ID]

Dry by default: it lists each installation's resources at Vercel, reads the partner table through the
partner mapping, and prints a table (in step, missing, different, orphaned) and a line per drifted
resource. ``--apply`` sends the partner's record of each missing or different resource through the
partner events queue (marked a repair); ``--remove-orphans`` removes what the partner no longer has, by
REMOVAL_MODE. Each finished installation is checkpointed in ``.reconcile/<run id>.json``: Ctrl-C, then
``--resume RUN_ID`` goes on with the installations left.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

from operations.checkpoints import write_whole
from operations.progress import ProgressDisplay, Status
from operations.text import safe
from vercel_sync.backfill.checkpoints import validate_run_id
from vercel_sync.errors import ConfigurationError, PermanentSyncError, TransientSyncError
from vercel_sync.mapping import MappingError
from vercel_sync.reconcile.engine import InstallationOutcome, ReconcileOptions, ReconcileState
from vercel_sync.reconcile.report import differences, table
from vercel_sync.reconcile.settings import ReconcileSettings

DEFAULT_DIRECTORY = Path(".reconcile")
EXIT_INTERRUPTED = 130


class ReconcileError(Exception):
    """The run cannot start (settings, a checkpoint) or the partner table cannot be read."""


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "reconcile",
        help="compare Vercel's view of each installation with the partner table; repair when asked",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--installation", action="append", default=[], help="only this installation (repeatable; default: all)"
    )
    parser.add_argument("--apply", action="store_true", help="repair: send each missing or different resource")
    parser.add_argument(
        "--remove-orphans", action="store_true", help="remove what the partner no longer has (by REMOVAL_MODE)"
    )
    parser.add_argument("--table", help="the partner table (default: $PARTNER_TABLE_NAME)")
    parser.add_argument("--queue-url", help="the partner events queue (default: $PARTNER_EVENTS_QUEUE_URL)")
    parser.add_argument("--mapping", help="the partner mapping file (default: $PARTNER_MAPPING_FILE, else the default)")
    runs = parser.add_mutually_exclusive_group()
    runs.add_argument("--run-id", help="name the run (its checkpoint is .reconcile/<run id>.json)")
    runs.add_argument("--resume", metavar="RUN_ID", help="go on with the installations a run has left")
    parser.add_argument("--checkpoint-dir", type=Path, default=DEFAULT_DIRECTORY, help="default .reconcile/")
    parser.add_argument("--progress", choices=["auto", "bar", "lines", "off"], default="auto")
    parser.set_defaults(run=run)


class FileStates:
    """A run's state in ``<directory>/<run id>.json``, rewritten whole (write, then rename) per installation."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def path(self, run_id: str) -> Path:
        return self.directory / f"{validate_run_id(run_id)}.json"

    def load(self, run_id: str) -> ReconcileState:
        path = self.path(run_id)
        try:
            return ReconcileState.from_dict(json.loads(path.read_text()))
        except FileNotFoundError:
            raise ReconcileError(f"no checkpoint for run {run_id} ({path})") from None
        except (ValueError, KeyError, TypeError) as exc:
            raise ReconcileError(f"checkpoint {path} is unreadable ({type(exc).__name__})") from None

    def save(self, state: ReconcileState) -> None:
        write_whole(self.path(state.run_id), state.to_dict())


def run(args: argparse.Namespace, *, out: TextIO | None = None, err: TextIO | None = None) -> int:
    out, err = out or sys.stdout, err or sys.stderr
    try:
        return _run(args, out, err)
    except (ReconcileError, ConfigurationError, MappingError) as exc:
        err.write(f"reconcile: {exc}\n")
        return 2
    except (TransientSyncError, PermanentSyncError) as exc:
        err.write(f"reconcile: reading the partner table: {exc.message}\n")
        return 2


def _settings(args: argparse.Namespace) -> ReconcileSettings:
    settings = ReconcileSettings.from_env(os.environ)
    update: dict[str, Any] = {}
    if args.table:
        update["partner_table_name"] = args.table
    if args.queue_url:
        update["partner_events_queue_url"] = args.queue_url
    if args.mapping:
        update["partner_mapping_file"] = args.mapping
    settings = settings.model_copy(update=update)
    if not settings.partner_table_name:
        raise ReconcileError("name the partner table: --table, $PARTNER_TABLE_NAME or --stack-name")
    return settings


def _run(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from vercel_sync.reconcile.function import run_reconcile
    from vercel_sync.wiring import build_reconcile_parts

    settings = _settings(args)
    store = FileStates(args.checkpoint_dir)
    resumed = store.load(args.resume) if args.resume else None
    run_id = args.resume or args.run_id or f"rc-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}-{os.getpid()}"
    options = ReconcileOptions(args.apply, args.remove_orphans, settings.removal_mode)
    parts = build_reconcile_parts(settings, apply=args.apply)

    display = ProgressDisplay.auto(err, args.progress)
    started = time.monotonic()
    progress = {"total": 0, "done": 0, "drifted": 0}

    def on_start(state: ReconcileState) -> None:
        progress["total"], progress["done"] = len(state.installations), len(state.done)

    def on_outcome(outcome: InstallationOutcome) -> None:
        progress["done"] += 1
        progress["drifted"] += outcome.report.drift
        details = [f"{progress['drifted']:,} drifted"]
        elapsed = time.monotonic() - started
        display.update(Status.counted(progress["done"], progress["total"], "installations", elapsed, details))

    stop = threading.Event()
    previous = signal.signal(signal.SIGINT, _stopper(stop, err))
    try:
        state, outcomes = run_reconcile(
            parts,
            settings,
            options,
            run_id=run_id,
            resumed=resumed,
            only=args.installation,
            checkpoints=store,
            on_start=on_start,
            on_outcome=on_outcome,
            stop=stop,
        )
    finally:
        signal.signal(signal.SIGINT, previous)
    elapsed = time.monotonic() - started
    display.finish(Status.counted(progress["done"], progress["total"], "installations", elapsed, []))
    out.write(table(outcomes))
    for line in differences(outcomes):
        out.write(safe(line, 500) + "\n")
    return _closing(state, outcomes, options, store, out)


def _closing(
    state: ReconcileState,
    outcomes: list[InstallationOutcome],
    options: ReconcileOptions,
    store: FileStates,
    out: TextIO,
) -> int:
    earlier = len(state.done) - sum(1 for o in outcomes if not o.report.error)
    if earlier:
        out.write(f"{earlier} installation(s) finished in an earlier session: counts in {store.path(state.run_id)}\n")
    mode = "dry run: nothing sent" if not (options.apply or options.remove_orphans) else "repairs sent"
    left = state.pending
    if left:
        out.write(
            f"run {state.run_id}: {len(left)} installation(s) left ({mode}); resume with --resume {state.run_id}\n"
        )
        return EXIT_INTERRUPTED if not any(o.report.error for o in outcomes) else 1
    out.write(f"run {state.run_id}: every installation compared ({mode})\n")
    return 0


def _stopper(stop: threading.Event, err: TextIO) -> Any:
    def handle(_signum: int, _frame: FrameType | None) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        err.write("\nstopping after this installation (Ctrl-C again to stop at once)\n")

    return handle
