"""Rotation sync's edges: its handler on the sample events, the secrets call, the state index (moto)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import httpx
import pytest
import respx
from moto import mock_aws

from tests.fakes import (
    EVENTS,
    ROTATED_SECRET_NAME,
    ROTATION_SETTINGS,
    TOKEN,
    FakeFailedRecords,
    FakeIndex,
    FakeRotationSecrets,
    FakeSecretsApi,
    LambdaContext,
    load_handler,
)
from vercel_sync import wiring
from vercel_sync.adapters.secret_index import INDEX_NAME, DynamoDbSecretIndex
from vercel_sync.adapters.vercel import MAX_REQUEST_BODY_BYTES, VercelClient
from vercel_sync.calls import Clock
from vercel_sync.errors import PermanentSyncError, TransientSyncError
from vercel_sync.observability import handle_rotation_event
from vercel_sync.rotation.events import RotationTarget
from vercel_sync.rotation.service import RotationAdapters, RotationService

BASE = "https://api.vercel.com"
ROTATION_EVENTS = sorted((EVENTS / "rotation").glob("*.json"))


@pytest.fixture
def rotation_app() -> Any:
    return load_handler("rotation_sync")


@pytest.fixture
def fakes() -> Iterator[tuple[FakeSecretsApi, FakeFailedRecords]]:
    vercel, failed = FakeSecretsApi(), FakeFailedRecords()
    index = FakeIndex({ROTATED_SECRET_NAME: [RotationTarget("icfg_demo01", "db_primary", "ORDERS")]})
    adapters = RotationAdapters(index=index, secrets=FakeRotationSecrets(), vercel=vercel, failed_records=failed)
    service = RotationService(ROTATION_SETTINGS, adapters, clock=Clock(sleep=lambda _seconds: None))
    wiring.rotation_service.set(service)
    yield vercel, failed
    wiring.rotation_service.set(None)


@pytest.mark.parametrize("event_file", ROTATION_EVENTS, ids=lambda p: p.name)
def test_the_handler_on_each_sample_event(
    event_file: Any, rotation_app: Any, fakes: tuple[FakeSecretsApi, FakeFailedRecords]
) -> None:
    vercel, failed = fakes
    answer = rotation_app.lambda_handler(json.loads(event_file.read_text()), LambdaContext())
    assert answer == {
        "outcome": "done",
        "secretName": ROTATED_SECRET_NAME,
        "resourcesUpdated": 1,
        "resourcesParked": 0,
        "vercelCalls": 1,
    }
    assert [(call.installation_id, call.resource_id) for call in vercel.calls] == [("icfg_demo01", "db_primary")]
    assert failed.messages == []


def test_the_handler_raises_so_lambda_retries(
    rotation_app: Any, fakes: tuple[FakeSecretsApi, FakeFailedRecords]
) -> None:
    vercel, _ = fakes
    vercel.script["db_primary"] = [TransientSyncError("Vercel answered 503", http_status=503)] * 10
    event = json.loads(ROTATION_EVENTS[0].read_text())
    with pytest.raises(TransientSyncError, match="will be retried"):
        rotation_app.lambda_handler(event, LambdaContext(remaining_ms=60_000))


def test_a_bug_is_retried_without_its_message() -> None:
    class Broken:
        def handle(self, event: Any, *, time_left_ms: int | None = None) -> Any:
            raise KeyError(f"quoting {TOKEN}")

    with pytest.raises(TransientSyncError) as caught:
        handle_rotation_event({}, LambdaContext(), Broken())  # type: ignore[arg-type]
    assert "KeyError" in str(caught.value)
    assert TOKEN not in str(caught.value)
    assert caught.value.__cause__ is None
    assert caught.value.__context__ is None


# -- the secrets call ------------------------------------------------------------------------------


@pytest.fixture
def api() -> Iterator[respx.MockRouter]:
    with respx.mock(base_url=BASE, assert_all_called=False) as router:
        yield router


def test_secrets_update_is_a_put_to_the_resources_secrets(api: respx.MockRouter) -> None:
    route = api.put("/v1/installations/icfg_1/resources/cache%2Feu%20west%231/secrets").mock(
        return_value=httpx.Response(201)
    )
    body = {"secrets": [{"name": "A", "value": "a-value-1"}]}
    assert VercelClient(BASE).update_resource_secrets("icfg_1", "cache/eu west#1", body, token=TOKEN) == {}
    request = route.calls.last.request
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert json.loads(request.content) == body


@pytest.mark.parametrize(
    ("status", "error", "reason"),
    [(400, PermanentSyncError, "vercel_rejected"), (404, PermanentSyncError, "vercel_rejected"), (503, None, None)],
)
def test_secrets_update_outcomes_are_classified_as_imports_are(
    api: respx.MockRouter, status: int, error: type[Exception] | None, reason: str | None
) -> None:
    api.put(url__regex=r".*/secrets$").mock(return_value=httpx.Response(status, json={"error": {"code": "x"}}))
    with pytest.raises(error or TransientSyncError) as caught:
        VercelClient(BASE).update_resource_secrets("icfg_1", "r", {"secrets": []}, token=TOKEN)
    if reason is not None:
        assert isinstance(caught.value, PermanentSyncError)
        assert caught.value.reason == reason
        assert "secrets update" in caught.value.message
    else:
        assert not isinstance(caught.value, PermanentSyncError)


@pytest.mark.parametrize("method", ["import_resource", "update_resource_secrets"])
def test_an_oversized_request_body_is_refused_before_any_call(api: respx.MockRouter, method: str) -> None:
    route = api.put(url__startswith=BASE).mock(return_value=httpx.Response(200))
    body = {"secrets": [{"name": "BIG", "value": "x" * MAX_REQUEST_BODY_BYTES}]}
    with pytest.raises(PermanentSyncError) as caught:
        getattr(VercelClient(BASE), method)("icfg_1", "r", body, token=TOKEN)
    assert caught.value.reason == "invalid_record"
    assert "limit" in caught.value.message
    assert not route.called


def test_secrets_path_ids_are_length_checked() -> None:
    with pytest.raises(PermanentSyncError) as caught:
        VercelClient(BASE).secrets_url("icfg_1", "r" * 257)
    assert caught.value.reason == "invalid_record"


# -- the state table's index (moto in-process) -----------------------------------------------------


def test_the_index_lists_the_resources_whose_last_import_used_the_secret() -> None:
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        dynamodb.create_table(
            TableName="state",
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "secretName", "AttributeType": "S"},
            ],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            GlobalSecondaryIndexes=[
                {
                    "IndexName": INDEX_NAME,
                    "KeySchema": [{"AttributeName": "secretName", "KeyType": "HASH"}],
                    "Projection": {"ProjectionType": "ALL"},
                }
            ],
            BillingMode="PAY_PER_REQUEST",
        )

        def put(resource: str, **attributes: str) -> None:
            item = {
                "pk": {"S": f"resource#6#icfg_1#{resource}"},
                "kind": {"S": "resource"},
                "installationId": {"S": "icfg_1"},
                "resourceId": {"S": resource},
                "status": {"S": "ready"},
            }
            item.update({name: {"S": value} for name, value in attributes.items()})
            dynamodb.put_item(TableName="state", Item=item)

        put("r1", secretName=ROTATED_SECRET_NAME, secretsPrefix="ORDERS")
        put("r2", secretName=ROTATED_SECRET_NAME)
        put("r3", secretName="partner/resources/other")
        put("r4")  # no secret: not in the sparse index
        put("r5", secretName=ROTATED_SECRET_NAME, status="uninstalled")
        dynamodb.put_item(
            TableName="state", Item={"pk": {"S": "ratelimit#icfg_1"}, "secretName": {"S": ROTATED_SECRET_NAME}}
        )

        targets = DynamoDbSecretIndex("state", dynamodb_client=dynamodb).resources_using(ROTATED_SECRET_NAME)

        assert sorted(targets) == [RotationTarget("icfg_1", "r1", "ORDERS"), RotationTarget("icfg_1", "r2", None)]
        with pytest.raises(TransientSyncError, match="ResourceNotFoundException"):
            DynamoDbSecretIndex("missing", dynamodb_client=dynamodb).resources_using(ROTATED_SECRET_NAME)
