"""The failed-records queue message: everything needed to understand and replay a record.

Schema (``schemaVersion`` 1)::

    {"schemaVersion": 1, "failedAt": ISO-8601, "reason": "invalid_record" | "vercel_rejected" | ...,
     "detail": str, "httpStatus": int | null, "vercelError": str | null, "attempts": int,
     "integrationConfigurationId": str | null, "resourceId": str | null,
     "source": {"kind", "eventSourceARN", "sequenceNumber" | "messageId", ...},
     "removed": bool, "record": {... the partner record, secret values removed ...}}
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from vercel_sync.changes import SourceChange
from vercel_sync.errors import PermanentSyncError
from vercel_sync.redaction import scrub, truncate
from vercel_sync.transform import json_safe

SCHEMA_VERSION = 1


def build_failed_record_message(
    change: SourceChange,
    error: PermanentSyncError,
    *,
    failed_at: datetime,
    secret_values: Iterable[str] = (),
) -> dict[str, Any]:
    installation_id, resource_id = change.ids()
    try:
        record = json_safe(change.item) if change.item is not None else None
    except Exception:  # noqa: BLE001 - a record we cannot even make JSON-safe is reported by its reason
        record = None
    message = {
        "schemaVersion": SCHEMA_VERSION,
        "failedAt": failed_at.isoformat(),
        "reason": error.reason,
        "detail": error.message,
        "httpStatus": error.http_status,
        "vercelError": truncate(error.vercel_error) if error.vercel_error is not None else None,
        "attempts": change.attempt,
        "integrationConfigurationId": installation_id,
        "resourceId": resource_id,
        "source": change.position.as_dict(),
        "removed": change.removed,
        "record": record,
    }
    result: dict[str, Any] = scrub(message, secret_values)
    return result
