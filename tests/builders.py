"""What unit tests build (records, changes, a sync service on fakes, a fake clock), shared by the
test files of several modules; the adapter fakes themselves are in ``tests/fakes.py``."""

from __future__ import annotations

from typing import Any

from vercel_sync.changes import SourceChange, SourcePosition

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


# -------------------------------------------------------------------------------------- changes


def change(item: dict[str, Any] | None, identifier: str = "m-1") -> SourceChange:
    """``item`` as a message of a standard queue."""
    position = SourcePosition(kind="sqs", event_source_arn="arn:aws:sqs:us-east-1:1:q", item_identifier=identifier)
    return SourceChange(position, item)
