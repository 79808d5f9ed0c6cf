"""Partner record -> payload: table-driven cases, then properties over generated records."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.builders import change, record_with_secret
from tests.fakes import FakeFailedRecords, FakeSecrets, FakeVercel, build_import_payload, make_sync_service, sync_one
from vercel_sync.errors import InvalidRecordError
from vercel_sync.partner_schema import STATUS_TABLE, PartnerRecord
from vercel_sync.payload import RESOURCE_STATUSES, ImportResourcePayload
from vercel_sync.transform import (
    json_safe,
    parse_partner_record,
    secrets_from_document,
    unwrap_message_body,
)

BASE = {
    "integrationConfigurationId": "icfg_1",
    "resourceId": "res_1",
    "productId": "postgres",
    "name": "db",
    "status": "active",
}


def payload_for(item: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    return build_import_payload(parse_partner_record(item), **kwargs).to_body()


@pytest.mark.parametrize(
    ("item", "kwargs", "expected"),
    [
        (BASE, {}, {"productId": "postgres", "name": "db", "status": "ready"}),
        ({**BASE, "status": "  Provisioning "}, {}, {"productId": "postgres", "name": "db", "status": "pending"}),
        ({**BASE, "status": "PAUSED"}, {}, {"productId": "postgres", "name": "db", "status": "suspended"}),
        ({**BASE, "deleted": True}, {}, {"productId": "postgres", "name": "db", "status": "uninstalled"}),
        (BASE, {"removed": True}, {"productId": "postgres", "name": "db", "status": "uninstalled"}),
        (
            {**BASE, "ownership": "sandbox", "extras": {"a": Decimal("1.5")}, "metadata": {"n": Decimal("3")}},
            {},
            {
                "ownership": "sandbox",
                "productId": "postgres",
                "name": "db",
                "status": "ready",
                "metadata": {"n": 3},
                "extras": {"a": 1.5},
            },
        ),
        (
            {**BASE, "unrelatedPartnerColumn": "ignored", "version": Decimal("12"), "secretsPrefix": "P"},
            {},
            {"productId": "postgres", "name": "db", "status": "ready"},
        ),
        (
            {**BASE, "secretsArn": "arn:secret", "secretsPrefix": "DB"},
            {"secret_document": {"URL": "u", "PW": {"value": "p", "production": "prod"}}},
            {
                "productId": "postgres",
                "name": "db",
                "status": "ready",
                "secrets": [
                    {"name": "URL", "value": "u", "prefix": "DB"},
                    {"name": "PW", "value": "p", "prefix": "DB", "environmentOverrides": {"production": "prod"}},
                ],
            },
        ),
        (
            # A removed resource is uninstalled without reading or sending secrets.
            {**BASE, "secretsArn": "arn:secret"},
            {"removed": True},
            {"productId": "postgres", "name": "db", "status": "uninstalled"},
        ),
    ],
)
def test_payload_table(item: dict[str, Any], kwargs: dict[str, Any], expected: dict[str, Any]) -> None:
    assert payload_for(item, **kwargs) == expected


@pytest.mark.parametrize(
    ("item", "kwargs", "reason"),
    [
        ({k: v for k, v in BASE.items() if k != "name"}, {}, "name: Field required"),
        ({**BASE, "status": "melting"}, {}, "unknown partner status 'melting'"),
        ({**BASE, "resourceId": ""}, {}, "resourceId: String should have at least 1 character"),
        ({**BASE, "resourceId": 7}, {}, "resourceId: Input should be a valid string"),
        ({**BASE, "version": "yesterday"}, {}, "version: Value error, must be a number or an ISO-8601 time"),
        ({**BASE, "version": True}, {}, "version: Value error, must be a number or an ISO-8601 time, not a boolean"),
        ({**BASE, "deleted": "yes"}, {}, "deleted: Input should be a valid boolean"),
        ({**BASE, "notification": {"level": "loud", "title": "t"}}, {}, "notification.level: Input should be"),
        ({**BASE, "secretsArn": "a"}, {"secret_document": ["not", "an", "object"]}, "not a JSON object of name"),
        ({**BASE, "secretsArn": "a"}, {"secret_document": {"K": 5}}, "resource secret 'K': value must be"),
        ({**BASE, "secretsArn": "a"}, {"secret_document": {"K": {"value": "v", "qa": "x"}}}, "unknown keys ['qa']"),
        ({**BASE, "secretsArn": "a"}, {"secret_document": {"K": {"preview": "x"}}}, "'value' must be a string"),
        ({**BASE, "secretsArn": "a"}, {}, "no secret document was read"),
    ],
)
def test_invalid_records_have_readable_reasons(item: dict[str, Any], kwargs: dict[str, Any], reason: str) -> None:
    with pytest.raises(InvalidRecordError) as caught:
        payload_for(item, **kwargs)
    assert reason in caught.value.message


def test_reasons_never_echo_input_values() -> None:
    secret = "s3cr3t-VALUE-in-a-bad-place"
    with pytest.raises(InvalidRecordError) as caught:
        payload_for({**BASE, "metadata": {"password": {"nested": secret}}})
    assert secret not in caught.value.message
    assert "metadata.password" in caught.value.message


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (json.dumps(BASE), BASE),
        (json.dumps({"Type": "Notification", "Message": json.dumps(BASE), "TopicArn": "arn:aws:sns:x"}), BASE),
        (json.dumps({"detail-type": "ResourceChanged", "source": "partner", "detail": BASE}), BASE),
        (json.dumps({"detail-type": "ResourceChanged", "source": "partner", "detail": json.dumps(BASE)}), BASE),
    ],
)
def test_message_bodies_raw_sns_and_eventbridge(body: str, expected: dict[str, Any]) -> None:
    assert unwrap_message_body(body) == expected


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("not json", "message body is not valid JSON"),
        ("[1, 2]", "message body is not a JSON object"),
        (json.dumps({"Type": "Notification", "Message": "{broken"}), "SNS Message is not valid JSON"),
        (json.dumps({"detail-type": "x", "detail": 5}), "EventBridge detail is not a JSON object"),
    ],
)
def test_undecodable_bodies(body: str, reason: str) -> None:
    with pytest.raises(InvalidRecordError, match=reason):
        unwrap_message_body(body)


def test_json_safe_converts_dynamodb_types() -> None:
    value = {
        "i": Decimal("10"),
        "f": Decimal("0.25"),
        "ss": {"b", "a"},
        "ns": {Decimal("2"), Decimal("1")},
        "b": b"\x00\x01",
    }
    assert json_safe(value) == {"i": 10, "f": 0.25, "ss": ["a", "b"], "ns": [1, 2], "b": "AAE="}
    assert isinstance(json_safe(Decimal("10")), int)
    with pytest.raises(InvalidRecordError):
        json_safe(Decimal("NaN"))


def test_versions_parse_to_comparable_values() -> None:
    assert parse_partner_record({**BASE, "version": Decimal("3")}).version == Decimal(3)
    assert parse_partner_record({**BASE, "version": 2.5}).version == Decimal("2.5")
    naive = parse_partner_record({**BASE, "version": "2026-11-26T10:00:00"}).version
    zoned = parse_partner_record({**BASE, "version": "2026-11-26T10:00:00Z"}).version
    assert naive == zoned == datetime(2026, 11, 26, 10, tzinfo=UTC)


def test_every_status_table_entry_maps_to_a_vercel_status() -> None:
    assert set(STATUS_TABLE.values()) == set(RESOURCE_STATUSES)
    for word in RESOURCE_STATUSES:
        assert STATUS_TABLE[word] == word


# ---- properties -------------------------------------------------------------------------

ids = st.text(min_size=1, max_size=64).filter(lambda text: text not in {".", ".."})  # path-id rules
texts = st.text(max_size=40)
scalars = st.one_of(
    texts, st.booleans(), st.integers(-(2**53), 2**53), st.decimals(allow_nan=False, allow_infinity=False, places=3)
)
metadata = st.dictionaries(st.text(max_size=20), st.one_of(scalars, st.lists(scalars, max_size=4)), max_size=5)
billing_plans = st.fixed_dictionaries(
    {"id": texts, "type": st.sampled_from(["prepayment", "subscription"]), "name": texts},
    optional={
        "description": texts,
        "paymentMethodRequired": st.booleans(),
        "cost": texts,
        "details": st.lists(st.fixed_dictionaries({"label": texts}, optional={"value": texts}), max_size=3),
    },
)
notifications = st.fixed_dictionaries(
    {"level": st.sampled_from(["info", "warn", "error"]), "title": texts},
    optional={"message": texts, "href": st.just("https://example.com/x")},
)
secret_specs = st.one_of(
    texts,
    st.fixed_dictionaries({"value": texts}, optional={"development": texts, "preview": texts, "production": texts}),
)
partner_items = st.fixed_dictionaries(
    {
        "integrationConfigurationId": ids,
        "resourceId": ids,
        "productId": st.text(min_size=1, max_size=30),
        "name": st.text(min_size=1, max_size=30),
        "status": st.sampled_from([*sorted(STATUS_TABLE), "Active", " READY "]),
    },
    optional={
        "ownership": st.sampled_from(["owned", "linked", "sandbox"]),
        "metadata": metadata,
        "billingPlan": billing_plans,
        "notification": notifications,
        "extras": st.dictionaries(st.text(max_size=10), scalars, max_size=3),
        "secretsPrefix": texts,
        "version": st.one_of(st.integers(0, 2**40), st.datetimes().map(lambda d: d.isoformat())),
        "deleted": st.booleans(),
        "unrelated": texts,
    },
)


@settings(max_examples=300, deadline=None)
@given(
    item=partner_items,
    removed=st.booleans(),
    secrets=st.dictionaries(st.text(min_size=1, max_size=20), secret_specs, max_size=4),
)
def test_any_valid_partner_record_gives_a_payload_the_model_accepts(
    item: dict[str, Any], removed: bool, secrets: dict[str, Any]
) -> None:
    item = {**item, "secretsArn": f"partner/resources/{item['integrationConfigurationId']}/x"}
    record: PartnerRecord = parse_partner_record(item)
    payload = build_import_payload(record, removed=removed, secret_document=secrets)
    body = payload.to_body()

    # The body survives JSON and the strict model unchanged: what we send is valid.
    assert ImportResourcePayload.model_validate(json.loads(json.dumps(body))).to_body() == body
    assert set(body) <= set(ImportResourcePayload.model_fields)
    if removed or item.get("deleted"):
        assert body["status"] == "uninstalled"
        assert "secrets" not in body
    else:
        assert body["status"] == STATUS_TABLE[item["status"].strip().lower()]
        assert [s["name"] for s in body.get("secrets", [])] == list(secrets)


@settings(max_examples=200, deadline=None)
@given(document=st.dictionaries(st.text(min_size=1, max_size=20), secret_specs, max_size=6), prefix=st.none() | texts)
def test_secret_documents_keep_every_name_and_value(document: dict[str, Any], prefix: str | None) -> None:
    secrets = secrets_from_document(document, prefix)
    for secret, (name, spec) in zip(secrets, document.items(), strict=True):
        assert secret["name"] == name
        assert secret["value"] == (spec if isinstance(spec, str) else spec["value"])
        assert secret.get("prefix") == prefix


def test_number_sets_are_sorted_by_value_and_string_sets_by_text() -> None:
    from decimal import Decimal

    from vercel_sync.transform import json_safe

    assert json_safe({Decimal(30), Decimal(1), Decimal("2.5"), Decimal(10)}) == [1, 2.5, 10, 30]
    assert json_safe({"b", "a", "c"}) == ["a", "b", "c"]


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ('{"metadata": {"x": NaN}}', "not valid JSON"),
        ('{"metadata": {"x": -Infinity}}', "not valid JSON"),
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
    ],
)
def test_bodies_json_cannot_carry_are_invalid_records(body: str, reason: str) -> None:
    from vercel_sync.errors import InvalidRecordError
    from vercel_sync.transform import unwrap_message_body

    with pytest.raises(InvalidRecordError, match=reason):
        unwrap_message_body(body)


def test_nesting_deeper_than_the_limit_is_an_invalid_record() -> None:
    from vercel_sync.errors import InvalidRecordError
    from vercel_sync.transform import MAX_NESTING, parse_partner_record

    extras: dict[str, object] = {}
    inner = extras
    for _ in range(MAX_NESTING + 1):
        inner["x"] = {}
        inner = inner["x"]  # type: ignore[assignment]
    item = {"integrationConfigurationId": "i", "resourceId": "r", "productId": "p", "name": "n", "status": "ready"}
    with pytest.raises(InvalidRecordError, match="nested deeper"):
        parse_partner_record({**item, "extras": extras})
    assert parse_partner_record({**item, "extras": {"x": {"y": 1}}}).extras == {"x": {"y": 1}}


@pytest.mark.parametrize("status", ["exploding", 42, None])
def test_a_removal_is_imported_as_uninstalled_whatever_status_it_held(status: Any) -> None:
    item = {"integrationConfigurationId": "icfg_1", "resourceId": "r1", "productId": "p", "name": "n", "status": status}

    with pytest.raises(InvalidRecordError, match="status"):
        parse_partner_record(item)  # a live record's status must be one of the table's words
    removed = parse_partner_record(item, removed=True)
    deleted = parse_partner_record({**item, "deleted": True})

    for record in (removed, deleted):
        assert build_import_payload(record, removed=record is removed).to_body()["status"] == "uninstalled"


@pytest.mark.parametrize(
    ("where", "item"),
    [
        ("name", record_with_secret(name="orders \ud800")),
        ("metadata", record_with_secret(metadata={"region": "eu-\udfff"})),
    ],
)
def test_text_json_cannot_carry_is_an_invalid_record(where: str, item: dict[str, Any]) -> None:
    failed = FakeFailedRecords()
    service = make_sync_service(vercel=FakeVercel(), secrets=FakeSecrets(), failed_records=failed)

    assert sync_one(service, change(item)) == "parked"
    (message,) = failed.messages
    assert message["reason"] == "invalid_record"
    assert where in message["detail"]
    assert "unicode" in message["detail"].lower()


def test_a_secret_value_with_a_lone_surrogate_is_an_invalid_record() -> None:
    secrets = FakeSecrets(documents={"partner/resources/icfg_1/db_primary": {"PGPASSWORD": "pw-\ud800-x"}})
    failed = FakeFailedRecords()
    service = make_sync_service(vercel=FakeVercel(), secrets=secrets, failed_records=failed)

    assert sync_one(service, change(record_with_secret())) == "parked"
    assert failed.reasons() == ["invalid_record"]
