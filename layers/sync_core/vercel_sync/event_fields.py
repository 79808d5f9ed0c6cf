"""Lambda's own fields of an event record: a malformed one makes its record invalid, or is taken as
unknown, and never fails the batch."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

STREAM_EVENT_NAMES = frozenset({"INSERT", "MODIFY", "REMOVE"})
LATEST_EPOCH_SECONDS = 253_402_300_799  # the end of 9999, the last year a datetime holds


def stream_event_name(value: Any) -> tuple[str | None, str | None]:
    """(the event name, or why it is not one)."""
    if isinstance(value, str) and value in STREAM_EVENT_NAMES:
        return value, None
    return None, "the stream record's eventName is not INSERT, MODIFY or REMOVE"


def stream_sequence_number(value: Any) -> tuple[str, str | None]:
    """(the sequence number, or "" and why it is not one): only text can be reported back to the stream."""
    if isinstance(value, str):
        return value, None
    return "", "the stream record's SequenceNumber is not a string"


def stream_created_at(value: Any) -> tuple[datetime | None, str | None]:
    """(when the change was made, or why ``ApproximateCreationDateTime`` is not a time); absent: unknown."""
    if value is None:
        return None, None
    try:
        seconds = float(value) if isinstance(value, int | float | str) and not isinstance(value, bool) else math.nan
    except (ValueError, OverflowError):  # an integer too large for a float: 10**400
        seconds = math.nan
    if not 0 <= seconds <= LATEST_EPOCH_SECONDS:  # NaN too
        return None, "the stream record's ApproximateCreationDateTime is not a time in epoch seconds"
    return datetime.fromtimestamp(seconds, UTC), None


def sqs_attributes(record: Mapping[str, Any]) -> Mapping[str, Any]:
    """An SQS record's ``attributes`` (empty when it has none, or they are not an object)."""
    attributes = record.get("attributes")
    return attributes if isinstance(attributes, Mapping) else {}


def sqs_receive_count(record: Mapping[str, Any]) -> int:
    """``ApproximateReceiveCount`` (1 when it is missing or not a count)."""
    try:
        return int(sqs_attributes(record).get("ApproximateReceiveCount") or 1)
    except (TypeError, ValueError, OverflowError):
        return 1


def event_source_arn(record: Any) -> str | None:
    arn = record.get("eventSourceARN") if isinstance(record, Mapping) else None
    return arn if isinstance(arn, str) else None


REPAIR_ATTRIBUTE = "repair"


def sqs_repair_marker(record: Mapping[str, Any]) -> bool:
    """A reconcile run's repair (message attribute ``repair`` = ``true``): sent because Vercel differs
    from the partner, so it must not be skipped as unchanged (docs/operations.md, "Reconcile")."""
    attributes = record.get("messageAttributes")
    marker = attributes.get(REPAIR_ATTRIBUTE) if isinstance(attributes, Mapping) else None
    return isinstance(marker, Mapping) and marker.get("stringValue") == "true"


def sqs_message_group(record: Mapping[str, Any]) -> str | None:
    group = sqs_attributes(record).get("MessageGroupId")
    return group if isinstance(group, str) else None


def sqs_fields_problem(record: Mapping[str, Any]) -> str | None:
    """Why the SQS record's own fields make it invalid, if they do: without ``attributes`` its receive
    count is unknown; with a ``MessageGroupId`` that is not text, its FIFO group (and so its order)."""
    attributes = record.get("attributes")
    if not isinstance(attributes, Mapping):
        return "the SQS record has no attributes"
    if not isinstance(attributes.get("MessageGroupId", ""), str):
        return "the SQS record's MessageGroupId is not a string"
    return None
