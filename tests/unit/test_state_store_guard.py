"""The DynamoDB state store's version guard on moto's in-process DynamoDB (no network): a refused
claim is told stale or busy by the kind of version it carries."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from moto import mock_aws

from tests.fakes import moto_state_table
from vercel_sync.adapters.state_table import DynamoDbStateStore
from vercel_sync.sync_state import ImportedState, ResourceState, VersionKey, partner_version, sequence_version

TABLE = "sync-state"
INSTALLATION = "icfg_guard"


@pytest.fixture
def states() -> Iterator[DynamoDbStateStore]:
    with mock_aws():
        client = moto_state_table(TABLE)
        yield DynamoDbStateStore(TABLE, dynamodb_client=client)


def imported(resource_id: str, version: VersionKey | None) -> ImportedState:
    values: dict[str, Any] = {
        "installation_id": INSTALLATION,
        "resource_id": resource_id,
        "version": version,
        "payload_digest": "d",
        "product_id": "prod",
        "status": "ready",
        "secret_name": None,
        "secrets_prefix": None,
        "imported_at": datetime(2026, 11, 27, tzinfo=UTC),
    }
    return ImportedState(**values)


def sequence(number: str) -> VersionKey:
    key = sequence_version(number)
    assert key is not None
    return key


def test_the_state_answers_for_each_kind_of_version_with_its_own() -> None:
    partner, seq = partner_version(Decimal(3)), sequence("200")
    state = ResourceState(partner_version=partner, sequence_version=seq)
    assert state.applied("partner") is partner
    assert state.applied("sequence") is seq


def test_an_older_sequence_number_is_stale_while_a_partner_version_is_guarded_on_its_own(
    states: DynamoDbStateStore,
) -> None:
    states.record(None, imported("r1", sequence("200")))
    states.record(None, imported("r1", partner_version(Decimal(5))))

    # Stale, not busy: a busy resource is waited for, a stale change is skipped at once.
    assert states.claim(INSTALLATION, "r1", sequence("100"), lease_seconds=5).status == "stale"
    assert states.claim(INSTALLATION, "r1", sequence("200"), lease_seconds=5).status == "stale"
    assert states.claim(INSTALLATION, "r1", partner_version(Decimal(4)), lease_seconds=5).status == "stale"
    assert states.claim(INSTALLATION, "r1", sequence("1000"), lease_seconds=5).status == "claimed"


def test_a_longer_sequence_number_is_newer_in_the_table_too(states: DynamoDbStateStore) -> None:
    states.record(None, imported("r2", sequence("99")))

    assert states.claim(INSTALLATION, "r2", sequence("100"), lease_seconds=5).status == "claimed"
