"""Lambda events -> the changes the sync takes; results -> the partial batch response (docs/architecture.md)."""

from __future__ import annotations

import dataclasses
import gc
import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.shared.dynamodb_deserializer import TypeDeserializer

from vercel_sync.changes import SourceChange, SourcePosition
from vercel_sync.deadline import Deadline, time_left_ms
from vercel_sync.errors import InvalidRecordError
from vercel_sync.event_fields import (
    event_source_arn,
    sqs_fields_problem,
    sqs_message_group,
    sqs_receive_count,
    sqs_repair_marker,
    stream_created_at,
    stream_event_name,
    stream_sequence_number,
)
from vercel_sync.ports import SourceQueue
from vercel_sync.sync.plan import RecordResult
from vercel_sync.transform import MAX_NESTING, json_safe, unwrap_message_body

if TYPE_CHECKING:
    from vercel_sync.sync.service import SyncService


def handle_stream_event(event: dict[str, Any], context: Any, service: SyncService) -> dict[str, Any]:
    records = event.get("Records")
    if not records:
        return {"batchItemFailures": []}
    results = _sync(records, change_from_stream_record, context, service)
    for record, result in zip(records, results, strict=True):
        if result.failed:  # records are in shard order: the first failure is the earliest
            stream = record.get("dynamodb")
            sequence_number = stream.get("SequenceNumber") if isinstance(stream, Mapping) else None
            return {"batchItemFailures": [{"itemIdentifier": sequence_number}]}
    return {"batchItemFailures": []}


def handle_queue_event(event: dict[str, Any], context: Any, service: SyncService) -> dict[str, Any]:
    records = event.get("Records")
    if not records:
        return {"batchItemFailures": []}
    results = _sync(records, change_from_sqs_record, context, service)
    fifo = (event_source_arn(records[0]) or "").endswith(".fifo")
    reported = _reported(records, results, fifo=fifo)
    # Neither step is needed: without time for them, a message comes back after its visibility timeout.
    # They take the time kept free after every call for parking a record (one SQS call): a wait for the
    # rate limit ends leaving it, unless another record is parked in those last seconds.
    source_queue = service.adapters.source_queue
    deadline = Deadline(time_left_ms(context), service.tuning.time_budget, time.monotonic)
    if source_queue is not None and deadline.allows("park"):
        with deadline.limit("park"):
            if not fifo:  # a FIFO message sent again would go behind its group's later ones
                resent = _resend_messages_that_waited_before(source_queue, records, results, reported)
                reported = [index for index in reported if index not in resent]
            _defer_messages_sent_back(source_queue, records, results, reported)
    return {"batchItemFailures": [{"itemIdentifier": records[index].get("messageId")} for index in reported]}


# A message sent back for the rate limit a second time is sent again as a new message (receive count 0),
# so waiting for the limit spends at most two receives of any message (docs/architecture.md, "Bursts").
RESEND_FROM_RECEIVE = 2


def _resend_messages_that_waited_before(
    source_queue: SourceQueue, records: Sequence[Mapping[str, Any]], results: list[RecordResult], reported: list[int]
) -> set[int]:
    """The reported standard-queue messages SQS took again: those that only waited for the rate limit,
    received before, delayed until a call is expected free. Their originals are then deleted by Lambda."""
    by_queue: dict[str, list[int]] = defaultdict(list)
    for index in reported:
        record, error = records[index], results[index].error
        queue_arn, body = event_source_arn(record), record.get("body")
        if (
            error is not None
            and error.rate_limited
            and sqs_receive_count(record) >= RESEND_FROM_RECEIVE
            and queue_arn
            and isinstance(body, str)
        ):
            by_queue[queue_arn].append(index)
    resent: set[int] = set()
    for queue_arn, indexes in by_queue.items():
        messages = []
        for index in indexes:
            attributes = records[index].get("messageAttributes")
            error = results[index].error
            when = error.retry_after_seconds if error is not None else None
            messages.append(
                (records[index]["body"], attributes if isinstance(attributes, Mapping) else {}, when or 0.0)
            )
        resent.update(indexes[position] for position in source_queue.resend(queue_arn, messages))
    return resent


def _sync(
    records: list[Any], change_from: Callable[[Any], SourceChange], context: Any, service: SyncService
) -> list[RecordResult]:
    """The records' results. The objects alive at the start (a large event's parsed JSON) are kept out
    of the cyclic collector's passes meanwhile: each full pass walked them all again."""
    gc.freeze()
    try:
        return service.sync_batch([change_from(record) for record in records], time_left_ms=time_left_ms(context))
    finally:
        gc.unfreeze()


def _reported(records: Sequence[Mapping[str, Any]], results: list[RecordResult], *, fifo: bool) -> list[int]:
    """The records to report: each failure, and in a FIFO queue every later record of its group."""
    failed_groups: set[str] = set()
    reported: list[int] = []
    for index, (record, result) in enumerate(zip(records, results, strict=True)):
        group = sqs_message_group(record) if fifo else None
        if result.failed or (group and group in failed_groups):
            reported.append(index)
            if group:
                failed_groups.add(group)
    return reported


def _defer_messages_sent_back(
    source_queue: SourceQueue, records: Sequence[Mapping[str, Any]], results: list[RecordResult], reported: list[int]
) -> None:
    """Reported messages told when to come back are made visible then; a FIFO group's all with its first."""
    by_group: dict[str, float | None] = {}
    for record, result in zip(records, results, strict=True):
        group = sqs_message_group(record)
        if group is not None and result.error is not None:
            by_group.setdefault(group, result.error.retry_after_seconds)  # the group's first failure decides
    by_queue: dict[str, list[tuple[str, float]]] = defaultdict(list)
    for index in reported:
        record, error = records[index], results[index].error
        group = sqs_message_group(record)
        when = by_group.get(group) if group is not None else (error.retry_after_seconds if error else None)
        receipt_handle, queue_arn = record.get("receiptHandle"), event_source_arn(record)
        if when is not None and isinstance(receipt_handle, str) and queue_arn:
            by_queue[queue_arn].append((receipt_handle, when))
    for queue_arn, messages in by_queue.items():
        source_queue.defer(queue_arn, messages)


def change_from_stream_record(record: Mapping[str, Any]) -> SourceChange:
    """A Lambda DynamoDB stream record -> the change; a malformed event field makes it invalid, image kept."""
    stream = record.get("dynamodb")
    if not isinstance(stream, Mapping):
        stream = None
    event_name, name_problem = stream_event_name(record.get("eventName"))
    created_at, time_problem = stream_created_at(stream.get("ApproximateCreationDateTime") if stream else None)
    sequence_number, sequence_problem = stream_sequence_number(stream.get("SequenceNumber") if stream else "")
    position = SourcePosition(
        kind="dynamodb-stream",
        event_source_arn=event_source_arn(record),
        item_identifier=sequence_number,
        event_name=event_name,
        created_at=created_at,
    )
    change = _stream_change(position, stream, removed=event_name == "REMOVE")
    problem = name_problem or time_problem or sequence_problem
    return change if problem is None else dataclasses.replace(change, decode_error=problem)


def _stream_change(position: SourcePosition, stream: Mapping[str, Any] | None, *, removed: bool) -> SourceChange:
    which = "OldImage" if removed else "NewImage"
    image = (stream.get(which) or {}) if stream else None
    if image:
        try:
            return SourceChange(position, decode_stream_image(image), removed, json_ready=True)
        except Exception:  # noqa: BLE001, S110 - not the usual image: read below, the library's way  # nosec B110
            pass
    try:
        decoded = {name: _DESERIALIZER.deserialize(value) for name, value in image.items()} if image else None
    except Exception as exc:  # noqa: BLE001 - a malformed image is an invalid record, not a crash
        return SourceChange(position, None, removed, decode_error=f"unreadable stream image ({type(exc).__name__})")
    if not decoded:
        problem = f"stream record has no {which}; the stream view type must be NEW_AND_OLD_IMAGES"
        return SourceChange(position, None, removed, decode_error=problem)
    try:
        item = json_safe(decoded)
    except InvalidRecordError as error:  # kept with the image its ids are read from
        return SourceChange(position, decoded, removed, decode_error=error.message)
    return SourceChange(position, item, removed, json_ready=True)


def change_from_sqs_record(raw: Mapping[str, Any]) -> SourceChange:
    """A Lambda SQS record -> the change; one whose own fields are malformed, or without a ``body``, is invalid."""
    position = SourcePosition(
        kind="sqs",
        event_source_arn=event_source_arn(raw),
        item_identifier=str(raw.get("messageId") or ""),
        message_group_id=sqs_message_group(raw),
        receive_count=sqs_receive_count(raw),
    )
    problem = sqs_fields_problem(raw)
    if raw.get("body") is None:
        return SourceChange(position, None, decode_error=problem or "the SQS record has no body")
    try:
        item = unwrap_message_body(raw["body"])
    except InvalidRecordError as error:
        return SourceChange(position, None, decode_error=problem or error.message)
    return SourceChange(position, item, decode_error=problem, repair=sqs_repair_marker(raw))


_DESERIALIZER = TypeDeserializer()
_SIMPLE_INT_DIGITS = 18  # an integer this short is exact as an int, Decimal or not


def decode_stream_image(attributes: Mapping[str, Any], depth: int = 1) -> dict[str, Any]:
    """``json_safe`` of the deserialized image, in one pass; raises on anything else, which
    :func:`_stream_change` then reads the library's way (so errors stay as they were)."""
    item: dict[str, Any] = {}
    for name, value in attributes.items():
        if type(value) is dict and len(value) == 1:  # a string, the usual attribute, inline
            text = value.get("S")
            if type(text) is str:
                item[name] = text
                continue
        item[name] = _attribute(value, depth)
    return item


def _attribute(value: Any, depth: int) -> Any:
    if type(value) is not dict or len(value) != 1:
        raise _NotSimpleError
    ((tag, raw),) = value.items()
    if tag == "S" or tag == "BOOL" or tag == "B":  # as they are, as the deserializer returns them
        if type(raw) is str or type(raw) is bool:
            return raw
        raise _NotSimpleError
    if tag == "NULL":
        return None
    if depth > MAX_NESTING:
        raise _NotSimpleError  # json_safe's depth rule: the slow path gives its error
    if tag == "N":
        if type(raw) is str and len(raw) <= _SIMPLE_INT_DIGITS and raw.isdigit() and raw.isascii():
            return int(raw)
        return json_safe(_DESERIALIZER.deserialize(value), depth)
    if tag == "M":
        if type(raw) is not dict:
            raise _NotSimpleError
        return decode_stream_image(raw, depth + 1)
    if tag == "L":
        if type(raw) is not list:
            raise _NotSimpleError
        depth += 1
        return [_attribute(item, depth) for item in raw]
    return json_safe(_DESERIALIZER.deserialize(value), depth)  # sets; an unknown tag raises there


class _NotSimpleError(Exception):
    pass
