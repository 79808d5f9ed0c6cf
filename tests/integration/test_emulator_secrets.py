"""The emulator's Update Resource Secrets and credentials routes, over real HTTP on loopback."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.integration.support import (
    TOKEN_1,
    TOKEN_2,
    assert_error,
    loopback_client,
    put,
    resource_path,
    valid_body,
)
from vercel_emulator import CallCount, EmulatorServer, FaultSettings

pytestmark = pytest.mark.integration

NEW_VALUE = "postgres://user:ROTATED-pw-7f3a@db.internal/orders"
CLIENT_SECRET = "integration-client-secret-1"


def secrets_path(installation_id: str, resource_id: str) -> str:
    return resource_path(installation_id, resource_id) + "/secrets"


def secrets_body(*secrets: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"secrets": list(secrets) or [{"name": "DATABASE_URL", "value": NEW_VALUE, "prefix": "ORDERS"}], **extra}


def test_secrets_update_replaces_what_is_held_and_is_counted_apart(
    vercel: EmulatorServer, client: httpx.Client
) -> None:
    assert put(client, resource_path("icfg_1", "db/1"), valid_body()).status_code == 200

    response = put(client, secrets_path("icfg_1", "db/1"), secrets_body())

    assert response.status_code == 201
    assert response.content == b""
    held = client.get(resource_path("icfg_1", "db/1")).json()
    assert held["secrets"] == [{"name": "DATABASE_URL", "prefix": "ORDERS"}]
    assert held["status"] == "ready"  # the rest of the resource is untouched
    assert NEW_VALUE not in client.get(resource_path("icfg_1", "db/1")).text
    body = vercel.imported_body("icfg_1", "db/1")
    assert body is not None
    assert body["secrets"] == [{"name": "DATABASE_URL", "value": NEW_VALUE, "prefix": "ORDERS"}]
    assert vercel.secrets_call_count("icfg_1", "db/1") == CallCount(1, {"201": 1})
    assert vercel.call_count("icfg_1", "db/1") == CallCount(1, {"200": 1})  # the import alone
    calls = client.get("/_emulator/calls").json()
    assert calls["byRoute"] == {"resource": 3, "secrets": 1}  # an import, two reads
    assert {(row["route"], row["method"]) for row in calls["calls"]} == {
        ("resource", "PUT"),
        ("resource", "GET"),
        ("secrets", "PUT"),
    }


def test_a_partial_update_keeps_the_secrets_it_does_not_name(vercel: EmulatorServer, client: httpx.Client) -> None:
    two = [{"name": "A", "value": "a-value-1"}, {"name": "B", "value": "b-value-1"}]
    put(client, resource_path("icfg_1", "r"), valid_body(secrets=two))

    response = put(client, secrets_path("icfg_1", "r"), secrets_body({"name": "B", "value": "b-value-2"}, partial=True))

    assert response.status_code == 201
    body = vercel.imported_body("icfg_1", "r") or {}
    assert sorted((s["name"], s["value"]) for s in body["secrets"]) == [("A", "a-value-1"), ("B", "b-value-2")]


def test_a_resource_never_imported_is_404(vercel: EmulatorServer, client: httpx.Client) -> None:
    assert_error(put(client, secrets_path("icfg_1", "nope"), secrets_body()), 404, "not_found")
    assert vercel.held_resource("icfg_1", "nope") is None


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "secrets: required"),
        ({"secrets": [{"name": "A"}]}, "secrets.0.value: required"),
        ({"secrets": [], "partial": "yes"}, "partial: must be a boolean"),
        ({"secrets": [], "extra": 1}, "extra: unknown field"),
        ({"secrets": [{"name": "A", "value": "v", "environmentOverrides": {"staging": "x"}}]}, "staging"),
    ],
)
def test_secrets_bodies_are_checked_as_imports_are(client: httpx.Client, body: dict[str, Any], field: str) -> None:
    put(client, resource_path("icfg_1", "r"), valid_body())
    message = assert_error(put(client, secrets_path("icfg_1", "r"), body), 400, "bad_request")
    assert field in message


def test_secrets_updates_authorise_like_imports(client: httpx.Client, vercel: EmulatorServer) -> None:
    put(client, resource_path("icfg_1", "r"), valid_body())
    with loopback_client(vercel.url) as anonymous:
        assert_error(put(anonymous, secrets_path("icfg_1", "r"), secrets_body()), 401, "unauthorized")
    with loopback_client(vercel.url, TOKEN_2) as other:
        assert_error(put(other, secrets_path("icfg_1", "r"), secrets_body()), 403, "forbidden")
    assert_error(put(client, secrets_path("icfg_unknown", "r"), secrets_body()), 404, "not_found")
    for method in ("GET", "POST", "DELETE"):
        response = client.request(method, secrets_path("icfg_1", "r"))
        assert_error(response, 405, "method_not_allowed")
        assert response.headers["allow"] == "PUT"


def test_secrets_updates_have_their_own_rate_limit(vercel: EmulatorServer, client: httpx.Client) -> None:
    vercel.set_rate_limit("1/60")
    vercel.set_secrets_rate_limit("2/60")
    put(client, resource_path("icfg_1", "r"), valid_body())  # the one import of the window

    answers = [put(client, secrets_path("icfg_1", "r"), secrets_body()).status_code for _ in range(3)]

    assert answers == [201, 201, 429]
    limited = put(client, secrets_path("icfg_1", "r"), secrets_body())
    assert int(limited.headers["retry-after"]) >= 1
    assert "secrets updates" in assert_error(limited, 429, "rate_limited")
    assert client.get("/_emulator/secrets-rate-limit").json() == {"calls": 2, "seconds": 60.0}
    assert client.post("/_emulator/secrets-rate-limit", json={"calls": 5, "seconds": 1}).status_code == 200
    assert put(client, secrets_path("icfg_1", "r"), secrets_body()).status_code == 201


def test_faults_apply_to_secrets_updates_with_their_own_sequence(vercel: EmulatorServer, client: httpx.Client) -> None:
    put(client, resource_path("icfg_1", "r"), valid_body())
    vercel.set_faults(FaultSettings(error_rate=1.0))
    response = put(client, secrets_path("icfg_1", "r"), secrets_body())
    assert response.status_code in (500, 502, 503, 504)
    vercel.set_faults(FaultSettings())
    body = vercel.imported_body("icfg_1", "r") or {}
    assert body["secrets"][0]["value"] != NEW_VALUE  # a faulted call stores nothing


def test_credentials_rotate_then_revoke(vercel: EmulatorServer, client: httpx.Client) -> None:
    rotated = client.post("/v1/installations/icfg_1/credentials/rotate", json={"client_secret": "any"})

    assert rotated.status_code == 200
    answer = rotated.json()
    # The shape @vercel/sdk validates (issue 16): the SDK's type, a lifetime and a scope.
    assert set(answer) == {"access_token", "token_type", "expires_in", "scope"}
    assert answer["token_type"] == "oauth2-token"
    new_token = answer["access_token"]
    assert new_token != TOKEN_1
    assert vercel.accepted_tokens("icfg_1") == 2
    with loopback_client(vercel.url, new_token) as renewed:
        assert renewed.get(resource_path("icfg_1")).status_code == 200
        assert client.get(resource_path("icfg_1")).status_code == 200  # the old one still works
        revoke = {"client_secret": "any", "access_token": TOKEN_1}
        assert renewed.post("/v1/installations/icfg_1/credentials/revoke", json=revoke).status_code == 204
        assert_error(client.get(resource_path("icfg_1")), 401, "unauthorized")
        assert_error(renewed.post("/v1/installations/icfg_1/credentials/revoke", json=revoke), 404, "not_found")
        last = {"client_secret": "any", "access_token": new_token}
        assert_error(renewed.post("/v1/installations/icfg_1/credentials/revoke", json=last), 409, "conflict")
        assert_error(renewed.post("/v1/installations/icfg_1/credentials/rotate", json={}), 400, "bad_request")
    counted = client.get("/_emulator/calls").json()["byRoute"]
    assert counted["credentials/rotate"] == 2
    assert counted["credentials/revoke"] == 3


def test_a_configured_client_secret_is_required() -> None:
    with (
        EmulatorServer({"icfg_1": TOKEN_1}, client_secret=CLIENT_SECRET) as server,
        loopback_client(server.url, TOKEN_1) as http,
    ):
        path = "/v1/installations/icfg_1/credentials/rotate"
        assert_error(http.post(path, json={"client_secret": "wrong"}), 403, "forbidden")
        assert http.post(path, json={"client_secret": CLIENT_SECRET}).status_code == 200
        with loopback_client(server.url, TOKEN_2) as stranger:
            assert_error(stranger.post(path, json={"client_secret": CLIENT_SECRET}), 401, "unauthorized")
