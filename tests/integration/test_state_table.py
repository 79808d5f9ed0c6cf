"""The sync-state table adapter against DynamoDB (moto server): claims, the version guard,
digests, and what concurrent invocations can and cannot do to one resource."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import UTC, datetime
from decimal import Decimal
from types import ModuleType
from typing import Any

import pytest

from tests.integration.conftest import INSTALLATION_ID, LocalStack
from vercel_sync.adapters.state_table import DynamoDbStateStore, resource_key
from vercel_sync.sync_state import ImportedState, VersionKey, partner_version, sequence_version

pytestmark = pytest.mark.integration


def store(local_stack: LocalStack, clock: Any = None) -> DynamoDbStateStore:
    table = local_stack.resources.tables["SyncStateTable"].name
    if clock is None:
        return DynamoDbStateStore(table, dynamodb_client=local_stack.aws["dynamodb"])
    return DynamoDbStateStore(table, dynamodb_client=local_stack.aws["dynamodb"], clock=clock)


def imported(resource_id: str, version: VersionKey | None, digest: str = "d1", **extra: Any) -> ImportedState:
    values: dict[str, Any] = {
        "installation_id": INSTALLATION_ID,
        "resource_id": resource_id,
        "version": version,
        "payload_digest": digest,
        "product_id": "prod",
        "status": "ready",
        "secret_name": None,
        "secrets_prefix": None,
        "imported_at": datetime(2026, 11, 27, tzinfo=UTC),
    }
    values.update(extra)
    return ImportedState(**values)


def item(local_stack: LocalStack, resource_id: str) -> dict[str, Any]:
    table = local_stack.resources.tables["SyncStateTable"].name
    key = {"pk": {"S": resource_key(INSTALLATION_ID, resource_id)}}
    response = local_stack.aws["dynamodb"].get_item(TableName=table, Key=key, ConsistentRead=True)
    result: dict[str, Any] = response.get("Item", {})
    return result


def test_claim_record_and_the_version_guard(local_stack: LocalStack) -> None:
    states = store(local_stack)
    v5, v4 = partner_version(Decimal(5)), partner_version(Decimal(4))

    claim = states.claim(INSTALLATION_ID, "r1", v5, lease_seconds=30)
    assert claim.status == "claimed"
    assert claim.state.payload_digest is None
    secret_arn = "arn:aws:secretsmanager:us-east-1:1:secret:partner/db-AbCdEf"
    states.record(claim.claim_id, imported("r1", v5, secret_name=secret_arn, secrets_prefix="P"))

    stored = item(local_stack, "r1")
    assert stored["partnerVersion"] == {"N": "5"}
    assert stored["payloadDigest"] == {"S": "d1"}
    # The id's name part as given: rotation looks it up with and without the suffix (a partial ARN
    # of a name ending like a suffix must not be kept as another secret's name).
    assert stored["secretName"] == {"S": "partner/db-AbCdEf"}
    assert stored["secretsPrefix"] == {"S": "P"}
    assert "claimId" not in stored
    assert "claimUntil" not in stored

    assert states.claim(INSTALLATION_ID, "r1", v4, lease_seconds=30).status == "stale"
    assert states.claim(INSTALLATION_ID, "r1", v5, lease_seconds=30).status == "stale"
    newer = states.claim(INSTALLATION_ID, "r1", partner_version(Decimal(6)), lease_seconds=30)
    assert newer.status == "claimed"
    assert newer.state.payload_digest == "d1"
    assert newer.state.partner_version == v5


def test_a_live_claim_makes_others_wait_and_a_lapsed_one_does_not(local_stack: LocalStack) -> None:
    now = [1_000_000.0]
    states = store(local_stack, clock=lambda: now[0])

    first = states.claim(INSTALLATION_ID, "r2", None, lease_seconds=10)
    second = states.claim(INSTALLATION_ID, "r2", None, lease_seconds=10)
    assert (first.status, second.status) == ("claimed", "busy")
    assert second.busy_until == pytest.approx(now[0] + 10)

    now[0] += 11  # the first invocation died holding it: the lease lapses
    third = states.claim(INSTALLATION_ID, "r2", None, lease_seconds=10)
    assert third.status == "claimed"

    # The first one's late record still moves the state on, but leaves the new claim alone.
    states.record(first.claim_id, imported("r2", None, digest="late"))
    assert item(local_stack, "r2")["claimId"] == {"S": third.claim_id}
    states.release(INSTALLATION_ID, "r2", str(third.claim_id))
    assert "claimId" not in item(local_stack, "r2")


def test_a_record_never_moves_a_version_backwards(local_stack: LocalStack) -> None:
    states = store(local_stack)
    states.record(None, imported("r3", partner_version(Decimal(9)), digest="nine"))
    states.record(None, imported("r3", partner_version(Decimal(7)), digest="seven"))

    stored = item(local_stack, "r3")
    assert stored["partnerVersion"] == {"N": "9"}
    assert stored["payloadDigest"] == {"S": "nine"}


def test_sequence_numbers_compare_as_numbers_not_text(local_stack: LocalStack) -> None:
    states = store(local_stack)
    longer, shorter = sequence_version("1" + "0" * 22), sequence_version("9" * 21)
    assert longer is not None
    assert shorter is not None
    states.record(None, imported("r4", longer))

    assert states.claim(INSTALLATION_ID, "r4", shorter, lease_seconds=5).status == "stale"
    # The other kind of version is guarded on its own.
    assert states.claim(INSTALLATION_ID, "r4", partner_version(Decimal(1)), lease_seconds=5).status == "claimed"


def test_concurrent_claims_let_exactly_one_caller_through(local_stack: LocalStack) -> None:
    states = [store(local_stack) for _ in range(8)]
    outcomes: list[str] = []
    barrier = threading.Barrier(len(states))
    lock = threading.Lock()

    def claim(state_store: DynamoDbStateStore, version: int) -> None:
        barrier.wait()
        result = state_store.claim(INSTALLATION_ID, "r5", partner_version(Decimal(version)), lease_seconds=30)
        with lock:
            outcomes.append(result.status)

    threads = [threading.Thread(target=claim, args=(s, i + 1)) for i, s in enumerate(states)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert Counter(outcomes)["claimed"] == 1


def test_the_handlers_skip_stale_and_unchanged_changes_across_batches(
    local_stack: LocalStack, handlers: dict[str, ModuleType]
) -> None:
    from tests.integration.support import record, send, sync_queue

    send(local_stack, record("kv_9", "active", version=2), group="kv_9")
    sync_queue(local_stack, handlers)
    send(local_stack, record("kv_9", "paused", version=1), group="kv_9")  # late and older
    sync_queue(local_stack, handlers)
    send(local_stack, {**record("kv_9", "active", version=3), "internal": "not in the payload"}, group="kv_9")
    sync_queue(local_stack, handlers)

    held = local_stack.emulator.imported_body(INSTALLATION_ID, "kv_9")
    assert held is not None
    assert held["status"] == "ready"
    assert local_stack.emulator.call_count(INSTALLATION_ID, "kv_9").total == 1
    assert item(local_stack, "kv_9")["partnerVersion"] == {"N": "3"}


def test_a_claim_whose_answer_was_lost_is_still_ours(local_stack: LocalStack) -> None:
    states = store(local_stack)
    first = states.claim(INSTALLATION_ID, "r6", None, lease_seconds=30)
    assert first.claim_id is not None

    # botocore's retry of a claim that went through fails its condition against that very claim.
    again = states._why_not(INSTALLATION_ID, "r6", None, 0.0, first.claim_id)

    assert again.status == "claimed"
    assert states.claim(INSTALLATION_ID, "r6", None, lease_seconds=30).status == "busy"  # others still wait


def test_a_refused_claim_is_explained_by_the_item_it_failed_against_without_a_read(local_stack: LocalStack) -> None:
    calls: Counter[str] = Counter()
    client = local_stack.aws["dynamodb"]

    class Counting:
        def __getattr__(self, name: str) -> Any:
            calls[name] += 1
            return getattr(client, name)

    table = local_stack.resources.tables["SyncStateTable"].name
    states = DynamoDbStateStore(table, dynamodb_client=Counting())
    first = states.claim(INSTALLATION_ID, "r7", partner_version(Decimal(5)), lease_seconds=30)
    busy = states.claim(INSTALLATION_ID, "r7", partner_version(Decimal(6)), lease_seconds=30)
    states.record(first.claim_id, imported("r7", partner_version(Decimal(5))))
    stale = states.claim(INSTALLATION_ID, "r7", partner_version(Decimal(4)), lease_seconds=30)

    assert (first.status, busy.status, stale.status) == ("claimed", "busy", "stale")
    assert stale.state.partner_version == partner_version(Decimal(5))
    assert calls == Counter(update_item=4)  # no GetItem: each failure brought its item back


def test_a_repair_claims_the_version_applied_but_not_an_older_one(local_stack: LocalStack) -> None:
    states = store(local_stack)
    v5, v4 = partner_version(Decimal(5)), partner_version(Decimal(4))
    claim = states.claim(INSTALLATION_ID, "r_repair", v5, lease_seconds=30)
    states.record(claim.claim_id, imported("r_repair", v5))

    assert states.claim(INSTALLATION_ID, "r_repair", v5, lease_seconds=30).status == "stale"
    assert states.claim(INSTALLATION_ID, "r_repair", v4, lease_seconds=30, repair=True).status == "stale"
    assert states.claim(INSTALLATION_ID, "r_repair", v5, lease_seconds=30, repair=True).status == "claimed"


def test_a_repair_of_the_version_applied_waits_while_another_call_holds_the_resource(local_stack: LocalStack) -> None:
    """Busy, not stale: the repair goes once the call in flight is done (it may be a skip, not a send)."""
    states = store(local_stack)
    v5 = partner_version(Decimal(5))
    claim = states.claim(INSTALLATION_ID, "r_repair_busy", v5, lease_seconds=30)
    states.record(claim.claim_id, imported("r_repair_busy", v5))
    holding = states.claim(INSTALLATION_ID, "r_repair_busy", v5, lease_seconds=30, repair=True)
    waiting = states.claim(INSTALLATION_ID, "r_repair_busy", v5, lease_seconds=30, repair=True)
    assert (holding.status, waiting.status) == ("claimed", "busy")
