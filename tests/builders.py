"""What unit tests build (records, changes, a sync service on fakes, a fake clock), shared by the
test files of several modules; the adapter fakes themselves are in ``tests/fakes.py``."""

from __future__ import annotations

from typing import Any

from tests.fakes import FakeFailedRecords, FakeSecrets, FakeStateStore, FakeVercel, make_sync_service
from vercel_sync.changes import SourceChange, SourcePosition
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
