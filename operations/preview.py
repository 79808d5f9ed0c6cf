"""python -m operations preview --mapping FILE (--items FILE | --table NAME | --queue URL): what the sync
would make of your items through a partner mapping, before you deploy it.

For each item: the Import Resource payload that would be sent (a resource secret is named, never
read), or why the item is invalid, or that it is not a resource; then the count of each. Exits 1
when any item is invalid, so it can gate a deploy. --items reads a JSON array of items (or the
output of `aws dynamodb scan`); --table scans the first --limit items; --queue peeks at up to
--limit messages without consuming them (received with a visibility timeout of 0, never deleted).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from operations.text import safe
from vercel_sync.errors import PermanentSyncError
from vercel_sync.mapping import MappingError, NotAResourceError, PartnerMapping, read_mapping_file
from vercel_sync.transform import build_import_body, needs_secrets, parse_partner_record, unwrap_message_body

DEFAULT_LIMIT = 25
OUTCOMES = ("would send", "invalid", "not a resource")


@dataclass(frozen=True)
class Sample:
    """One item to preview: where it came from, and the item (or why it could not be read)."""

    label: str
    item: Mapping[str, Any] | None
    unreadable: str | None = None


@dataclass(frozen=True)
class Verdict:
    outcome: str  # one of OUTCOMES
    detail: str  # the payload's JSON, or the reason


def preview_item(item: Mapping[str, Any], mapping: PartnerMapping) -> Verdict:
    try:
        record = parse_partner_record(item, mapping=mapping)
        unread = needs_secrets(record, removed=False)
        shown = record.model_copy(update={"secrets_arn": None}) if unread else record
        body = build_import_body(shown)[1]
    except NotAResourceError:
        return Verdict("not a resource", "")
    except PermanentSyncError as error:
        return Verdict("invalid", error.message)
    if unread:
        body["secrets"] = f"(from the secret {record.secrets_arn}: not read by the preview)"
    return Verdict("would send", json.dumps(body, ensure_ascii=False, sort_keys=True))


def items_from_file(path: Path) -> Iterator[Sample]:
    """A JSON array of items, or ``aws dynamodb scan``'s output (``{"Items": [typed items]}``)."""
    document = json.loads(path.read_text(encoding="utf-8"))
    typed = isinstance(document, dict) and isinstance(document.get("Items"), list)
    if typed:
        document = document["Items"]
    if not isinstance(document, list):
        raise ValueError('expected a JSON array of items, or {"Items": [...]} as `aws dynamodb scan` prints')
    for index, item in enumerate(document, 1):
        label = f"item {index}"
        if not isinstance(item, dict):
            yield Sample(label, None, "not an object")
        elif typed:
            yield _typed_sample(label, item)
        else:
            yield Sample(label, item)


def _typed_sample(label: str, typed: Mapping[str, Any]) -> Sample:
    """A typed item of ``aws dynamodb scan`` (``{"name": {"S": "x"}}``), or why boto3 cannot read it."""
    from boto3.dynamodb.types import TypeDeserializer

    deserializer = TypeDeserializer()
    try:
        return Sample(label, {name: deserializer.deserialize(value) for name, value in typed.items()})
    except (TypeError, AttributeError, ValueError, ArithmeticError) as error:
        return Sample(label, None, f"not a DynamoDB item ({type(error).__name__}: {error})")


def items_from_table(table: str, limit: int, client: Any = None) -> Iterator[Sample]:
    from vercel_sync.adapters.partner_table import DynamoDBScanner

    scanner, start, seen = DynamoDBScanner(table, client=client), None, 0
    while seen < limit:
        page = scanner.scan_page(0, 1, start, min(limit - seen, 100))
        for scanned in page.items[: limit - seen]:
            seen += 1
            yield Sample(f"key {json.dumps(scanned.key, sort_keys=True)}", scanned.item)
        if page.last_key is None:
            return
        start = page.last_key


def items_from_queue(queue_url: str, limit: int, sqs: Any) -> Iterator[Sample]:
    """Up to ``limit`` distinct messages, each left in the queue and visible at once (VisibilityTimeout=0)."""
    seen: set[str] = set()
    idle_rounds = 0
    while len(seen) < limit and idle_rounds < 3:  # a peek sees a random sample: a few rounds with nothing new end it
        response = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=min(10, limit - len(seen)), VisibilityTimeout=0, WaitTimeSeconds=0
        )
        new = [m for m in response.get("Messages", []) if m["MessageId"] not in seen]
        idle_rounds = 0 if new else idle_rounds + 1
        for message in new[: limit - len(seen)]:
            seen.add(message["MessageId"])
            yield _message_sample(message)


def _message_sample(message: Mapping[str, Any]) -> Sample:
    label = f"message {message['MessageId']}"
    try:
        return Sample(label, unwrap_message_body(message.get("Body", "")))
    except PermanentSyncError as error:
        return Sample(label, None, error.message)


def report(samples: Iterator[Sample], mapping: PartnerMapping, out: TextIO) -> Counter[str]:
    counts: Counter[str] = Counter()
    for sample in samples:
        if sample.item is None:
            verdict = Verdict("invalid", sample.unreadable or "not an item")
        else:
            verdict = preview_item(sample.item, mapping)
        counts[verdict.outcome] += 1
        ids = _ids(sample.item, mapping)
        out.write(f"{safe(sample.label)}{ids}: {verdict.outcome}\n")
        if verdict.detail:
            out.write(f"  {safe(verdict.detail, 2000) if verdict.outcome == 'invalid' else verdict.detail}\n")
    total = sum(counts.values())
    out.write(f"preview: {total} item(s): " + ", ".join(f"{counts[o]} {o}" for o in OUTCOMES) + "\n")
    return counts


def _ids(item: Mapping[str, Any] | None, mapping: PartnerMapping) -> str:
    if item is None:
        return ""
    installation, resource = mapping.text(item, "integrationConfigurationId"), mapping.text(item, "resourceId")
    return f" ({safe(installation)}/{safe(resource)})" if installation or resource else ""


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "preview",
        help="show what a partner mapping makes of your items (table, queue or file) before you deploy it",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--mapping", required=True, help="the partner mapping file (YAML)")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--items", type=Path, help="a JSON file of items")
    source.add_argument("--table", help="the partner table: its first --limit items (a Scan)")
    source.add_argument("--queue", help="the partner events queue's URL: up to --limit messages, not consumed")
    parser.add_argument("--limit", type=int, default=DEFAULT_LIMIT, help=f"items to read (default {DEFAULT_LIMIT})")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, *, out: TextIO | None = None, err: TextIO | None = None, aws: Any = None) -> int:
    """``aws``: a boto3 client to use (DynamoDB for --table, SQS for --queue); else one from the environment."""
    out, err = out or sys.stdout, err or sys.stderr
    try:
        mapping = read_mapping_file(args.mapping)
    except MappingError as error:
        err.write(f"preview: {error}\n")
        return 2
    if args.limit < 1:
        err.write("preview: --limit must be at least 1\n")
        return 2
    try:
        if args.items is not None:
            samples = list(items_from_file(args.items))
        elif args.table:
            samples = list(items_from_table(args.table, args.limit, aws))
        else:
            samples = list(items_from_queue(args.queue, args.limit, aws or _sqs()))
    except (OSError, ValueError) as error:
        err.write(f"preview: cannot read the items: {safe(error)}\n")
        return 2
    except Exception as error:
        if (described := _aws_error(error)) is None:
            raise
        err.write(f"preview: cannot read the items: {safe(described, 500)}\n")
        return 2
    counts = report(iter(samples), mapping, out)
    return 1 if counts["invalid"] else 0


def _aws_error(error: Exception) -> str | None:
    """An AWS failure (no such queue or table, no credentials, no region) as one line; None: not one."""
    from botocore.exceptions import BotoCoreError, ClientError

    if isinstance(error, ClientError):
        detail = error.response.get("Error", {})
        return f"{detail.get('Code')}: {detail.get('Message')}"
    return f"{type(error).__name__}: {error}" if isinstance(error, BotoCoreError) else None


def _sqs() -> Any:
    import boto3

    return boto3.client("sqs")
