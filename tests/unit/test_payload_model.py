"""The Import Resource body model: exactly the published schema, strict."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from vercel_sync.payload import RESOURCE_STATUSES, ImportResourcePayload

MINIMAL = {"productId": "postgres", "name": "orders-db", "status": "ready"}
FULL: dict[str, Any] = {
    "ownership": "linked",
    "productId": "postgres",
    "name": "orders-db",
    "status": "suspended",
    "metadata": {"region": "iad1", "size": 20, "ratio": 0.5, "ha": False, "tags": ["a", 1, True]},
    "billingPlan": {
        "id": "plan_pro",
        "type": "prepayment",
        "name": "Pro",
        "description": "d",
        "paymentMethodRequired": False,
        "cost": "$5",
        "details": [{"label": "Storage", "value": "20 GB"}, {"label": "Backups"}],
        "highlightedDetails": [{"label": "HA"}],
        "effectiveDate": "2026-12-01T00:00:00Z",
        "futureVercelField": {"kept": True},
    },
    "notification": {"level": "warn", "title": "Maintenance", "message": "tonight", "href": "https://x.example/m"},
    "extras": {"anything": {"nested": [1, None]}},
    "secrets": [
        {"name": "URL", "value": "v", "prefix": "DB", "environmentOverrides": {"preview": "p", "production": "q"}},
        {"name": "PLAIN", "value": ""},
    ],
}


def test_minimal_and_full_bodies_round_trip() -> None:
    assert ImportResourcePayload.model_validate(MINIMAL).to_body() == MINIMAL
    assert ImportResourcePayload.model_validate(FULL).to_body() == FULL


@pytest.mark.parametrize("status", RESOURCE_STATUSES)
def test_every_vercel_status_is_accepted(status: str) -> None:
    assert ImportResourcePayload.model_validate({**MINIMAL, "status": status}).status == status


def problem(body: dict[str, Any]) -> list[tuple[str, str]]:
    with pytest.raises(ValidationError) as caught:
        ImportResourcePayload.model_validate(body)
    return [(".".join(str(p) for p in e["loc"]), e["type"]) for e in caught.value.errors()]


@pytest.mark.parametrize(
    ("body", "location", "error_type"),
    [
        ({"name": "n", "status": "ready"}, "productId", "missing"),
        ({"productId": "p", "status": "ready"}, "name", "missing"),
        ({"productId": "p", "name": "n"}, "status", "missing"),
        ({**MINIMAL, "productId": ""}, "productId", "string_too_short"),
        ({**MINIMAL, "status": "active"}, "status", "literal_error"),
        ({**MINIMAL, "ownership": "mine"}, "ownership", "literal_error"),
        ({**MINIMAL, "unknownTopLevel": 1}, "unknownTopLevel", "extra_forbidden"),
        ({**MINIMAL, "name": 42}, "name", "string_type"),
        ({**MINIMAL, "metadata": {"k": {"nested": "object"}}}, "metadata.k.str", "string_type"),
        ({**MINIMAL, "billingPlan": {"id": "p", "type": "monthly", "name": "n"}}, "billingPlan.type", "literal_error"),
        ({**MINIMAL, "billingPlan": {"id": "p", "type": "prepayment"}}, "billingPlan.name", "missing"),
        ({**MINIMAL, "notification": {"level": "debug", "title": "t"}}, "notification.level", "literal_error"),
        (
            {**MINIMAL, "notification": {"level": "info", "title": "t", "href": "not a uri"}},
            "notification.href",
            "value_error",
        ),
        ({**MINIMAL, "secrets": [{"name": "A"}]}, "secrets.0.value", "missing"),
        ({**MINIMAL, "secrets": [{"name": "A", "value": "v", "extra": 1}]}, "secrets.0.extra", "extra_forbidden"),
        ({**MINIMAL, "secrets": [{"name": "A", "value": 1}]}, "secrets.0.value", "string_type"),
        (
            {**MINIMAL, "secrets": [{"name": "A", "value": "v", "environmentOverrides": {"staging": "s"}}]},
            "secrets.0.environmentOverrides.staging",
            "extra_forbidden",
        ),
    ],
)
def test_invalid_bodies_name_the_field(body: dict[str, Any], location: str, error_type: str) -> None:
    assert (location, error_type) in problem(body)


def test_secret_values_lists_values_and_overrides() -> None:
    payload = ImportResourcePayload.model_validate(FULL)
    assert sorted(payload.secret_values()) == ["", "p", "q", "v"]
