"""Re-driving a record through the sync path: the one place the operations tools call the pipeline.

The replay commands call the core's ``SyncService.sync_batch([change])`` directly (not the partner
events queue), so each replayed record's outcome is known before its message is deleted:

- failed-records replay: the service is built with the failed-records queue *off*, so a record
  failing again raises ``TransientSyncError`` (the pipeline's "back to the source") and its
  message simply stays in the failed-records queue: not parked a second time;
- stream-failure replay: the service is built as the functions' (failed-records queue *on*): a
  stream record failing for good is parked with its whole content, which is the point (the
  stream forgets it within 24 h; the failed-records queue keeps it 14 days).

Kept small and apart so the pipeline's owner can adapt it when the pipeline changes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from vercel_sync.changes import SourceChange, SourcePosition
from vercel_sync.mapping import PartnerMapping
from vercel_sync.ports import NullObserver
from vercel_sync.settings import SyncSettings
from vercel_sync.sync.service import SyncService
from vercel_sync.wiring import build_sync_service


def build_service(environ: Mapping[str, str], *, park_failures: bool) -> SyncService:
    """The functions' sync service from their environment variables (``VERCEL_API_URL``,
    ``VERCEL_TOKEN_SECRET_ID``, ``RESOURCE_SECRET_PREFIX``, ``SYNC_STATE_TABLE``, ...).

    ``park_failures=False`` drops ``FAILED_RECORDS_QUEUE_URL``: a permanent failure then comes
    back as ``TransientSyncError`` instead of being parked again.
    """
    variables = dict(environ)
    if not park_failures:
        variables.pop("FAILED_RECORDS_QUEUE_URL", None)
    # The functions' observer writes JSON log lines and EMF metrics to stdout: not for a terminal.
    return build_sync_service(SyncSettings.from_env(variables), observer=NullObserver())


def change_from_failed_record(message: Mapping[str, Any]) -> SourceChange | None:
    """The change a failed-records message (schemaVersion 1) describes, or None if it holds no record.

    The original source position is kept (for a stream record, its sequence number), so the
    version guard compares the replayed change as it compared the original: an older state
    does not overwrite a newer one imported since. No creation time is passed: a replayed
    stream record is not "too old for the stream" any more.
    """
    record = message.get("record")
    if not isinstance(record, Mapping):
        return None
    source = message.get("source") if isinstance(message.get("source"), Mapping) else {}
    assert isinstance(source, Mapping)
    stream = source.get("kind") == "dynamodb-stream"
    position = SourcePosition(
        kind="dynamodb-stream" if stream else "sqs",
        event_source_arn=source.get("eventSourceARN"),
        item_identifier=str(source.get("sequenceNumber") if stream else source.get("messageId") or "replay"),
        event_name=source.get("eventName") if stream else None,
        message_group_id=None if stream else source.get("messageGroupId"),
    )
    return SourceChange(position, dict(record), removed=bool(message.get("removed", False)))


# How the pipeline words a permanent failure it could not park; in a replay that is the point
# (the message stays where it is), so the replay's output leaves the note out.
NOT_PARKED_NOTE = " (no failed-records queue configured: back to the source)"


def failure_detail(message: str) -> str:
    return message.removesuffix(NOT_PARKED_NOTE)


def sync_change(service: SyncService, change: SourceChange) -> str:
    """One change through the pipeline: returns its outcome (``imported``, ``parked``, a skip),
    raises ``TransientSyncError`` when it is not done (it stays where it is)."""
    (result,) = service.sync_batch([change], time_left_ms=None)
    if result.error is not None:
        raise result.error
    return str(result.outcome)


# The pipeline's outcomes as an operator reads them; "synced" are those after which Vercel holds the
# record's state (imported, or skipped because it already did), the others are not.
OUTCOME_WORDS = {
    "imported": "imported",
    "unchanged": "skipped (Vercel has it unchanged)",
    "stale": "skipped (a newer state was imported)",
    "coalesced": "coalesced into a newer change",
    "parked": "parked in the failed-records queue",
}
SYNCED = frozenset({"imported", "unchanged", "stale", "coalesced"})


def describe_outcomes(counts: Mapping[str, int]) -> str:
    """``{"imported": 4, "parked": 1}`` -> ``4 imported, 1 parked in the failed-records queue`` (in that order)."""
    order = [*OUTCOME_WORDS, *sorted(set(counts) - set(OUTCOME_WORDS))]
    return ", ".join(f"{counts[name]:,} {OUTCOME_WORDS.get(name, name)}" for name in order if counts.get(name))


def import_problem(message_body: str, mapping: PartnerMapping) -> str | None:
    """Why the queue function would park this partner-events message as ``invalid_record`` (or leave it
    as not a resource), or None when it would import it: the preview's check of one item, after the
    queue function's reading of a body. A named secret is neither read nor checked for its owner here."""
    from operations.preview import preview_item
    from vercel_sync.errors import InvalidRecordError
    from vercel_sync.transform import unwrap_message_body

    try:
        item = unwrap_message_body(message_body)
    except InvalidRecordError as error:
        return error.message
    verdict = preview_item(item, mapping)
    if verdict.outcome == "would send":
        return None
    return verdict.detail or verdict.outcome


def change_from_stream_record(raw: Mapping[str, Any], stream_arn: str) -> SourceChange:
    """A GetRecords record as the stream function sees it (the Lambda event record, then the core's reading)."""
    from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord

    from local_runner.events import stream_record
    from vercel_sync.sources import change_from_stream_record as from_lambda_record

    return from_lambda_record(DynamoDBRecord(stream_record(raw, stream_arn)))
