"""What unit tests build, shared by the test files of several modules: records, changes, a sync
service on fakes, a fake clock, rotation events and a rotation service on fakes. The adapter fakes
themselves are in ``tests/fakes.py``."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tests.fakes import (
    ROTATED_SECRET_ARN,
    ROTATED_SECRET_NAME,
    ROTATION_SETTINGS,
    FakeFailedRecords,
    FakeIndex,
    FakeRotationSecrets,
    FakeSecrets,
    FakeSecretsApi,
    FakeStateStore,
    FakeVercel,
    make_sync_service,
)
from vercel_sync.calls import Clock
from vercel_sync.changes import SourceChange, SourcePosition
from vercel_sync.rotation.events import RotationTarget
from vercel_sync.rotation.service import RotationAdapters, RotationService
from vercel_sync.sync.service import SyncService

INSTALLATION = "icfg_1"

# -------------------------------------------------------------------------------------- records


def record_with_secret(**overrides: Any) -> dict[str, Any]:
    """The record of ``db_primary`` naming its resource secret; an override of None drops that field."""
    item: dict[str, Any] = {
        "integrationConfigurationId": "icfg_1",
        "resourceId": "db_primary",
        "productId": "prod_pg",
        "name": "orders",
        "status": "active",
        "secretsArn": "partner/resources/icfg_1/db_primary",
    }
    item.update(overrides)
    return {k: v for k, v in item.items() if v is not None}


def record_without_secret(resource_id: str = "r1", **overrides: Any) -> dict[str, Any]:
    """A record of ``resource_id`` (named after it) that names no secret: the call is all there is."""
    item: dict[str, Any] = {
        "integrationConfigurationId": INSTALLATION,
        "resourceId": resource_id,
        "productId": "prod",
        "name": f"name-{resource_id}",
        "status": "active",
    }
    item.update(overrides)
    return item


# -------------------------------------------------------------------------------------- changes


def change(item: dict[str, Any] | None, identifier: str = "m-1") -> SourceChange:
    """``item`` as a message of a standard queue."""
    position = SourcePosition(kind="sqs", event_source_arn="arn:aws:sqs:us-east-1:1:q", item_identifier=identifier)
    return SourceChange(position, item)


def sqs(item: dict[str, Any], message_id: str = "m", receive_count: int = 1) -> SourceChange:
    arn = "arn:aws:sqs:us-east-1:1:q"
    position = SourcePosition(kind="sqs", event_source_arn=arn, item_identifier=message_id, receive_count=receive_count)
    return SourceChange(position, item)


def stream(item: dict[str, Any], sequence_number: str, *, removed: bool = False) -> SourceChange:
    position = SourcePosition(
        kind="dynamodb-stream",
        event_source_arn="arn:aws:dynamodb:us-east-1:1:table/t/stream/x",
        item_identifier=sequence_number,
        event_name="REMOVE" if removed else "MODIFY",
    )
    return SourceChange(position, item, removed=removed)


# -------------------------------------------------------------------------------------- a service


class Sleeps:
    """Records each sleep and moves a fake monotonic clock (``now``) by it."""

    def __init__(self) -> None:
        self.seconds: list[float] = []
        self.clock = 1000.0

    def __call__(self, seconds: float) -> None:
        self.seconds.append(seconds)
        self.clock += seconds

    def now(self) -> float:
        return self.clock


def make_service(
    vercel: FakeVercel | None = None,
    *,
    state: FakeStateStore | None = None,
    failed: FakeFailedRecords | None = None,
    sleeps: Sleeps | None = None,
    **kwargs: Any,
) -> SyncService:
    sleeps = sleeps if sleeps is not None else Sleeps()
    kwargs.setdefault("monotonic", sleeps.now)
    return make_sync_service(
        vercel=vercel or FakeVercel(),
        secrets=FakeSecrets(),
        failed_records=failed if failed is not None else FakeFailedRecords(),
        state_store=state,
        sleep=sleeps,
        uniform=lambda low, high: high,  # the jitter's ceiling: deterministic
        **kwargs,
    )


# -------------------------------------------------------------------------------------- rotation


def put_secret_value_event(secret_id: str = ROTATED_SECRET_NAME, **request: Any) -> dict[str, Any]:
    """What CloudTrail gives EventBridge for a PutSecretValue call (values never included)."""
    return {
        "version": "0",
        "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
        "detail-type": "AWS API Call via CloudTrail",
        "source": "aws.secretsmanager",
        "account": "123456789012",
        "time": "2026-11-27T10:00:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": {
            "eventVersion": "1.09",
            "eventTime": "2026-11-27T10:00:00Z",
            "eventSource": "secretsmanager.amazonaws.com",
            "eventName": "PutSecretValue",
            "requestParameters": {"secretId": secret_id, "clientRequestToken": "c0ffee", **request},
            "responseElements": {
                "arn": ROTATED_SECRET_ARN if secret_id in (ROTATED_SECRET_NAME, ROTATED_SECRET_ARN) else secret_id,
                "versionId": "v2",
            },
            "eventID": "e-1",
            "eventType": "AwsApiCall",
        },
    }


@dataclass
class Rig:
    index: FakeIndex = field(default_factory=FakeIndex)
    secrets: FakeRotationSecrets = field(default_factory=FakeRotationSecrets)
    vercel: FakeSecretsApi = field(default_factory=FakeSecretsApi)
    failed: FakeFailedRecords = field(default_factory=FakeFailedRecords)
    sleeps: list[float] = field(default_factory=list)

    def service(self, **overrides: Any) -> RotationService:
        options = {name: overrides.pop(name) for name in ("retry", "time_budget") if name in overrides}
        timer = {name: overrides.pop(name) for name in ("monotonic",) if name in overrides}
        adapters: dict[str, Any] = {
            "index": self.index,
            "secrets": self.secrets,
            "vercel": self.vercel,
            "failed_records": self.failed,
        }
        adapters.update(overrides)
        # The jitter drawn at its ceiling.
        clock = Clock(
            now=lambda: datetime(2026, 11, 27, tzinfo=UTC),
            sleep=self.sleeps.append,
            uniform=lambda _, high: high,
            **timer,
        )
        return RotationService(ROTATION_SETTINGS, RotationAdapters(**adapters), clock=clock, **options)


# A secret belongs to one installation (test_secret_ownership.py): its resources are the targets.
ROTATION_TARGETS = [
    RotationTarget("icfg_demo01", "db_primary", "ORDERS"),
    RotationTarget("icfg_demo01", "db_replica", None),
    RotationTarget("icfg_demo01", "db_other", "OTHER"),
]


def parsing_hits_a_bug_for(resource_id: str, monkeypatch: Any) -> None:
    """Parsing a record of ``resource_id`` raises a ``RuntimeError`` (a bug, not an invalid record)."""
    from vercel_sync.sync import plan

    parse = plan.parse_partner_record

    def parse_with_a_bug(item: Any, **options: Any) -> Any:
        if item.get("resourceId") == resource_id:
            raise RuntimeError("a bug in parsing")
        return parse(item, **options)

    monkeypatch.setattr(plan, "parse_partner_record", parse_with_a_bug)
