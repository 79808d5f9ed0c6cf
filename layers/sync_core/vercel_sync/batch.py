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

from collections import defaultdict, deque
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    SqsFifoPartialProcessor,
    process_partial_response,
)
from aws_lambda_powertools.utilities.batch.base import BasePartialBatchProcessor
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from vercel_sync.changes import SourceChange, SourcePosition
from vercel_sync.errors import InvalidRecordError, TransientSyncError
from vercel_sync.pipeline import RecordResult, SourceQueue, SyncService
from vercel_sync.transform import unwrap_message_body


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
    source_arn = records[0].get("eventSourceARN", "") if records and isinstance(records[0], dict) else ""
    if source_arn.endswith(".fifo"):
        processor: BasePartialBatchProcessor = SqsFifoPartialProcessor(skip_group_on_error=True)
    else:
        processor = BatchProcessor(EventType.SQS)
    # A batch whose every record failed is still answered with a partial response (all
    # reported) rather than an error: same redelivery, no misleading function error.
    processor.raise_on_entire_batch_failure = False
    return processor


def change_from_stream_record(record: DynamoDBRecord) -> SourceChange:
    stream = record.dynamodb
    sequence_number = (stream.sequence_number if stream else None) or ""
    event_name = record.event_name.name if record.event_name else None
    try:
        created = stream.approximate_creation_date_time if stream else None
    except (TypeError, ValueError):  # unreadable: the record is then never parked for its age
        created = None
    position = SourcePosition(
        kind="dynamodb-stream",
        event_source_arn=record.event_source_arn,
        item_identifier=sequence_number,
        event_name=event_name,
        created_at=datetime.fromtimestamp(created, UTC) if created is not None else None,
    )
    removed = event_name == "REMOVE"
    try:
        image = (stream.old_image if removed else stream.new_image) if stream else None
    except Exception as exc:  # noqa: BLE001 - a malformed image is an invalid record, not a crash
        return SourceChange(position, None, removed, decode_error=f"unreadable stream image ({type(exc).__name__})")
    if not image:
        which = "OldImage" if removed else "NewImage"
        return SourceChange(
            position,
            None,
            removed,
            decode_error=f"stream record has no {which}; the stream view type must be NEW_AND_OLD_IMAGES",
        )
    return SourceChange(position, image, removed)


def change_from_sqs_record(record: SQSRecord) -> SourceChange:
    attributes = record.attributes
    try:
        receive_count = int(attributes.approximate_receive_count or 1)
    except (TypeError, ValueError):
        receive_count = 1
    position = SourcePosition(
        kind="sqs",
        event_source_arn=record.event_source_arn,
        item_identifier=_queue_identifier(record),
        message_group_id=attributes.message_group_id,
        receive_count=receive_count,
    )
    try:
        item = unwrap_message_body(record.body)
    except InvalidRecordError as error:
        return SourceChange(position, None, decode_error=error.message)
    return SourceChange(position, item)


def time_left_ms(context: Any) -> int | None:
    """Milliseconds left in this invocation, if the context can tell."""
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    return int(remaining()) if callable(remaining) else None


class _PrecomputedResults:
    """Each record's result from :meth:`SyncService.sync_batch`, handed to Powertools' record handler
    by the record's identifier (sequence number or message id), in order for repeats."""

    def __init__(self, identifiers: list[str], results: list[RecordResult]) -> None:
        self._by_identifier: dict[str, deque[RecordResult]] = defaultdict(deque)
        for identifier, result in zip(identifiers, results, strict=True):
            self._by_identifier[identifier].append(result)

    def outcome(self, identifier: str) -> str:
        queued = self._by_identifier.get(identifier)
        if not queued:  # pragma: no cover - Powertools hands back only the records it was given
            raise TransientSyncError("record not found in the batch's results (a bug): back to the source")
        result = queued.popleft()
        if result.error is not None:
            raise result.error
        return str(result.outcome)


def _queue_identifier(record: SQSRecord) -> str:
    return str(record.raw_event.get("messageId") or "")


def _stream_identifier(record: DynamoDBRecord) -> str:
    return (record.dynamodb.sequence_number if record.dynamodb else None) or ""


def handle_stream_event(event: dict[str, Any], context: Any, service: SyncService) -> dict[str, Any]:
    records = event.get("Records")
    if not records:
        return {"batchItemFailures": []}  # Powertools rejects an empty batch; there is nothing to do
    # The whole batch is synced first (coalesced per resource, resources concurrently); Powertools
    # then builds the partial response from each record's result, in shard order.
    stream_records = [DynamoDBRecord(record) for record in records]
    changes = [change_from_stream_record(record) for record in stream_records]
    results = service.sync_batch(changes, time_left_ms=time_left_ms(context))
    precomputed = _PrecomputedResults([_stream_identifier(record) for record in stream_records], results)

    def record_handler(record: DynamoDBRecord) -> str:
        return precomputed.outcome(_stream_identifier(record))

    response = process_partial_response(
        event=event, record_handler=record_handler, processor=StreamBatchProcessor(), context=context
    )
    return dict(response)


def handle_queue_event(event: dict[str, Any], context: Any, service: SyncService) -> dict[str, Any]:
    records = event.get("Records")
    if not records:
        return {"batchItemFailures": []}
    queue_records = [SQSRecord(record) for record in records]
    changes = [change_from_sqs_record(record) for record in queue_records]
    results = service.sync_batch(changes, time_left_ms=time_left_ms(context))
    precomputed = _PrecomputedResults([_queue_identifier(record) for record in queue_records], results)

    def record_handler(record: SQSRecord) -> str:
        return precomputed.outcome(_queue_identifier(record))

    response = process_partial_response(
        event=event, record_handler=record_handler, processor=queue_processor_for(event), context=context
    )
    if service.source_queue is not None:
        _defer_messages_sent_back(service.source_queue, queue_records, results, response)
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
        group = record.attributes.message_group_id
        if group is not None and result.error is not None:
            by_group.setdefault(group, delay)  # the group's first failure decides for all of it
        delays.append(delay)
    by_queue: dict[str, list[tuple[str, float]]] = defaultdict(list)
    for record, delay in zip(records, delays, strict=True):
        group = record.attributes.message_group_id
        when = by_group.get(group) if group is not None else delay
        if when is not None and _queue_identifier(record) in reported and record.receipt_handle:
            by_queue[record.event_source_arn].append((record.receipt_handle, when))
    for queue_arn, messages in by_queue.items():
        source_queue.defer(queue_arn, messages)
