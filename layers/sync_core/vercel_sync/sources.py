"""Powertools batch processing for both event sources, with the partial batch response each needs.

- DynamoDB stream: records of one shard are in order, and Lambda resumes the shard at the
  lowest sequence number reported. So the batch stops at its first failed record (the rest
  would be redelivered anyway, and sending a newer change before an older one is retried
  would go backwards) and reports that one sequence number: :class:`StreamBatchProcessor`.
- SQS FIFO: a failed message stops its message group; the rest of that group is reported
  and other groups go on (Powertools' ``SqsFifoPartialProcessor(skip_group_on_error=True)``).
- SQS standard: each failed message is reported (Powertools' ``BatchProcessor``).

The batch is synced as a whole first (:meth:`SyncService.sync_batch`: coalesced per resource,
resources concurrently); the processors then build the partial response from each record's
result. A permanent failure is not a batch failure: the pipeline parks it in the failed-records
queue and the source moves on. Only transient failures are reported back.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import time
from collections import defaultdict, deque
from collections.abc import Iterator, Mapping
from typing import Any

from aws_lambda_powertools.shared.dynamodb_deserializer import TypeDeserializer
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    SqsFifoPartialProcessor,
    process_partial_response,
)
from aws_lambda_powertools.utilities.batch.base import BasePartialBatchProcessor
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import (
    DynamoDBRecord,
    StreamRecord,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from vercel_sync.changes import SourceChange, SourcePosition
from vercel_sync.deadline import Deadline
from vercel_sync.errors import InvalidRecordError, TransientSyncError
from vercel_sync.event_fields import (
    event_source_arn,
    fifo_readable,
    sqs_message_group,
    sqs_receive_count,
    stream_created_at,
    stream_event_name,
    stream_sequence_number,
)
from vercel_sync.ports import SourceQueue
from vercel_sync.sync.plan import RecordResult
from vercel_sync.sync.service import SyncService
from vercel_sync.transform import MAX_NESTING, json_safe, unwrap_message_body


class StreamBatchHaltedError(Exception):
    """Marks the records after a stream batch's first failure (not processed; redelivered)."""


class StreamBatchProcessor(BatchProcessor):
    """A DynamoDB stream batch that stops at its first failure and reports only that record.

    Written on Powertools' documented seam for custom processors (``_process_record`` and
    the failure collector), since Powertools reports every failed record of a stream batch and
    goes on processing after a failure.
    """

    _halted = (
        StreamBatchHaltedError,
        StreamBatchHaltedError("an earlier record of this shard failed; this one is redelivered after it"),
        None,
    )

    def __init__(self) -> None:
        super().__init__(EventType.DynamoDBStreams, raise_on_entire_batch_failure=False)

    def _process_record(self, record: dict[str, Any]) -> Any:
        if self.fail_messages:
            return self.failure_handler(record=self._to_batch_type(record, self.event_type), exception=self._halted)
        return super()._process_record(record)

    def _collect_dynamodb_failures(self) -> list[Any]:
        # Records are in shard order, so the first failure is the earliest sequence number.
        failures: list[Any] = super()._collect_dynamodb_failures()  # type: ignore[no-untyped-call]
        return failures[:1]


def queue_processor_for(event: dict[str, Any]) -> BasePartialBatchProcessor:
    records = event.get("Records") or []
    source_arn = (event_source_arn(records[0]) if records else None) or ""
    if source_arn.endswith(".fifo"):
        processor: BasePartialBatchProcessor = SqsFifoPartialProcessor(skip_group_on_error=True)
    else:
        processor = BatchProcessor(EventType.SQS)
    # A batch whose every record failed is still answered with a partial response (all
    # reported) rather than an error: same redelivery, no misleading function error.
    processor.raise_on_entire_batch_failure = False
    return processor


# The DynamoDB image decoder. Powertools' ``DynamoDBRecord.new_image`` (its ``TypeDeserializer``)
# costs about 35 µs per record here (a ``getattr``-dispatched call per attribute, a ``Decimal`` per
# number, a wrapper per access), and what it returns is then walked again by ``json_safe``. This
# one goes in one pass to exactly what ``json_safe`` makes of that deserializer's output (numbers
# as int or float, sets as sorted lists, binary as the event's base64 text) for the usual types;
# anything else (sets, odd numbers, malformed attributes) goes through the deserializer itself,
# and an image that fails here is read again the library's way, so errors stay as they were.
_DESERIALIZER = TypeDeserializer()
_SIMPLE_INT_DIGITS = 18  # an integer this short is exact as an int, Decimal or not


def decode_stream_image(image: Mapping[str, Any]) -> dict[str, Any]:
    """A stream image's attributes as JSON values (``json_safe`` of the deserialized image).

    Raises on anything the fast path does not take; :func:`change_from_stream_record` then reads the
    image the library's way for the exact outcome."""
    return _map(image, 1)


def _map(attributes: Mapping[str, Any], depth: int) -> dict[str, Any]:
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
    if tag == "S" or tag == "BOOL" or tag == "B":  # returned as they are, as the deserializer does
        if type(raw) is str or type(raw) is bool:
            return raw
        raise _NotSimpleError
    if tag == "NULL":
        return None
    if depth > MAX_NESTING:
        raise _NotSimpleError  # json_safe's depth rule: the slow path gives its error
    if tag == "N":
        # A short plain integer: int(Decimal(text)) == int(text). Anything else as the library does.
        if type(raw) is str and len(raw) <= _SIMPLE_INT_DIGITS and raw.isdigit() and raw.isascii():
            return int(raw)
        return json_safe(_DESERIALIZER.deserialize(value), depth)
    if tag == "M":
        if type(raw) is not dict:
            raise _NotSimpleError
        return _map(raw, depth + 1)
    if tag == "L":
        if type(raw) is not list:
            raise _NotSimpleError
        depth += 1
        return [_attribute(item, depth) for item in raw]
    return json_safe(_DESERIALIZER.deserialize(value), depth)  # sets; an unknown tag raises there


class _NotSimpleError(Exception):
    pass


def change_from_stream_record(record: Mapping[str, Any] | DynamoDBRecord) -> SourceChange:
    """A Lambda DynamoDB stream record (its JSON object, or Powertools' wrapper of it) -> the change.

    A malformed event field (``eventName``, ``ApproximateCreationDateTime``) makes the change an
    invalid record of its own, with its image kept where it can be read: the rest of the batch goes on.
    """
    raw: Mapping[str, Any] = record.raw_event if isinstance(record, DynamoDBRecord) else record
    stream = raw.get("dynamodb")
    if not isinstance(stream, Mapping):
        stream = None
    event_name, name_problem = stream_event_name(raw.get("eventName"))
    created_at, time_problem = stream_created_at(stream.get("ApproximateCreationDateTime") if stream else None)
    sequence_number, sequence_problem = stream_sequence_number(stream.get("SequenceNumber") if stream else "")
    position = SourcePosition(
        kind="dynamodb-stream",
        event_source_arn=event_source_arn(raw),
        item_identifier=sequence_number,
        event_name=event_name,
        created_at=created_at,
    )
    change = _stream_change(position, stream, removed=event_name == "REMOVE")
    problem = name_problem or time_problem or sequence_problem
    return change if problem is None else dataclasses.replace(change, decode_error=problem)


def _stream_change(position: SourcePosition, stream: Mapping[str, Any] | None, *, removed: bool) -> SourceChange:
    """The change a stream record's image makes (or why it makes none)."""
    image = (stream.get("OldImage" if removed else "NewImage") or {}) if stream else None
    if image:
        try:
            return SourceChange(position, decode_stream_image(image), removed, json_ready=True)
        except Exception:  # noqa: BLE001, S110 - not the usual image: read below, the library's way  # nosec B110
            pass
    try:
        decoded = (
            StreamRecord(dict(stream))._deserialize_dynamodb_dict("OldImage" if removed else "NewImage")
            if stream
            else None
        )
    except Exception as exc:  # noqa: BLE001 - a malformed image is an invalid record, not a crash
        return SourceChange(position, None, removed, decode_error=f"unreadable stream image ({type(exc).__name__})")
    if not decoded:
        which = "OldImage" if removed else "NewImage"
        return SourceChange(
            position,
            None,
            removed,
            decode_error=f"stream record has no {which}; the stream view type must be NEW_AND_OLD_IMAGES",
        )
    try:
        item = json_safe(decoded)
    except InvalidRecordError as error:  # kept with the image its ids are read from
        return SourceChange(position, decoded, removed, decode_error=error.message)
    return SourceChange(position, item, removed, json_ready=True)


def change_from_sqs_record(record: SQSRecord) -> SourceChange:
    """A Lambda SQS record -> the change. One without ``attributes`` (its message group and receive
    count unknown) or without a ``body`` is an invalid record of its own."""
    raw = record.raw_event
    position = SourcePosition(
        kind="sqs",
        event_source_arn=event_source_arn(raw),
        item_identifier=_queue_identifier(record),
        message_group_id=sqs_message_group(raw),
        receive_count=sqs_receive_count(raw),
    )
    problem = None if isinstance(raw.get("attributes"), Mapping) else "the SQS record has no attributes"
    if raw.get("body") is None:
        return SourceChange(position, None, decode_error=problem or "the SQS record has no body")
    try:
        item = unwrap_message_body(raw["body"])
    except InvalidRecordError as error:
        return SourceChange(position, None, decode_error=problem or error.message)
    return SourceChange(position, item, decode_error=problem)


def time_left_ms(context: Any) -> int | None:
    """Milliseconds left in this invocation, if the context can tell."""
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    return int(remaining()) if callable(remaining) else None


class _PrecomputedResults:
    """Each record's result from :meth:`SyncService.sync_batch`, handed to Powertools' record handler
    by the record's identifier (sequence number or message id), in order for repeats."""

    def __init__(self, identifiers: list[str], results: list[RecordResult]) -> None:
        if len(identifiers) != len(results):
            raise ValueError("one result per record")
        self._results = results
        self._next: dict[str, int] = {}  # identifier -> the index of its next result
        self._repeats: dict[str, deque[int]] = defaultdict(deque)  # the later ones of a repeated identifier
        for index, identifier in enumerate(identifiers):
            if identifier in self._next:
                self._repeats[identifier].append(index)
            else:
                self._next[identifier] = index

    def outcome(self, identifier: str) -> str:
        index = self._next.pop(identifier, None)
        if index is None:  # pragma: no cover - Powertools hands back only the records it was given
            raise TransientSyncError("record not found in the batch's results (a bug): back to the source")
        repeats = self._repeats.get(identifier)
        if repeats:
            self._next[identifier] = repeats.popleft()
        result = self._results[index]
        if result.error is not None:
            raise result.error
        return str(result.outcome)


def _queue_identifier(record: SQSRecord) -> str:
    return str(record.raw_event.get("messageId") or "")


def _stream_identifier(record: Mapping[str, Any]) -> str:
    """A Lambda stream record's sequence number (its JSON object)."""
    stream = record.get("dynamodb")
    return stream_sequence_number(stream.get("SequenceNumber") if isinstance(stream, Mapping) else "")[0]


@contextlib.contextmanager
def _collector_skips_what_exists() -> Iterator[None]:
    """The objects alive when a batch starts (the event's parsed JSON, modules, caches) are left out
    of the cyclic garbage collector's passes while the batch runs (``gc.freeze``): a 10,000-record
    event is over a million objects, and each full pass walked them all again (about 80 µs per
    record in all). Reference counting frees them as ever; they are collected again after it."""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def handle_stream_event(event: dict[str, Any], context: Any, service: SyncService) -> dict[str, Any]:
    records = event.get("Records")
    if not records:
        return {"batchItemFailures": []}  # Powertools rejects an empty batch; there is nothing to do
    with _collector_skips_what_exists():
        return _handle_stream_records(event, records, context, service)


def _handle_stream_records(
    event: dict[str, Any], records: list[Any], context: Any, service: SyncService
) -> dict[str, Any]:
    # The whole batch is synced first (coalesced per resource, resources concurrently); Powertools
    # then builds the partial response from each record's result, in shard order.
    results = service.sync_batch(
        [change_from_stream_record(record) for record in records], time_left_ms=time_left_ms(context)
    )
    precomputed = _PrecomputedResults([_stream_identifier(record) for record in records], results)
    del results

    def record_handler(record: DynamoDBRecord) -> str:
        return precomputed.outcome(_stream_identifier(record.raw_event))

    response = process_partial_response(
        event=event, record_handler=record_handler, processor=StreamBatchProcessor(), context=context
    )
    return dict(response)


def handle_queue_event(event: dict[str, Any], context: Any, service: SyncService) -> dict[str, Any]:
    records = event.get("Records")
    if not records:
        return {"batchItemFailures": []}
    with _collector_skips_what_exists():
        return _handle_queue_records(event, records, context, service)


def _handle_queue_records(
    event: dict[str, Any], records: list[Any], context: Any, service: SyncService
) -> dict[str, Any]:
    queue_records = [SQSRecord(record) for record in records]
    changes = [change_from_sqs_record(record) for record in queue_records]
    results = service.sync_batch(changes, time_left_ms=time_left_ms(context))
    precomputed = _PrecomputedResults([_queue_identifier(record) for record in queue_records], results)

    def record_handler(record: SQSRecord) -> str:
        return precomputed.outcome(_queue_identifier(record))

    processor = queue_processor_for(event)
    if isinstance(processor, SqsFifoPartialProcessor):
        event = fifo_readable(event)
    response = process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
    # Deferring decides nothing: without time for one more AWS call before the margin it is not
    # started, and a message comes back after the queue's visibility timeout instead.
    deadline = Deadline(time_left_ms(context), service.tuning.time_budget, time.monotonic)
    if service.adapters.source_queue is not None and deadline.allows_best_effort_aws_call():
        with deadline.limit("aws_read"):
            _defer_messages_sent_back(service.adapters.source_queue, queue_records, results, response)
    return dict(response)


def _defer_messages_sent_back(
    source_queue: SourceQueue, records: list[SQSRecord], results: list[RecordResult], response: Any
) -> None:
    """Reported messages that were told when to come back (the rate limit, a Retry-After) are made
    visible then rather than after the queue's whole visibility timeout. A FIFO group's reported
    messages all come back with its first, so the group is not held up by the ones behind it."""
    reported = {item["itemIdentifier"] for item in response.get("batchItemFailures", [])}
    by_group: dict[str, float | None] = {}
    delays: list[float | None] = []
    for record, result in zip(records, results, strict=True):
        delay = result.error.retry_after_seconds if result.error is not None else None
        group = sqs_message_group(record.raw_event)
        if group is not None and result.error is not None:
            by_group.setdefault(group, delay)  # the group's first failure decides for all of it
        delays.append(delay)
    by_queue: dict[str, list[tuple[str, float]]] = defaultdict(list)
    for record, delay in zip(records, delays, strict=True):
        group = sqs_message_group(record.raw_event)
        when = by_group.get(group) if group is not None else delay
        receipt_handle, queue_arn = record.raw_event.get("receiptHandle"), event_source_arn(record.raw_event)
        if when is not None and _queue_identifier(record) in reported and isinstance(receipt_handle, str) and queue_arn:
            by_queue[queue_arn].append((receipt_handle, when))
    for queue_arn, messages in by_queue.items():
        source_queue.defer(queue_arn, messages)
