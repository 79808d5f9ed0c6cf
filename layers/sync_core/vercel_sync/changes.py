"""A source-agnostic view of one change: where it came from, and the partner record it carries."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from vercel_sync.mapping import PartnerMapping, default_mapping

SourceKind = Literal["dynamodb-stream", "sqs"]


@dataclass(frozen=True, slots=True)
class SourcePosition:
    """Enough to find (and replay) the change at its source."""

    kind: SourceKind
    event_source_arn: str | None
    item_identifier: str  # a stream record's sequence number, an SQS message's id
    event_name: str | None = None  # stream: INSERT, MODIFY or REMOVE
    message_group_id: str | None = None  # FIFO queues
    receive_count: int = 1  # SQS
    created_at: datetime | None = None  # stream: ApproximateCreationDateTime

    def stream_age_seconds(self, now: datetime) -> float | None:
        """How long a stream record has been in its stream (None: not a stream record, or unknown)."""
        if self.kind != "dynamodb-stream" or self.created_at is None:
            return None
        return (now - self.created_at).total_seconds()

    def as_dict(self) -> dict[str, Any]:
        position: dict[str, Any] = {"kind": self.kind, "eventSourceARN": self.event_source_arn}
        if self.kind == "dynamodb-stream":
            position["sequenceNumber"] = self.item_identifier
            position["eventName"] = self.event_name
            if self.created_at is not None:
                position["approximateCreationDateTime"] = self.created_at.isoformat()
        else:
            position["messageId"] = self.item_identifier
            position["receiveCount"] = self.receive_count
            if self.message_group_id is not None:
                position["messageGroupId"] = self.message_group_id
        return position


@dataclass(frozen=True, slots=True)
class SourceChange:
    """One record of a batch: the partner record mapping, or why it could not be decoded."""

    position: SourcePosition
    item: Mapping[str, Any] | None
    removed: bool = False  # a DynamoDB REMOVE: ``item`` is the old image
    decode_error: str | None = None
    json_ready: bool = False  # ``item`` is ``transform.json_safe``'s already: parsing does not walk it again
    repair: bool = False  # a reconcile repair: sent even when the payload is unchanged (never when stale)

    def ids(self, mapping: PartnerMapping | None = None) -> tuple[str | None, str | None]:
        """(integrationConfigurationId, resourceId) as ``mapping`` (by default the default one) reads them
        from the item, where it names them as text: for log lines and failed records."""
        if not isinstance(self.item, Mapping):
            return None, None
        mapping = mapping or default_mapping()
        return mapping.text(self.item, "integrationConfigurationId"), mapping.text(self.item, "resourceId")
