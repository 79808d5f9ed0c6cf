"""``python -m operations replay``: the failed-records queue, grouped, and re-driven once the cause is fixed.

    python -m operations replay [--queue-url URL] [--reason R]... [--installation ID]...
        [--resource ID]... [--list] [--apply | --apply --discard]

Dry run by default: it reads every message (each stays invisible to others for a few seconds
and is then released), prints how many wait per reason and per installation, and what the
chosen ones are. ``--apply`` re-drives the chosen ones through the sync path, oldest first, and
deletes each message only once its record is done (imported, or skipped as unchanged or stale);
one that fails again stays in the queue, unchanged, for the next replay. ``--discard`` deletes
the chosen ones without re-driving them (when the partner has since sent a corrected change).

It runs the functions' sync code in this process, so it needs their environment variables
(``VERCEL_API_URL``, ``VERCEL_TOKEN_SECRET_ID``, ``RESOURCE_SECRET_PREFIX``, ``SYNC_STATE_TABLE``,
``VERCEL_RATE_LIMIT``) and read access to the tokens: see docs/operations.md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TextIO

from operations.progress import ProgressDisplay, Status
from operations.text import safe
from vercel_sync.errors import TransientSyncError

UNREADABLE = "(unreadable message)"
DEFAULT_MAX_MESSAGES = 10_000
SURVEY_LEASE_SECONDS = 30
APPLY_LEASE_SECONDS = 300


@dataclass
class FailedMessage:
    message_id: str
    receipt_handle: str
    document: dict[str, Any] | None  # the failed-records message, None if not JSON
    received_at: float

    @property
    def reason(self) -> str:
        reason = (self.document or {}).get("reason")
        return reason if isinstance(reason, str) and reason else UNREADABLE

    @property
    def installation_id(self) -> str:
        value = (self.document or {}).get("integrationConfigurationId")
        return value if isinstance(value, str) else "-"

    @property
    def resource_id(self) -> str:
        value = (self.document or {}).get("resourceId")
        return value if isinstance(value, str) else "-"

    @property
    def failed_at(self) -> str:
        value = (self.document or {}).get("failedAt")
        return value if isinstance(value, str) else ""

    @property
    def replayable(self) -> bool:
        return isinstance((self.document or {}).get("record"), Mapping)


@dataclass(frozen=True)
class Selection:
    reasons: frozenset[str] = frozenset()
    installations: frozenset[str] = frozenset()
    resources: frozenset[str] = frozenset()

    def __contains__(self, message: FailedMessage) -> bool:
        return (
            (not self.reasons or message.reason in self.reasons)
            and (not self.installations or message.installation_id in self.installations)
            and (not self.resources or message.resource_id in self.resources)
        )

    def describe(self) -> str:
        parts = [
            f"{name} {', '.join(sorted(values))}"
            for name, values in (
                ("reason", self.reasons),
                ("installation", self.installations),
                ("resource", self.resources),
            )
            if values
        ]
        return "; ".join(parts) if parts else "all"


class FailedRecordsQueue:
    """The failed-records queue, read whole: every message received (held invisible), then each
    deleted or released (made visible again at once)."""

    def __init__(
        self, sqs: Any, queue_url: str, *, wait_seconds: int = 1, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.sqs = sqs
        self.queue_url = queue_url
        # Long polling asks every SQS server, so an empty answer means the queue is empty.
        self.wait_seconds = wait_seconds
        self.now = clock

    def receive_all(self, *, lease_seconds: int, max_messages: int = DEFAULT_MAX_MESSAGES) -> list[FailedMessage]:
        messages: dict[str, FailedMessage] = {}
        while len(messages) < max_messages:
            batch = self.sqs.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=min(10, max_messages - len(messages)),
                VisibilityTimeout=lease_seconds,
                WaitTimeSeconds=self.wait_seconds,
            ).get("Messages", [])
            if not batch:
                break
            for raw in batch:
                messages[raw["MessageId"]] = FailedMessage(
                    message_id=raw["MessageId"],
                    receipt_handle=raw["ReceiptHandle"],
                    document=_parse(raw.get("Body", "")),
                    received_at=self.now(),
                )
        return list(messages.values())

    def delete(self, message: FailedMessage) -> None:
        self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message.receipt_handle)

    def release(self, messages: Iterable[FailedMessage]) -> None:
        self._set_visibility(list(messages), 0)

    def extend(self, messages: Sequence[FailedMessage], seconds: int) -> None:
        self._set_visibility(list(messages), seconds)
        now = self.now()
        for message in messages:
            message.received_at = now

    def _set_visibility(self, messages: list[FailedMessage], seconds: int) -> None:
        for start in range(0, len(messages), 10):
            chunk = messages[start : start + 10]
            self.sqs.change_message_visibility_batch(
                QueueUrl=self.queue_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m.receipt_handle, "VisibilityTimeout": seconds}
                    for i, m in enumerate(chunk)
                ],
            )


def _parse(body: str) -> dict[str, Any] | None:
    try:
        document = json.loads(body)
    except ValueError:
        return None
    return document if isinstance(document, dict) else None


def grouped(messages: Sequence[FailedMessage]) -> tuple[Counter[str], Counter[str]]:
    return Counter(m.reason for m in messages), Counter(m.installation_id for m in messages)


def print_groups(messages: Sequence[FailedMessage], out: TextIO, *, limit: int = 20) -> None:
    by_reason, by_installation = grouped(messages)
    out.write(f"{len(messages)} message(s) in the failed-records queue\n")
    if not messages:
        return
    out.write("by reason:\n")
    for reason, count in by_reason.most_common():
        out.write(f"  {count:>7,}  {safe(reason)}\n")
    out.write("by installation:\n")
    for installation, count in by_installation.most_common(limit):
        out.write(f"  {count:>7,}  {safe(installation)}\n")
    if len(by_installation) > limit:
        out.write(f"  ... and {len(by_installation) - limit} more installations\n")


def print_list(messages: Sequence[FailedMessage], out: TextIO) -> None:
    for m in messages:
        detail = (m.document or {}).get("detail")
        out.write(
            f"  {safe(m.failed_at) or '-':25} {safe(m.reason):26} {safe(m.installation_id)}/{safe(m.resource_id)}"
            f"  {safe(detail, 160) if detail else ''}\n"
        )


@dataclass
class ReplayOutcome:
    message: FailedMessage
    outcome: str  # what the sync returned, or "failed again" / "not replayable" / "discarded"
    detail: str = ""

    @property
    def done(self) -> bool:
        return self.outcome not in {"failed again", "not replayable", "error"}


Redrive = Callable[[Mapping[str, Any]], str]


def replay(
    queue: FailedRecordsQueue,
    chosen: Sequence[FailedMessage],
    redrive: Redrive,
    *,
    lease_seconds: int = APPLY_LEASE_SECONDS,
    on_outcome: Callable[[ReplayOutcome], None] = lambda outcome: None,
) -> list[ReplayOutcome]:
    """Re-drive each chosen message, oldest first; delete it once done, keep it otherwise.

    ``redrive(document)`` returns the sync's outcome or raises ``TransientSyncError`` (not done).
    The messages still waiting are kept invisible (their lease renewed) until their turn.
    """
    outcomes: list[ReplayOutcome] = []
    ordered = sorted(chosen, key=lambda m: m.failed_at)
    for index, message in enumerate(ordered):
        waiting = ordered[index:]
        if queue.now() - min(m.received_at for m in waiting) > lease_seconds / 2:
            queue.extend(waiting, lease_seconds)
        if not message.replayable:
            result = ReplayOutcome(message, "not replayable", "the message holds no record (see its detail)")
        else:
            assert message.document is not None
            try:
                result = ReplayOutcome(message, redrive(message.document))
            except TransientSyncError as exc:
                result = ReplayOutcome(message, "failed again", exc.message)
            except Exception as exc:  # noqa: BLE001 - reported; the message stays for another try
                result = ReplayOutcome(message, "error", f"unexpected {type(exc).__name__}")
        if result.done:
            queue.delete(message)
        outcomes.append(result)
        on_outcome(result)
    queue.release([o.message for o in outcomes if not o.done])
    return outcomes


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "replay",
        help="show the failed-records queue grouped by reason and installation; re-drive the chosen ones",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--queue-url", help="the failed-records queue (default: $FAILED_RECORDS_QUEUE_URL)")
    parser.add_argument("--reason", action="append", default=[], help="only this reason (repeatable)")
    parser.add_argument("--installation", action="append", default=[], help="only this installation (repeatable)")
    parser.add_argument("--resource", action="append", default=[], help="only this resource id (repeatable)")
    parser.add_argument("--list", action="store_true", help="list the chosen messages (time, reason, ids, detail)")
    parser.add_argument("--apply", action="store_true", help="re-drive the chosen messages (default: dry run)")
    parser.add_argument(
        "--discard", action="store_true", help="with --apply: delete the chosen messages without re-driving them"
    )
    parser.add_argument("--max-messages", type=int, default=DEFAULT_MAX_MESSAGES, help="read at most this many")
    parser.add_argument(
        "--wait-seconds", type=int, default=1, help="long polling of each receive (default 1; 0 is enough locally)"
    )
    parser.add_argument(
        "--progress",
        choices=["auto", "bar", "lines", "off"],
        default="auto",
        help="with --apply: a bar on a terminal, a line every 5 s otherwise (auto), as the backfill's",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, *, out: TextIO | None = None, err: TextIO | None = None, sqs: Any = None) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    queue_url = args.queue_url or os.environ.get("FAILED_RECORDS_QUEUE_URL")
    if not queue_url:
        err.write("replay: give --queue-url or set FAILED_RECORDS_QUEUE_URL\n")
        return 2
    if args.discard and not args.apply:
        err.write("replay: --discard deletes messages; it needs --apply too\n")
        return 2
    if sqs is None:
        import boto3

        sqs = boto3.client("sqs")
    queue = FailedRecordsQueue(sqs, queue_url, wait_seconds=args.wait_seconds)
    selection = Selection(frozenset(args.reason), frozenset(args.installation), frozenset(args.resource))
    lease = APPLY_LEASE_SECONDS if args.apply else SURVEY_LEASE_SECONDS
    messages = queue.receive_all(lease_seconds=lease, max_messages=args.max_messages)
    chosen = [m for m in messages if m in selection]
    try:
        print_groups(messages, out)
        out.write(f"chosen ({selection.describe()}): {len(chosen)}\n")
        if args.list:
            print_list(sorted(chosen, key=lambda m: m.failed_at), out)
    finally:
        queue.release([m for m in messages if not args.apply or m not in selection])
    if not args.apply:
        out.write("dry run: nothing re-driven or deleted; add --apply to re-drive the chosen messages\n")
        return 0
    if args.discard:
        for message in chosen:
            queue.delete(message)
        out.write(f"discarded {len(chosen)} message(s) without re-driving them\n")
        return 0
    return redrive_chosen(queue, chosen, args, out, err)


def redrive_chosen(
    queue: FailedRecordsQueue, chosen: list[FailedMessage], args: argparse.Namespace, out: TextIO, err: TextIO
) -> int:
    """Each chosen message through the sync again, with progress; 0 when every one is done."""
    from operations.redrive import (
        build_service,
        change_from_failed_record,
        describe_outcomes,
        failure_detail,
        sync_change,
    )

    try:
        service = build_service(os.environ, park_failures=False)
    except Exception as exc:
        queue.release(chosen)
        from vercel_sync.errors import ConfigurationError

        if isinstance(exc, ConfigurationError):  # names the variable, never a value of a secret
            err.write(f"replay: the functions' settings: {exc}\n")
            return 2
        raise

    def redrive(document: Mapping[str, Any]) -> str:
        change = change_from_failed_record(document)
        assert change is not None  # replay() sends only replayable messages
        return sync_change(service, change)

    display = ProgressDisplay.auto(err, getattr(args, "progress", "auto"))
    started = time.monotonic()
    shown: list[ReplayOutcome] = []

    def status() -> Status:
        done = sum(o.done for o in shown)
        details = [f"{done:,} done", f"{len(shown) - done:,} still failing"]
        return Status.counted(len(shown), len(chosen), "re-driven", time.monotonic() - started, details)

    def show(outcome: ReplayOutcome) -> None:
        m = outcome.message
        verdict = "done: " + outcome.outcome if outcome.done else outcome.outcome
        display.clear()
        out.write(
            f"  {safe(m.installation_id)}/{safe(m.resource_id)} ({safe(m.reason)}): {verdict}"
            + (f": {safe(failure_detail(outcome.detail), 300)}" if outcome.detail else "")
            + "\n"
        )
        out.flush()
        shown.append(outcome)
        display.update(status())

    display.update(status())
    outcomes = replay(queue, chosen, redrive, on_outcome=show)
    display.finish(status())
    done = sum(o.done for o in outcomes)
    kept = len(outcomes) - done
    if outcomes:
        out.write(f"records: {describe_outcomes(Counter(o.outcome for o in outcomes))}\n")
    out.write(f"replayed {done} and deleted their messages; {kept} still failing, kept in the queue\n")
    return 0 if kept == 0 else 1
