"""Rotation sync's event: the secret it names, the resources that used it, and a failure's message. Pure."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from vercel_sync.errors import InvalidRecordError, PermanentSyncError, TransientSyncError
from vercel_sync.failed_record import MAX_ID_TEXT, SCHEMA_VERSION
from vercel_sync.redaction import scrub, scrub_error_body, scrub_text, truncate
from vercel_sync.settings import normalized_secret_name
from vercel_sync.sync_state import REMOVED_STATUSES

ROTATION_EVENT_NAMES = frozenset({"RotationSucceeded", "PutSecretValue", "UpdateSecret"})
CURRENT_STAGE = "AWSCURRENT"
FAILURE_KIND = "secret_rotation"


class InvalidEventError(InvalidRecordError):
    """The event names no secret this service can act on."""


class RotationIncompleteError(TransientSyncError):
    """Some resources were not updated (a transient failure, or no time left): the event is retried."""


@dataclass(frozen=True)
class SecretChange:
    """A change of a secret's value, as an EventBridge event reports it."""

    event_name: str
    secret_id: str  # as the event gives it: an ARN or a name
    event_id: str | None = None
    event_time: str | None = None

    @property
    def secret_name(self) -> str:
        return normalized_secret_name(self.secret_id)

    def source(self) -> dict[str, Any]:
        event = {"eventId": self.event_id, "eventName": self.event_name, "eventTime": self.event_time}
        return {"kind": "eventbridge", **event, "secretName": self.secret_name}


def parse_secret_change(event: Any) -> SecretChange | None:
    """The secret change an EventBridge event reports; ``None`` for one that changes no current value."""
    if not isinstance(event, Mapping) or not isinstance(event.get("detail"), Mapping):
        raise InvalidEventError("not an EventBridge event with a detail object")
    detail: Mapping[str, Any] = event["detail"]
    event_name = detail.get("eventName")
    if event_name not in ROTATION_EVENT_NAMES or detail.get("errorCode"):
        return None
    request = detail.get("requestParameters")
    if event_name == "PutSecretValue" and isinstance(request, Mapping):
        stages = request.get("versionStages")
        if isinstance(stages, list) and CURRENT_STAGE not in stages:
            return None  # e.g. a rotation's AWSPENDING version: not current yet
    secret_id = _secret_id(event, detail)
    if secret_id is None:
        raise InvalidEventError(f"{event_name} event names no secret")
    event_id = detail.get("eventID") or event.get("id")
    event_time = detail.get("eventTime") or event.get("time")
    return SecretChange(
        event_name=event_name,
        secret_id=secret_id,
        event_id=str(event_id)[:MAX_ID_TEXT] if event_id else None,
        event_time=str(event_time)[:64] if event_time else None,
    )


def _secret_id(event: Mapping[str, Any], detail: Mapping[str, Any]) -> str | None:
    """The fullest id the event holds: the ARN Secrets Manager answered with, the rotation's, the caller's."""
    candidates: list[Any] = []
    for section, keys in (
        ("responseElements", ("arn", "ARN", "aRN")),
        ("additionalEventData", ("SecretId", "secretId")),
        ("serviceEventDetails", ("secretId", "SecretId")),
        ("requestParameters", ("secretId", "SecretId")),
    ):
        values = detail.get(section)
        if isinstance(values, Mapping):
            candidates.extend(values.get(key) for key in keys)
    resources = event.get("resources")
    if isinstance(resources, list):
        candidates.extend(resources)
    for candidate in candidates:
        if isinstance(candidate, str) and candidate and len(candidate) <= 2048:
            return candidate
    return None


@dataclass(frozen=True, order=True)
class RotationTarget:
    """One Vercel resource whose last import used the secret."""

    installation_id: str
    resource_id: str
    secrets_prefix: str | None = None


def target_from_item(item: Mapping[str, Any]) -> RotationTarget | None:
    """A sync-state item (plain values) as a target; ``None`` for another kind, or a resource uninstalled or deleted."""
    installation = item.get("installationId")
    resource = item.get("resourceId")
    prefix = item.get("secretsPrefix")
    if item.get("kind", "resource") != "resource" or item.get("status") in REMOVED_STATUSES:
        return None
    if not isinstance(installation, str) or not isinstance(resource, str) or not installation or not resource:
        return None
    return RotationTarget(installation, resource, prefix if isinstance(prefix, str) else None)


@dataclass
class RotationResult:
    outcome: Literal["ignored", "no_resources", "done"]
    secret_name: str | None = None
    pushed: list[RotationTarget] = field(default_factory=list)
    parked: list[RotationTarget] = field(default_factory=list)
    calls: int = 0

    def summary(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome,
            "secretName": self.secret_name,
            "resourcesUpdated": len(self.pushed),
            "resourcesParked": len(self.parked),
            "vercelCalls": self.calls,
        }


def build_rotation_failure_message(
    change: SecretChange | None,
    target: RotationTarget | None,
    error: PermanentSyncError,
    *,
    failed_at: datetime,
    calls: int = 0,
    secret_values: Iterable[str] = (),
) -> dict[str, Any]:
    """The failed-records message of a resource rotation sync could not update (docs/architecture.md)."""
    values = list(secret_values)
    vercel_error = None
    if error.vercel_error is not None:
        vercel_error = scrub_error_body(error.vercel_error, values, complete=error.vercel_error_complete)
    message = {
        "schemaVersion": SCHEMA_VERSION,
        "kind": FAILURE_KIND,
        "failedAt": failed_at.isoformat(),
        "reason": error.reason,
        "detail": truncate(scrub_text(error.message, values)),
        "httpStatus": error.http_status,
        "vercelError": vercel_error,
        "attempts": max(calls, 1),
        "vercelCalls": calls,
        "integrationConfigurationId": truncate(target.installation_id, MAX_ID_TEXT) if target else None,
        "resourceId": truncate(target.resource_id, MAX_ID_TEXT) if target else None,
        "source": change.source() if change else {"kind": "eventbridge"},
        "removed": False,
        "record": None,
        "rotation": {
            "secretName": change.secret_name if change else None,
            "secretsPrefix": target.secrets_prefix if target else None,
        },
    }
    result: dict[str, Any] = scrub(message, values)
    return result
