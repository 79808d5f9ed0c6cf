"""A DynamoDB stream event source mapping, locally: read the stream, invoke, checkpoint, retry.

Mirrors the template's ``PartnerTableStream`` mapping (ParallelizationFactor 1, partial batch
responses on):

- shards are read parents first: a child shard starts once its parent is read to its end;
- the first read of a shard starts at ``starting_position`` (TRIM_HORIZON, as the template);
  later reads continue AFTER the checkpoint, or AT the first failed record after a failure;
- a batch is up to ``batch_size`` records of one shard, in sequence-number order;
- the response is read as Lambda reads it (see :func:`local_runner.events.reported_failures`):
  all done, failed from the lowest reported sequence number (the records before it are
  checkpointed, it and everything after it come again), or failed as a whole (raised, timed
  out, invalid response: the whole batch comes again);
- a batch that keeps failing from the same record is retried ``max_retry_attempts`` times,
  ``retry_delay_seconds`` apart (-1: for ever, Lambda's default); then, with
  ``bisect_batch_on_function_error``, a batch of several records is halved and retried with
  fresh attempts; a single record, or any batch without bisecting, is handed to
  ``on_failure`` (a description of the batch, as the mapping's on-failure destination gets,
  never its records) and the stream moves past it.

Simplified: one batch at a time across all shards (Lambda reads shards concurrently); at most
1000 records a batch (one GetRecords; Lambda allows 10000); no batching window (records are
delivered as soon as read); Lambda bisects on every error before counting retries, this
bisects only once retries are exhausted, so a transient failure keeps its batch whole; no
maximum record age; checkpoints live in memory (a restart reads from ``starting_position``
again, so the handler sees records twice, as it may in Lambda).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

from local_runner.events import reported_failures, stream_batch_failure, stream_event
from local_runner.invocation import DEFAULT_FUNCTION_TIMEOUT_SECONDS, Handler, Invocation, PollResult, invoke

StartingPosition = Literal["TRIM_HORIZON", "LATEST"]
OnFailure = Callable[[dict[str, Any]], None]
"""Receives what Lambda sends a stream mapping's on-failure destination (see events.stream_batch_failure)."""


@dataclass
class _Shard:
    shard_id: str
    parent_id: str | None
    starting_position: StartingPosition
    batch_limit: int  # batch_size, or less while a bisected batch is retried
    checkpoint: str | None = None  # the last sequence number done with
    retry_from: str | None = None  # after a failure: the next batch starts AT this record
    attempts: int = 0  # failed invocations in a row of the batch starting at retry_from
    not_before: float = 0.0  # time.monotonic() of the next retry
    iterator: str | None = None  # NextShardIterator of the last read, while no failure moved the position
    closed: bool = False  # read to its end: the shard was closed and holds no more records
    bisected_until: str | None = None  # the end of the bisected batch: full batches again after it


class StreamPoller:
    """Reads one DynamoDB stream and invokes ``handler`` on its records as Lambda's mapping does.

    ``streams_client`` is a boto3 ``dynamodbstreams`` client (pointing at moto server, say).
    Each :meth:`poll_once` makes at most one invocation.
    """

    def __init__(
        self,
        streams_client: Any,
        stream_arn: str,
        handler: Handler,
        *,
        batch_size: int = 100,
        starting_position: StartingPosition = "TRIM_HORIZON",
        max_retry_attempts: int = -1,
        retry_delay_seconds: float = 1.0,
        bisect_batch_on_function_error: bool = True,
        on_failure: OnFailure | None = None,
        function_name: str = "stream_sync",
        timeout_seconds: float = DEFAULT_FUNCTION_TIMEOUT_SECONDS,
    ) -> None:
        if not 1 <= batch_size <= 1000:
            raise ValueError("batch_size must be between 1 and 1000 (one GetRecords)")
        self.stream_arn = stream_arn
        self.batch_size = batch_size
        self.starting_position = starting_position
        self.max_retry_attempts = max_retry_attempts
        self.retry_delay_seconds = retry_delay_seconds
        self.bisect_batch_on_function_error = bisect_batch_on_function_error
        self.on_failure = on_failure
        self.function_name = function_name
        self.timeout_seconds = timeout_seconds
        self._client = streams_client
        self._handler = handler
        self._shards: dict[str, _Shard] = {}
        self._caught_up = False
        # arn:aws:dynamodb:REGION:ACCOUNT:table/NAME/stream/LABEL
        self.name = f"stream {stream_arn.split(':', 5)[-1].split('/')[1]}"

    def poll_once(self) -> PollResult:
        """Read the next batch of the first shard that has one, and invoke the handler on it."""
        self._refresh_shards()
        now = time.monotonic()
        pending = False
        for shard in self._readable_shards():
            if shard.not_before > now:  # a failed batch waiting for its retry
                pending = True
                continue
            records, next_iterator = self._read(shard)
            if records:
                self._caught_up = False
                return self._deliver(shard, records, next_iterator)
            shard.iterator = next_iterator
            if next_iterator is None:  # a closed shard read to its end: its children come next
                shard.closed = pending = True
        self._caught_up = not pending
        return PollResult(source=self.name)

    def is_drained(self) -> bool:
        """True when the last poll found no record to deliver and no failed batch waiting for a retry."""
        return self._caught_up

    # ------------------------------------------------------------------ reading

    def _refresh_shards(self) -> None:
        first_listing = not self._shards
        request: dict[str, Any] = {"StreamArn": self.stream_arn}
        while True:
            description = self._client.describe_stream(**request)["StreamDescription"]
            for listed in description.get("Shards", []):
                if listed["ShardId"] not in self._shards:
                    self._shards[listed["ShardId"]] = _Shard(
                        shard_id=listed["ShardId"],
                        parent_id=listed.get("ParentShardId"),
                        # Shards that appear later (splits) hold only new records: read them whole.
                        starting_position=self.starting_position if first_listing else "TRIM_HORIZON",
                        batch_limit=self.batch_size,
                    )
            if not description.get("LastEvaluatedShardId"):
                return
            request["ExclusiveStartShardId"] = description["LastEvaluatedShardId"]

    def _readable_shards(self) -> Iterator[_Shard]:
        for shard in self._shards.values():
            parent = self._shards.get(shard.parent_id) if shard.parent_id else None
            # A parent no longer listed has been trimmed away: its child is free to go.
            if not shard.closed and (parent is None or parent.closed):
                yield shard

    def _read(self, shard: _Shard) -> tuple[list[dict[str, Any]], str | None]:
        if shard.iterator is not None:
            try:
                return self._get_records(shard, shard.iterator)
            except self._client.exceptions.ExpiredIteratorException:
                pass  # iterators last 15 minutes: start again from the checkpoint
        return self._get_records(shard, self._iterator_at_position(shard))

    def _get_records(self, shard: _Shard, iterator: str) -> tuple[list[dict[str, Any]], str | None]:
        response = self._client.get_records(ShardIterator=iterator, Limit=shard.batch_limit)
        return response.get("Records", []), response.get("NextShardIterator")

    def _iterator_at_position(self, shard: _Shard) -> str:
        request = {"StreamArn": self.stream_arn, "ShardId": shard.shard_id}
        if shard.retry_from is not None:
            request |= {"ShardIteratorType": "AT_SEQUENCE_NUMBER", "SequenceNumber": shard.retry_from}
        elif shard.checkpoint is not None:
            request |= {"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "SequenceNumber": shard.checkpoint}
        else:
            request |= {"ShardIteratorType": shard.starting_position}
        return str(self._client.get_shard_iterator(**request)["ShardIterator"])

    # ------------------------------------------------------------------ invoking

    def _deliver(self, shard: _Shard, raw_records: list[dict[str, Any]], next_iterator: str | None) -> PollResult:
        event = stream_event(raw_records, self.stream_arn)
        records = event["Records"]
        sequence_numbers = [record["dynamodb"]["SequenceNumber"] for record in records]
        invocation = invoke(
            self._handler, event, function_name=self.function_name, timeout_seconds=self.timeout_seconds
        )
        source = f"{self.name} {shard.shard_id}"
        error, reported = invocation.error, []
        if error is None:
            failures = reported_failures(invocation.response, sequence_numbers)
            if failures is None:
                error = "gave an invalid batch response"
            else:
                reported = failures
        if error is None and not reported:
            self._advance(shard, sequence_numbers[-1], next_iterator)
            return PollResult(source=source, records=len(records), outcome="ok")
        # Lambda checkpoints before the lowest reported sequence number; a whole failure, before the batch.
        failed_from = sequence_numbers.index(reported[0]) if reported else 0
        outcome, notes = self._after_failure(shard, records, failed_from, next_iterator, invocation, error)
        return PollResult(
            source=source, records=len(records), reported=tuple(reported), error=error, outcome=outcome, notes=notes
        )

    def _after_failure(
        self,
        shard: _Shard,
        records: list[dict[str, Any]],
        failed_from: int,
        next_iterator: str | None,
        invocation: Invocation,
        error: str | None,
    ) -> tuple[str, tuple[str, ...]]:
        failed = records[failed_from:]
        start = failed[0]["dynamodb"]["SequenceNumber"]
        if failed_from > 0:
            self._advance(shard, records[failed_from - 1]["dynamodb"]["SequenceNumber"], None)
        shard.attempts = shard.attempts + 1 if shard.retry_from == start else 1
        shard.retry_from = start
        shard.iterator = None  # the next read starts AT the first failed record
        outcome = "failed" if error else "partial"

        if self.max_retry_attempts < 0 or shard.attempts <= self.max_retry_attempts:
            shard.not_before = time.monotonic() + self.retry_delay_seconds
            return outcome, (f"next batch starts at {start}",)

        if self.bisect_batch_on_function_error and len(failed) > 1:
            shard.batch_limit = max(1, len(failed) // 2)
            end = failed[-1]["dynamodb"]["SequenceNumber"]
            if shard.bisected_until is None or int(end) > int(shard.bisected_until):
                shard.bisected_until = end
            shard.attempts = 0
            return "bisected", (f"retries exhausted: next batch is {shard.batch_limit} record(s) from {start}",)

        end = failed[-1]["dynamodb"]["SequenceNumber"]
        if self.on_failure is not None:
            self.on_failure(
                stream_batch_failure(
                    records=failed,
                    stream_arn=self.stream_arn,
                    shard_id=shard.shard_id,
                    function_arn=invocation.function_arn,
                    request_id=invocation.request_id,
                    invoke_count=shard.attempts,
                    function_error=error is not None,
                )
            )
            note = f"retries exhausted: {start}..{end} sent to the on-failure destination"
        else:
            note = f"retries exhausted: {start}..{end} skipped (no on-failure destination)"
        # The failed records run to the end of the batch, so the batch's NextShardIterator follows them.
        self._advance(shard, end, next_iterator)
        return "gave up", (note,)

    def _advance(self, shard: _Shard, sequence_number: str, next_iterator: str | None) -> None:
        """Checkpoint at ``sequence_number``: the next read starts after it."""
        shard.checkpoint = sequence_number
        shard.retry_from = None
        shard.attempts = 0
        shard.not_before = 0.0
        shard.iterator = next_iterator
        if shard.bisected_until is not None and int(sequence_number) >= int(shard.bisected_until):
            shard.batch_limit, shard.bisected_until = self.batch_size, None


def send_to_queue(sqs_client: Any, queue_url: str) -> OnFailure:
    """An ``on_failure`` that sends the description as JSON to an SQS queue, like an SQS on-failure destination."""

    def send(failure: dict[str, Any]) -> None:
        sqs_client.send_message(QueueUrl=queue_url, MessageBody=json.dumps(failure))

    return send
