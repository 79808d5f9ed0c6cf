"""``python -m operations replay-stream-failures``: the stream's on-failure destination, replayed.

    python -m operations replay-stream-failures [--queue-url URL] [--apply [--discard-gone]]

When StreamSyncFunction gives up on a batch (after its retries, or once the records are older
than the mapping's maximum age), Lambda sends the stream-failure queue a message with the
batch's *position* only: stream, shard, first and last sequence numbers. The records stay in
the stream for 24 hours from when they were written. This command reads each range back with
``GetShardIterator(AT_SEQUENCE_NUMBER)`` and ``GetRecords``, and syncs its records in order
through the functions' sync path (failed-records queue on: a record failing for good is parked
there with its whole content, which the stream would soon forget). A message is deleted once
every record of its range is done; one whose range hit a transient failure stays.

A range the stream no longer holds cannot be read: backfill the table instead (change
suppression skips what Vercel already has), then ``--apply --discard-gone`` deletes those
messages. Dry run by default: it reads the ranges and reports, changing nothing.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TextIO

from operations.redrive import SYNCED, describe_outcomes
from operations.replay import FailedMessage, FailedRecordsQueue
from operations.text import safe
from vercel_sync.errors import TransientSyncError

GONE_ERRORS = frozenset({"TrimmedDataAccessException", "ExpiredIteratorException", "ResourceNotFoundException"})
MAX_READS_PER_RANGE = 1000
MAX_EMPTY_READS = 5


@dataclass(frozen=True)
class StreamRange:
    stream_arn: str
    shard_id: str
    start: str
    end: str
    batch_size: int

    @property
    def table_name(self) -> str:
        # arn:aws:dynamodb:REGION:ACCOUNT:table/NAME/stream/LABEL
        parts = self.stream_arn.split("/")
        return parts[1] if len(parts) > 1 else "?"

    def describe(self) -> str:
        return f"{self.table_name} {self.shard_id} {self.start}..{self.end} ({self.batch_size} records)"


def stream_range(document: Mapping[str, Any] | None) -> StreamRange | None:
    info = (document or {}).get("DDBStreamBatchInfo")
    if not isinstance(info, Mapping):
        return None
    try:
        return StreamRange(
            stream_arn=str(info["streamArn"]),
            shard_id=str(info["shardId"]),
            start=str(info["startSequenceNumber"]),
            end=str(info["endSequenceNumber"]),
            batch_size=int(info.get("batchSize", 0)),
        )
    except (KeyError, TypeError, ValueError):
        return None


class RangeGoneError(Exception):
    """The stream no longer holds the range (past its 24 h retention, or the stream is gone)."""


def read_range(streams: Any, position: StreamRange) -> list[dict[str, Any]]:
    """The GetRecords records from ``start`` to ``end`` (inclusive), in order."""
    try:
        iterator = streams.get_shard_iterator(
            StreamArn=position.stream_arn,
            ShardId=position.shard_id,
            ShardIteratorType="AT_SEQUENCE_NUMBER",
            SequenceNumber=position.start,
        )["ShardIterator"]
        records: list[dict[str, Any]] = []
        empty_reads = 0
        for _ in range(MAX_READS_PER_RANGE):
            if not iterator:
                break
            response = streams.get_records(ShardIterator=iterator, Limit=1000)
            page = response.get("Records", [])
            empty_reads = 0 if page else empty_reads + 1
            for record in page:
                if int(record["dynamodb"]["SequenceNumber"]) > int(position.end):
                    return records
                records.append(record)
            if records and records[-1]["dynamodb"]["SequenceNumber"] == position.end:
                return records
            if empty_reads >= MAX_EMPTY_READS:
                break
            iterator = response.get("NextShardIterator")
        return records
    except Exception as exc:
        code = getattr(exc, "response", {}).get("Error", {}).get("Code")
        if code in GONE_ERRORS:
            raise RangeGoneError(str(code)) from None
        raise


@dataclass
class RangeOutcome:
    message: FailedMessage
    position: StreamRange | None
    state: str  # "done", "gone", "failed again", "unreadable", "in stream" (dry run)
    detail: str = ""
    records: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)  # what the sync reported, per record

    @property
    def synced(self) -> int:
        return sum(count for outcome, count in self.outcomes.items() if outcome in SYNCED)

    def breakdown(self) -> str:
        """Each record's fate, counted: ``4 imported, 1 parked in the failed-records queue``."""
        counts = Counter(self.outcomes)
        tried = sum(counts.values())
        if self.state == "failed again":
            counts["failed transiently"] += 1
            tried += 1
        if self.records > tried:
            counts["not tried yet"] = self.records - tried
        return describe_outcomes(counts)


def replay_range(
    streams: Any, message: FailedMessage, sync: Callable[[Mapping[str, Any], str], str] | None
) -> RangeOutcome:
    """Read one message's range; with ``sync`` (apply), sync its records in order until one is not done."""
    position = stream_range(message.document)
    if position is None:
        return RangeOutcome(message, None, "unreadable", "not a stream on-failure message")
    try:
        records = read_range(streams, position)
    except RangeGoneError as exc:
        return RangeOutcome(message, position, "gone", f"{exc.args[0]}: backfill table {position.table_name}")
    except Exception as exc:  # noqa: BLE001 - reported; the message stays
        return RangeOutcome(message, position, "unreadable", f"cannot read the range ({type(exc).__name__})")
    if not records:
        return RangeOutcome(message, position, "gone", f"no records found: backfill table {position.table_name}")
    if sync is None:
        return RangeOutcome(message, position, "in stream", records=len(records))
    outcome = RangeOutcome(message, position, "done", records=len(records))
    for record in records:
        try:
            outcome.outcomes[sync(record, position.stream_arn)] += 1
        except TransientSyncError as exc:
            outcome.state, outcome.detail = "failed again", exc.message
            return outcome
    return outcome


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "replay-stream-failures",
        help="re-read the stream ranges the stream function gave up on, and sync them",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--queue-url", help="the stream-failure queue (default: $STREAM_FAILURE_QUEUE_URL)")
    parser.add_argument("--apply", action="store_true", help="sync the ranges still in the stream (default: dry run)")
    parser.add_argument(
        "--discard-gone",
        action="store_true",
        help="with --apply: delete the messages whose range the stream no longer holds (after a backfill)",
    )
    parser.add_argument("--wait-seconds", type=int, default=1, help="long polling of each receive (0 locally)")
    parser.set_defaults(run=run)


def run(
    args: argparse.Namespace,
    *,
    out: TextIO | None = None,
    err: TextIO | None = None,
    sqs: Any = None,
    streams: Any = None,
) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    queue_url = args.queue_url or os.environ.get("STREAM_FAILURE_QUEUE_URL")
    if not queue_url:
        err.write("replay-stream-failures: give --queue-url or set STREAM_FAILURE_QUEUE_URL\n")
        return 2
    if args.discard_gone and not args.apply:
        err.write("replay-stream-failures: --discard-gone deletes messages; it needs --apply too\n")
        return 2
    import boto3

    sqs = sqs or boto3.client("sqs")
    streams = streams or boto3.client("dynamodbstreams")
    queue = FailedRecordsQueue(sqs, queue_url, wait_seconds=args.wait_seconds)
    messages = queue.receive_all(lease_seconds=300 if args.apply else 60)
    out.write(f"{len(messages)} message(s) in the stream-failure queue\n")

    sync: Callable[[Mapping[str, Any], str], str] | None = None
    if args.apply and messages:
        from operations.redrive import build_service, change_from_stream_record, sync_change

        try:
            service = build_service(os.environ, park_failures=True)
        except Exception as exc:
            queue.release(messages)
            from vercel_sync.errors import ConfigurationError

            if isinstance(exc, ConfigurationError):
                err.write(f"replay-stream-failures: the functions' settings: {exc}\n")
                return 2
            raise

        def sync(record: Mapping[str, Any], stream_arn: str) -> str:
            return sync_change(service, change_from_stream_record(record, stream_arn))

    deleted: set[str] = set()
    outcomes: Counter[str] = Counter()
    try:
        for message in sorted(messages, key=lambda m: (m.document or {}).get("timestamp", "")):
            outcome = replay_range(streams, message, sync)
            where = outcome.position.describe() if outcome.position else safe(message.message_id)
            line = f"  {where}: {outcome.state}"
            outcomes.update(outcome.outcomes)
            if outcome.records and outcome.state != "in stream":
                line += f" ({outcome.synced} of {outcome.records} synced): {outcome.breakdown()}"
            elif outcome.records:
                line += f" ({outcome.records} records readable)"
            out.write(line + (f": {safe(outcome.detail, 300)}" if outcome.detail else "") + "\n")
            if args.apply and (outcome.state == "done" or (outcome.state == "gone" and args.discard_gone)):
                queue.delete(message)
                deleted.add(message.message_id)
    finally:
        queue.release([m for m in messages if m.message_id not in deleted])
    if not args.apply:
        out.write("dry run: nothing synced or deleted; add --apply to sync the ranges still in the stream\n")
        return 0
    kept = len(messages) - len(deleted)
    if outcomes:
        out.write(f"records: {describe_outcomes(outcomes)}\n")
    out.write(f"{len(deleted)} message(s) done and deleted; {kept} kept in the queue\n")
    return 0 if not kept else 1
