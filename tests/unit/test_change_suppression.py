"""Change suppression must not swallow a real change: every field of the import payload takes part
in the digest, so changing any one of them alone reaches Vercel."""

from __future__ import annotations

import copy
import hashlib
import hmac
from collections.abc import Callable
from typing import Any

import pytest

from tests.fakes import TOKEN, FakeFailedRecords, FakeSecrets, FakeStateStore, FakeVercel, make_sync_service, sync_one
from tests.leak_scan import register_secret
from vercel_sync.changes import SourceChange, SourcePosition
from vercel_sync.sync.service import SyncService
from vercel_sync.sync_state import payload_digest

INSTALLATION = "icfg_fields"
SECRET_NAME = f"partner/resources/{INSTALLATION}/orders-db"
PASSWORD = "pw-FIELDS-first-4c1d9e7b"
CHANGED_PASSWORD = "pw-FIELDS-second-8a2f6c0d"
PREVIEW_PASSWORD = "pw-FIELDS-preview-3e5b7a91"
CHANGED_PREVIEW_PASSWORD = "pw-FIELDS-preview-changed-6d4c2b"
register_secret(
    PASSWORD, CHANGED_PASSWORD, PREVIEW_PASSWORD, CHANGED_PREVIEW_PASSWORD, label="test_change_suppression's secrets"
)

# A record that sets every field the payload carries, so each can be changed alone.
RECORD: dict[str, Any] = {
    "integrationConfigurationId": INSTALLATION,
    "resourceId": "orders",
    "productId": "postgres",
    "name": "orders-db",
    "status": "active",
    "ownership": "owned",
    "metadata": {"region": "iad1", "tier": "small"},
    "billingPlan": {"id": "plan_small", "type": "subscription", "name": "Small", "cost": "$10"},
    "notification": {"level": "info", "title": "Ready"},
    "extras": {"shard": {"count": 1}},
    "secretsArn": SECRET_NAME,
    "secretsPrefix": "ORDERS",
}
SECRET_DOCUMENT: dict[str, Any] = {"PGPASSWORD": {"value": PASSWORD, "preview": PREVIEW_PASSWORD}, "PGUSER": "orders"}


def set_path(document: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    for key in parents:
        document = document[key]
    document[last] = value


# (what changes, its place in the record or the secret document, the new value, how the body shows it)
RECORD_CHANGES: list[tuple[str, Any, Callable[[dict[str, Any]], Any], Any]] = [
    ("productId", "redis", lambda body: body["productId"], "redis"),
    ("name", "orders-db-renamed", lambda body: body["name"], "orders-db-renamed"),
    ("status", "paused", lambda body: body["status"], "suspended"),
    ("ownership", "linked", lambda body: body["ownership"], "linked"),
    ("metadata.tier", "large", lambda body: body["metadata"]["tier"], "large"),
    ("metadata.zone", "b", lambda body: body["metadata"].get("zone"), "b"),  # a key added
    ("billingPlan.cost", "$20", lambda body: body["billingPlan"]["cost"], "$20"),
    ("notification.level", "warn", lambda body: body["notification"]["level"], "warn"),
    ("extras.shard.count", 2, lambda body: body["extras"]["shard"]["count"], 2),
    ("secretsPrefix", "ORDERS_V2", lambda body: {s["prefix"] for s in body["secrets"]}, {"ORDERS_V2"}),
]
SECRET_CHANGES: list[tuple[str, Any, Callable[[dict[str, Any]], Any], Any]] = [
    ("PGPASSWORD.value", CHANGED_PASSWORD, lambda body: body["secrets"][0]["value"], CHANGED_PASSWORD),
    (
        "PGPASSWORD.preview",
        CHANGED_PREVIEW_PASSWORD,
        lambda body: body["secrets"][0]["environmentOverrides"]["preview"],
        CHANGED_PREVIEW_PASSWORD,
    ),
    ("PGUSER", "orders_rw", lambda body: body["secrets"][1]["value"], "orders_rw"),
]


def change(item: dict[str, Any], message_id: str) -> SourceChange:
    return SourceChange(SourcePosition("sqs", "arn:aws:sqs:us-east-1:1:q", message_id), item)


def make_service(vercel: FakeVercel, secrets: FakeSecrets) -> SyncService:
    return make_sync_service(
        vercel=vercel, secrets=secrets, failed_records=FakeFailedRecords(), state_store=FakeStateStore()
    )


def sync_before_and_after(record_after: dict[str, Any], document_after: dict[str, Any]) -> tuple[list[str], FakeVercel]:
    vercel = FakeVercel()
    secrets = FakeSecrets(documents={SECRET_NAME: copy.deepcopy(SECRET_DOCUMENT)})
    service = make_service(vercel, secrets)
    outcomes = [sync_one(service, change(copy.deepcopy(RECORD), "m1"))]
    # The same record again costs no call: suppression is on, so what follows tests it.
    outcomes.append(sync_one(service, change(copy.deepcopy(RECORD), "m2")))
    secrets.documents[SECRET_NAME] = document_after
    outcomes.append(sync_one(service, change(record_after, "m3")))
    return outcomes, vercel


@pytest.mark.parametrize(("path", "value", "shown", "expected"), RECORD_CHANGES, ids=[c[0] for c in RECORD_CHANGES])
def test_changing_one_record_field_alone_reaches_vercel(
    path: str, value: Any, shown: Callable[[dict[str, Any]], Any], expected: Any
) -> None:
    after = copy.deepcopy(RECORD)
    set_path(after, path, value)

    outcomes, vercel = sync_before_and_after(after, copy.deepcopy(SECRET_DOCUMENT))

    assert outcomes == ["imported", "unchanged", "imported"]
    assert len(vercel.calls) == 2
    assert shown(vercel.calls[0].body) != expected
    assert shown(vercel.calls[1].body) == expected


@pytest.mark.parametrize(("path", "value", "shown", "expected"), SECRET_CHANGES, ids=[c[0] for c in SECRET_CHANGES])
def test_changing_one_secret_alone_reaches_vercel(
    path: str, value: Any, shown: Callable[[dict[str, Any]], Any], expected: Any
) -> None:
    document = copy.deepcopy(SECRET_DOCUMENT)
    set_path(document, path, value)

    outcomes, vercel = sync_before_and_after(copy.deepcopy(RECORD), document)

    assert outcomes == ["imported", "unchanged", "imported"]
    assert len(vercel.calls) == 2
    assert shown(vercel.calls[0].body) != expected
    assert shown(vercel.calls[1].body) == expected


def test_a_change_to_an_attribute_the_payload_does_not_carry_is_still_suppressed() -> None:
    after = {**copy.deepcopy(RECORD), "internalNote": "not sent to Vercel"}

    outcomes, vercel = sync_before_and_after(after, copy.deepcopy(SECRET_DOCUMENT))

    assert outcomes == ["imported", "unchanged", "unchanged"]
    assert len(vercel.calls) == 1


# The body as the pipeline builds it from RECORD and SECRET_DOCUMENT.
BODY: dict[str, Any] = {
    "productId": "postgres",
    "name": "orders-db",
    "status": "ready",
    "ownership": "owned",
    "metadata": {"region": "iad1", "tier": "small"},
    "billingPlan": {"id": "plan_small", "type": "subscription", "name": "Small", "cost": "$10"},
    "notification": {"level": "info", "title": "Ready"},
    "extras": {"shard": {"count": 1}},
    "secrets": [
        {"name": "PGPASSWORD", "value": PASSWORD, "prefix": "ORDERS", "environmentOverrides": {"preview": "p"}},
        {"name": "PGUSER", "value": "orders", "prefix": "ORDERS"},
    ],
}
BODY_CHANGES = [
    ("productId", "redis"),
    ("name", "orders-db-2"),
    ("status", "suspended"),
    ("ownership", "linked"),
    ("metadata", {"region": "iad1", "tier": "large"}),
    ("metadata", {"region": "iad1"}),
    ("billingPlan", {"id": "plan_small", "type": "subscription", "name": "Small", "cost": "$20"}),
    ("notification", {"level": "warn", "title": "Ready"}),
    ("extras", {"shard": {"count": 2}}),
    ("secrets", [{"name": "PGPASSWORD", "value": CHANGED_PASSWORD, "prefix": "ORDERS"}]),
]


@pytest.mark.parametrize(("field", "value"), BODY_CHANGES)
def test_the_digest_changes_with_each_payload_field(field: str, value: Any) -> None:
    changed = {**BODY, field: value}
    assert payload_digest(changed, key=TOKEN) != payload_digest(BODY, key=TOKEN)


@pytest.mark.parametrize("field", [field for field in BODY if field not in ("productId", "name", "status")])
def test_the_digest_changes_when_an_optional_field_is_dropped(field: str) -> None:
    without = {key: value for key, value in BODY.items() if key != field}
    assert payload_digest(without, key=TOKEN) != payload_digest(BODY, key=TOKEN)


def test_the_digest_of_a_body_is_the_same_from_release_to_release() -> None:
    """The table keeps digests across deploys: a canonical form that changed (key order, spacing,
    escaping) would make every stored digest differ, and the first batch after a deploy would
    re-import every resource at once."""
    body = {"name": 'café "x"', "status": "ready", "metadata": {"b": 1, "a": [True, None, 1.5]}}
    canonical = '{"metadata":{"a":[true,null,1.5],"b":1},"name":"café \\"x\\"","status":"ready"}'
    assert payload_digest(body, key="k") == hmac.new(b"k", canonical.encode("utf-8"), hashlib.sha256).hexdigest()
