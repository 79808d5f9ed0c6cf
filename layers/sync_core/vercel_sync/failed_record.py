"""The failed-records message (``schemaVersion`` 1): everything needed to understand and replay a
record; docs/architecture.md, "The failed-records message", has its fields."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from vercel_sync.changes import SourceChange
from vercel_sync.errors import PermanentSyncError
from vercel_sync.mapping import PartnerMapping, default_mapping
from vercel_sync.redaction import scrub, truncate
from vercel_sync.transform import json_safe

SCHEMA_VERSION = 1
MAX_ID_TEXT = 1024  # an invalid record's ids can be anything: enough to find it


def build_failed_record_message(
    change: SourceChange,
    error: PermanentSyncError,
    *,
    failed_at: datetime,
    secret_values: Iterable[str] = (),
    calls: int = 0,
    mapping: PartnerMapping | None = None,
) -> dict[str, Any]:
    """``mapping`` (by default the default one) says the item's ids and the attributes the message keeps."""
    mapping = mapping or default_mapping()
    installation_id, resource_id = change.ids(mapping)
    fields = mapping.source_attributes
    try:
        record = (
            {key: json_safe(value) for key, value in change.item.items() if key in fields}
            if change.item is not None
            else None
        )
    except Exception:  # noqa: BLE001 - a record we cannot even make JSON-safe is reported by its reason
        record = None
    message = {
        "schemaVersion": SCHEMA_VERSION,
        "failedAt": failed_at.isoformat(),
        "reason": error.reason,
        "detail": truncate(error.message),
        "httpStatus": error.http_status,
        "vercelError": truncate(error.vercel_error) if error.vercel_error is not None else None,
        "attempts": change.position.receive_count - 1 + max(calls, 1),
        "vercelCalls": calls,
        "integrationConfigurationId": truncate(installation_id, MAX_ID_TEXT) if installation_id else installation_id,
        "resourceId": truncate(resource_id, MAX_ID_TEXT) if resource_id else resource_id,
        "source": change.position.as_dict(),
        "removed": change.removed,
        "record": record,
    }
    result: dict[str, Any] = scrub(message, secret_values)
    return result
