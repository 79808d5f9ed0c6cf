"""The Vercel API emulator over real HTTP on a loopback port: routes, auth, schema, limits, faults."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.support import (
    SECRET_VALUE,
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

REPOSITORY = Path(__file__).resolve().parents[2]


# -- imports and reads ----------------------------------------------------------------------------


def test_import_answers_name_and_is_read_back_by_partner_id_without_secret_values(
    vercel: EmulatorServer, client: httpx.Client
) -> None:
    response = put(client, resource_path("icfg_1", "db_primary"), valid_body())

    assert response.status_code == 200
    assert response.json() == {"name": "orders-db"}
    held = client.get(resource_path("icfg_1", "db_primary"))
    assert held.status_code == 200
    resource = held.json()
    assert resource["internalId"].startswith("res_")
    assert resource["partnerId"] == "db_primary"
    assert resource["status"] == "ready"
    assert resource["billingPlan"]["anExtraKey"] == {"allowed": True}
    assert resource["secrets"] == [{"name": "DATABASE_URL", "prefix": "ORDERS"}]
    assert "TOP-SECRET" not in held.text

    # An upsert: the second import replaces the first and keeps the emulator's id.
    put(client, resource_path("icfg_1", "db_primary"), valid_body(status="suspended", secrets=[]))
    again = client.get(resource_path("icfg_1", "db_primary")).json()
    assert again["internalId"] == resource["internalId"]
    assert again["status"] == "suspended"
    assert again["secrets"] == []


def test_list_and_the_test_only_import_view(vercel: EmulatorServer, client: httpx.Client) -> None:
    put(client, resource_path("icfg_1", "a"), valid_body(name="A"))
    put(client, resource_path("icfg_1", "b"), valid_body(name="B", secrets=[{"name": "K", "value": "v"}]))

    listed = client.get(resource_path("icfg_1"))
    assert listed.status_code == 200
    assert [(r["partnerId"], r["name"]) for r in listed.json()["resources"]] == [("a", "A"), ("b", "B")]
    assert "TOP-SECRET" not in listed.text
    assert client.get(resource_path("icfg_2"), headers={"Authorization": f"Bearer {TOKEN_2}"}).json() == {
        "resources": []
    }

    # The control API's import view is test-only: it has the values, to check what arrived.
    imports = client.get("/_emulator/imports").json()["imports"]
    assert [(i["resourceId"], i["body"]["secrets"][0]["value"]) for i in imports] == [("a", SECRET_VALUE), ("b", "v")]
    assert vercel.imported_body("icfg_1", "a") == valid_body(name="A")
    assert vercel.held_resource("icfg_1", "missing") is None


@pytest.mark.parametrize("resource_id", ["cache/eu west#1", "a?b=c&d", "100%", "..", ".", "ünï+cødé", "x%2Fy"])
def test_percent_encoded_ids_are_one_resource_each(
    vercel: EmulatorServer, client: httpx.Client, resource_id: str
) -> None:
    assert put(client, resource_path("icfg_1", resource_id), valid_body()).status_code == 200

    assert vercel.held_resource("icfg_1", resource_id) is not None
    assert client.get(resource_path("icfg_1", resource_id)).json()["partnerId"] == resource_id
    assert [r["partnerId"] for r in client.get(resource_path("icfg_1")).json()["resources"]] == [resource_id]
    assert vercel.call_count("icfg_1", resource_id).by_status == {"200": 1}


def test_an_unencoded_slash_is_another_route_and_a_missing_resource_is_404(client: httpx.Client) -> None:
    assert_error(put(client, "/v1/installations/icfg_1/resources/cache/eu", valid_body()), 404, "not_found")
    assert_error(client.get(resource_path("icfg_1", "never-imported")), 404, "not_found")


# -- authorisation --------------------------------------------------------------------------------


def test_token_checks_in_order_401_then_404_then_403(client: httpx.Client) -> None:
    path = resource_path("icfg_1", "r")

    missing = put(client, path, valid_body(), Authorization="")
    assert_error(missing, 401, "unauthorized")
    assert missing.headers["www-authenticate"] == "Bearer"
    assert_error(put(client, path, valid_body(), Authorization=TOKEN_1), 401, "unauthorized")  # no scheme
    assert_error(put(client, path, valid_body(), Authorization="Basic " + TOKEN_1), 401, "unauthorized")
    assert_error(put(client, path, valid_body(), Authorization="Bearer unknown"), 401, "unauthorized")
    # An unknown token is refused before the installation is looked at.
    assert_error(
        put(client, resource_path("icfg_nope", "r"), valid_body(), Authorization="Bearer unknown"), 401, "unauthorized"
    )
    assert_error(put(client, resource_path("icfg_nope", "r"), valid_body()), 404, "not_found")
    assert_error(put(client, path, valid_body(), Authorization=f"Bearer {TOKEN_2}"), 403, "forbidden")
    assert_error(client.get(path, headers={"Authorization": f"Bearer {TOKEN_2}"}), 403, "forbidden")
    assert_error(client.get(resource_path("icfg_1"), headers={"Authorization": ""}), 401, "unauthorized")
    assert put(client, path, valid_body(), Authorization=f"bearer {TOKEN_1}").status_code == 200


def test_token_rotation_keeps_the_old_token_until_revoked(vercel: EmulatorServer, client: httpx.Client) -> None:
    path = resource_path("icfg_1", "r")
    rotated = client.post(
        "/_emulator/installations", json={"installationId": "icfg_1", "token": "new", "keepPreviousTokens": True}
    )
    assert rotated.json() == {"installationId": "icfg_1", "acceptedTokens": 2}
    assert put(client, path, valid_body()).status_code == 200
    assert put(client, path, valid_body(), Authorization="Bearer new").status_code == 200

    client.post("/_emulator/installations", json={"installationId": "icfg_1", "token": "new"})  # revoke the rest
    assert_error(put(client, path, valid_body()), 401, "unauthorized")
    assert put(client, path, valid_body(), Authorization="Bearer new").status_code == 200

    vercel.set_token("icfg_3", "third")  # a new installation, from the Python API
    assert put(client, resource_path("icfg_3", "r"), valid_body(), Authorization="Bearer third").status_code == 200
    assert_error(client.post("/_emulator/installations", json={"installationId": "x"}), 400, "bad_request")


# -- the body -------------------------------------------------------------------------------------


def _without(body: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k != key}


def _secret(**changes: Any) -> list[dict[str, Any]]:
    return [{"name": "DATABASE_URL", "value": SECRET_VALUE, **changes}]


INVALID_BODIES: list[tuple[str, dict[str, Any], str]] = [
    ("required", _without(valid_body(), "productId"), "productId: required"),
    ("required in a secret", valid_body(secrets=[{"name": "K"}]), "secrets.0.value: required"),
    ("required in a plan", valid_body(billingPlan={"id": "p", "type": "prepayment"}), "billingPlan.name: required"),
    (
        "required in a detail",
        valid_body(billingPlan={**valid_body()["billingPlan"], "details": [{}]}),
        "details.0.label",
    ),
    ("status enum", valid_body(status="active"), "status: must be one of ready, pending"),
    ("ownership enum", valid_body(ownership="shared"), "ownership: must be one of owned, linked, sandbox"),
    ("plan type enum", valid_body(billingPlan={"id": "p", "type": "free", "name": "F"}), "billingPlan.type: must be"),
    ("level enum", valid_body(notification={"level": "debug", "title": "t"}), "notification.level: must be one of"),
    ("string type", valid_body(name=42), "name: must be a string"),
    (
        "boolean type",
        valid_body(billingPlan={**valid_body()["billingPlan"], "paymentMethodRequired": "true"}),
        "billingPlan.paymentMethodRequired: must be a boolean",
    ),
    ("object type", valid_body(extras=["not", "an", "object"]), "extras: must be an object"),
    ("array type", valid_body(secrets={"name": "K", "value": "v"}), "secrets: must be an array"),
    ("metadata value", valid_body(metadata={"nested": {"a": 1}}), "metadata.nested: must be a string, number"),
    ("metadata array", valid_body(metadata={"deep": [[1]]}), "metadata.deep: must be"),
    ("null is not a value", valid_body(ownership=None), "ownership: must be one of"),
    ("uri", valid_body(notification={"level": "info", "title": "t", "href": "not a uri"}), "notification.href"),
    ("unknown top-level key", valid_body(secretsArn="arn:aws:secretsmanager:x"), "secretsArn: unknown field"),
    (
        "unknown secret key",
        valid_body(secrets=_secret(environment="prod-env-x")),
        "secrets.0.environment: unknown field",
    ),
    ("secret value type", valid_body(secrets=_secret(value=12345)), "secrets.0.value: must be a string"),
    (
        "unknown override",
        valid_body(secrets=_secret(environmentOverrides={"staging": SECRET_VALUE})),
        "secrets.0.environmentOverrides.staging: unknown field",
    ),
    (
        "override type",
        valid_body(secrets=_secret(environmentOverrides={"preview": 1})),
        "secrets.0.environmentOverrides.preview: must be a string",
    ),
    ("closed notification", valid_body(notification={"level": "info", "title": "t", "x": 1}), "notification.x"),
]


@pytest.mark.parametrize(("body", "field_problem"), [c[1:] for c in INVALID_BODIES], ids=[c[0] for c in INVALID_BODIES])
def test_each_schema_violation_is_a_400_naming_the_field_and_never_a_value(
    vercel: EmulatorServer, client: httpx.Client, body: dict[str, Any], field_problem: str
) -> None:
    response = put(client, resource_path("icfg_1", "r"), body)

    message = assert_error(response, 400, "bad_request")
    assert field_problem in message
    for value in (SECRET_VALUE, "TOP-SECRET", "arn:aws", "prod-env-x", "active", "12345", "not a uri"):
        assert value not in response.text
    assert vercel.held_resource("icfg_1", "r") is None


def test_every_problem_is_listed_not_just_the_first(client: httpx.Client) -> None:
    body = {"name": 1, "status": "x", "secrets": [{"value": "v", "y": 2}], "z": 3}

    message = assert_error(put(client, resource_path("icfg_1", "r"), body), 400, "bad_request")

    for problem in ("productId: required", "name:", "status:", "secrets.0.name: required", "secrets.0.y:", "z:"):
        assert problem in message


@pytest.mark.parametrize(
    ("content", "content_type", "expected"),
    [
        (b"{not json", "application/json", "not valid JSON"),
        (b'{"productId": NaN}', "application/json", "not valid JSON"),
        (b"\xff\xfe{}", "application/json", "not valid JSON"),
        (b"[]", "application/json", "body: must be an object"),
        (b'"a string"', "application/json", "body: must be an object"),
        (b"", "application/json", "not valid JSON"),
        (b'{"productId":"p","name":"n","status":"ready"}', "text/plain", "Content-Type"),
    ],
)
def test_bodies_that_are_not_a_json_object_are_400(
    client: httpx.Client, content: bytes, content_type: str, expected: str
) -> None:
    response = client.put(resource_path("icfg_1", "r"), content=content, headers={"Content-Type": content_type})

    assert expected in assert_error(response, 400, "bad_request")


def test_an_oversized_body_is_413_and_a_path_id_that_is_not_utf8_is_400(client: httpx.Client) -> None:
    huge = valid_body(extras={"padding": "x" * (1024 * 1024)})
    assert_error(put(client, resource_path("icfg_1", "r"), huge), 413, "payload_too_large")
    assert_error(put(client, "/v1/installations/icfg_1/resources/%FF", valid_body()), 400, "bad_request")


def test_a_lone_surrogate_is_400_and_stores_nothing(client: httpx.Client, vercel: EmulatorServer) -> None:
    content = b'{"productId":"p","name":"orders \\ud800","status":"ready"}'
    response = client.put(resource_path("icfg_1", "r"), content=content, headers={"Content-Type": "application/json"})

    assert "not valid Unicode" in assert_error(response, 400, "bad_request")
    assert vercel.held_resource("icfg_1", "r") is None
    assert client.get(resource_path("icfg_1", "r")).status_code == 404
    assert client.get("/_emulator/imports").status_code == 200


def test_expect_100_continue_is_answered(vercel: EmulatorServer) -> None:
    import socket
    from urllib.parse import urlsplit

    url = urlsplit(vercel.url)
    body = b'{"productId":"p","name":"n","status":"ready"}'
    with socket.create_connection((url.hostname, url.port), timeout=5) as connection:
        connection.sendall(
            b"PUT /v1/installations/icfg_1/resources/r HTTP/1.1\r\nHost: x\r\n"
            + f"Authorization: Bearer {TOKEN_1}\r\nContent-Type: application/json\r\n".encode()
            + f"Content-Length: {len(body)}\r\nExpect: 100-continue\r\n\r\n".encode()
        )
        assert connection.recv(1024).startswith(b"HTTP/1.1 100 Continue")  # before the body is sent
        connection.sendall(body)
        assert connection.recv(4096).startswith(b"HTTP/1.1 200")


def test_the_sdk_headers_are_accepted(client: httpx.Client) -> None:
    content = b'{"productId":"p","name":"n","status":"pending"}'
    for content_type in ("application/json", "application/json; charset=utf-8", "Application/JSON"):
        response = client.put(resource_path("icfg_1", "r"), content=content, headers={"Content-Type": content_type})
        assert response.status_code == 200, response.text


# -- deletion -------------------------------------------------------------------------------------


def test_delete_answers_204_then_the_resource_is_gone_from_get_and_the_list(
    vercel: EmulatorServer, client: httpx.Client
) -> None:
    put(client, resource_path("icfg_1", "a"), valid_body(name="A"))
    put(client, resource_path("icfg_1", "b/1"), valid_body(name="B"))

    deleted = client.delete(resource_path("icfg_1", "b/1"))

    assert deleted.status_code == 204
    assert deleted.content == b""
    assert_error(client.get(resource_path("icfg_1", "b/1")), 404, "not_found")
    assert [r["partnerId"] for r in client.get(resource_path("icfg_1")).json()["resources"]] == ["a"]
    assert vercel.held_resource("icfg_1", "b/1") is None
    assert [i["resourceId"] for i in client.get("/_emulator/imports").json()["imports"]] == ["a"]
    # Unknown (or already deleted): 404. Imported again: held again, under the same id.
    assert_error(client.delete(resource_path("icfg_1", "b/1")), 404, "not_found")
    assert_error(client.delete(resource_path("icfg_1", "never")), 404, "not_found")
    assert put(client, resource_path("icfg_1", "b/1"), valid_body(name="B")).status_code == 200
    assert (vercel.held_resource("icfg_1", "b/1") or {})["name"] == "B"
    assert vercel.call_count("icfg_1", "b/1", "DELETE").by_status == {"204": 1, "404": 1}


def test_delete_is_authorised_as_an_import_is(vercel: EmulatorServer, client: httpx.Client) -> None:
    put(client, resource_path("icfg_1", "a"), valid_body())
    assert_error(
        client.delete(resource_path("icfg_1", "a"), headers={"Authorization": "Bearer nope"}), 401, "unauthorized"
    )
    other = {"Authorization": f"Bearer {TOKEN_2}"}
    assert_error(client.delete(resource_path("icfg_1", "a"), headers=other), 403, "forbidden")
    assert vercel.held_resource("icfg_1", "a") is not None


def test_deletions_have_a_rate_limit_of_their_own(vercel: EmulatorServer, client: httpx.Client) -> None:
    vercel.set_delete_rate_limit("2/30")
    for name in ("a", "b", "c"):
        put(client, resource_path("icfg_1", name), valid_body())

    statuses = [client.delete(resource_path("icfg_1", name)) for name in ("a", "missing", "c")]

    assert [r.status_code for r in statuses] == [204, 404, 429]  # every authorised call counts
    assert "2 deletions per 30 s" in assert_error(statuses[2], 429, "rate_limited")
    assert 29 <= int(statuses[2].headers["retry-after"]) <= 30
    assert put(client, resource_path("icfg_1", "d"), valid_body()).status_code == 200  # imports are apart
    assert client.post("/_emulator/delete-rate-limit", json={"calls": 5, "seconds": 1}).json() == {
        "calls": 5,
        "seconds": 1,
    }
    assert client.delete(resource_path("icfg_1", "c")).status_code == 204


# -- routes ---------------------------------------------------------------------------------------


def test_unknown_routes_are_404_and_wrong_methods_405(client: httpx.Client) -> None:
    for path in ("/", "/v2/installations/icfg_1/resources/r", "/v1/installations/icfg_1/things/r", "/_emulator/x"):
        assert_error(client.get(path), 404, "not_found")
    assert_error(client.get("/v1/installations//resources/r"), 404, "not_found")
    for method in ("PATCH", "POST"):  # DELETE is Vercel's Delete Resource (below)
        response = client.request(method, resource_path("icfg_1", "r"))
        assert_error(response, 405, "method_not_allowed")
        assert response.headers["allow"] == "GET, PUT, DELETE"
    assert client.put(resource_path("icfg_1")).headers["allow"] == "GET"
    assert_error(client.get("/_emulator/reset"), 405, "method_not_allowed")
    assert client.get("/_emulator/health").json() == {"status": "ok"}


# -- the rate limit -------------------------------------------------------------------------------


def test_imports_past_the_limit_are_429_with_retry_after_until_the_window_ends(
    vercel: EmulatorServer, client: httpx.Client
) -> None:
    vercel.set_rate_limit("3/2")  # 2 s: the four calls below fit in one window even on a loaded machine
    path = resource_path("icfg_1", "r")
    statuses = [put(client, path, valid_body(name=f"n{i}")).status_code for i in range(3)]
    refused = put(client, path, valid_body(name="refused"))

    assert statuses == [200, 200, 200]
    assert "3 imports per 2 s" in assert_error(refused, 429, "rate_limited")
    assert refused.headers["retry-after"] in {"1", "2"}  # whole seconds to the window's end, at least 1
    assert vercel.imported_body("icfg_1", "r")["name"] == "n2"  # type: ignore[index]  # the 429 stored nothing
    # Per installation: the other one still has its whole window; reads are not limited.
    assert put(client, resource_path("icfg_2", "r"), valid_body(), Authorization=f"Bearer {TOKEN_2}").status_code == 200
    assert client.get(path).status_code == 200

    time.sleep(float(refused.headers["retry-after"]) + 0.05)
    assert put(client, path, valid_body(name="later")).status_code == 200
    assert vercel.call_count("icfg_1", "r").by_status == {"200": 4, "429": 1}


def test_the_rate_limit_is_set_at_start_and_from_the_control_api(client: httpx.Client) -> None:
    with EmulatorServer({"i": "t"}, rate_limit="2/60") as limited, loopback_client(limited.url, "t") as http:
        statuses = [put(http, resource_path("i", "r"), valid_body()) for _ in range(3)]
    assert [r.status_code for r in statuses] == [200, 200, 429]
    assert 59 <= int(statuses[2].headers["retry-after"]) <= 60

    assert client.post("/_emulator/rate-limit", json={"calls": 1, "seconds": 30}).json() == {"calls": 1, "seconds": 30}
    assert client.get("/_emulator/rate-limit").json() == {"calls": 1, "seconds": 30}
    assert_error(client.post("/_emulator/rate-limit", json={"calls": 0, "seconds": 1}), 400, "bad_request")


# -- faults ---------------------------------------------------------------------------------------


def test_a_429_can_say_when_the_limit_resets_in_its_body_instead_of_retry_after(
    vercel: EmulatorServer, client: httpx.Client
) -> None:
    vercel.set_rate_limit("1/30")
    assert client.post("/_emulator/faults", json={"retryAfterIn": "body"}).json()["retryAfterIn"] == "body"
    path = resource_path("icfg_1", "r")
    assert put(client, path, valid_body()).status_code == 200
    before = time.time()
    refused = put(client, path, valid_body())

    assert refused.status_code == 429
    assert "retry-after" not in refused.headers
    error = refused.json()["error"]
    assert error["code"] == "rate_limited"
    assert error["limit"]["total"] == 1
    assert error["limit"]["remaining"] == 0
    assert before + 29 <= error["limit"]["reset"] <= time.time() + 31  # epoch seconds: the window's end

    # Both places, and an injected throttle answers the same way.
    vercel.set_faults(FaultSettings(throttle_rate=1.0, throttle_retry_after=5, retry_after_in="both"))
    throttled = put(client, resource_path("icfg_1", "other"), valid_body())
    assert throttled.headers["retry-after"] == "5"
    assert throttled.json()["error"]["limit"]["reset"] >= int(before) + 5
    assert_error(client.post("/_emulator/faults", json={"retryAfterIn": "nowhere"}), 400, "bad_request")


def test_the_cli_takes_where_a_429_says_when_to_come_back() -> None:
    from vercel_emulator.cli import build_parser

    assert build_parser().parse_args(["--retry-after-in", "body"]).retry_after_in == "body"
    assert build_parser().parse_args([]).retry_after_in == "header"


FAULTY = FaultSettings(error_rate=0.2, throttle_rate=0.15, drop_rate=0.15, throttle_retry_after=0)


def _outcome(http: httpx.Client, path: str, body: object) -> str:
    try:
        return str(put(http, path, body).status_code)
    except (httpx.RemoteProtocolError, httpx.ReadError):
        return "dropped"


def _sequences(faults: FaultSettings, *, concurrently: bool) -> dict[str, list[str]]:
    """Each resource's outcomes for 12 imports; resources side by side or one after another."""
    outcomes: dict[str, list[str]] = {f"r{n}": [] for n in range(4)}
    with EmulatorServer({"i": "t"}, faults=faults) as server:

        def run(resource_id: str) -> None:
            with loopback_client(server.url, "t") as http:
                for call in range(12):
                    outcomes[resource_id].append(
                        _outcome(http, resource_path("i", resource_id), valid_body(name=f"{call}"))
                    )

        if concurrently:
            threads = [threading.Thread(target=run, args=(rid,)) for rid in outcomes]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        else:
            for resource_id in outcomes:
                run(resource_id)
        for resource_id, sequence in outcomes.items():
            counted = server.call_count("i", resource_id)
            assert counted.total == 12
            assert sum(counted.by_status.values()) == 12
            assert counted.by_status.get("dropped", 0) == sequence.count("dropped")
            # Only a 200 stores: the held body is the last one answered 200.
            last_ok = max((i for i, status in enumerate(sequence) if status == "200"), default=None)
            held = server.imported_body("i", resource_id)
            assert (held or {}).get("name") == (None if last_ok is None else str(last_ok))
    return outcomes


def test_faults_are_reproducible_from_the_seed_whatever_the_interleaving() -> None:
    first = _sequences(FAULTY, concurrently=False)
    second = _sequences(FAULTY, concurrently=True)
    other_seed = _sequences(replace(FAULTY, seed=99), concurrently=False)

    assert first == second
    assert first != other_seed
    everything = [status for sequence in first.values() for status in sequence]
    assert set(everything) <= {"200", "429", "500", "502", "503", "504", "dropped"}
    assert {"200", "429", "dropped"} <= set(everything)
    assert any(status.startswith("5") for status in everything)


def test_a_dropped_request_closes_the_connection_without_a_response(vercel: EmulatorServer) -> None:
    vercel.set_faults(FaultSettings(drop_rate=1.0))
    with loopback_client(vercel.url, TOKEN_1) as http:
        with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
            put(http, resource_path("icfg_1", "r"), valid_body())
        assert http.get("/_emulator/health").status_code == 200  # the control API is never faulted

    assert vercel.call_count("icfg_1", "r") == CallCount(1, {"dropped": 1})
    assert vercel.held_resource("icfg_1", "r") is None


def test_injected_errors_and_throttles_answer_vercel_shaped_bodies(client: httpx.Client) -> None:
    client.post("/_emulator/faults", json={"errorRate": 1.0})
    assert put(client, resource_path("icfg_1", "r"), valid_body()).json()["error"]["code"] in {
        "internal_server_error",
        "bad_gateway",
        "service_unavailable",
        "gateway_timeout",
    }
    settings = client.post("/_emulator/faults", json={"errorRate": 0, "throttleRate": 1, "throttleRetryAfter": 3})
    assert settings.json()["throttleRate"] == 1
    throttled = put(client, resource_path("icfg_1", "r"), valid_body())
    assert_error(throttled, 429, "rate_limited")
    assert throttled.headers["retry-after"] == "3"
    assert client.get(resource_path("icfg_1", "r")).status_code == 429  # reads are faulted too
    assert_error(client.post("/_emulator/faults", json={"errorRate": 2}), 400, "bad_request")
    assert_error(client.post("/_emulator/faults", json={"bogus": 1}), 400, "bad_request")


def test_latency_and_slow_requests_delay_the_answer(vercel: EmulatorServer, client: httpx.Client) -> None:
    vercel.set_faults(FaultSettings(latency_ms=100, slow_rate=1.0, slow_ms=100))
    started = time.perf_counter()
    assert put(client, resource_path("icfg_1", "r"), valid_body()).status_code == 200
    assert time.perf_counter() - started >= 0.2
    assert vercel.held_resource("icfg_1", "r") is not None  # slow, not failed


def test_reset_forgets_resources_counts_and_restarts_the_fault_sequence(
    vercel: EmulatorServer, client: httpx.Client
) -> None:
    vercel.set_faults(FAULTY)
    first = [_outcome(client, resource_path("icfg_1", "r"), valid_body()) for _ in range(10)]
    assert client.post("/_emulator/reset").json() == {"status": "ok"}
    assert client.get("/_emulator/calls").json() == {"total": 0, "byStatus": {}, "byRoute": {}, "calls": []}
    assert client.get("/_emulator/imports").json() == {"imports": []}
    assert [_outcome(client, resource_path("icfg_1", "r"), valid_body()) for _ in range(10)] == first


# -- concurrency ----------------------------------------------------------------------------------


def test_many_parallel_requests_are_all_answered_and_counted_exactly(vercel: EmulatorServer) -> None:
    # 20 keep-alive clients on their own threads, each cycling over the same 10 resources, so
    # every resource is written by several connections at once.
    workers, per_worker, resources = 20, 20, 10

    def work(worker: int) -> list[int]:
        with loopback_client(vercel.url, TOKEN_1, timeout=10) as http:
            return [
                put(
                    http, resource_path("icfg_1", f"r{call % resources}"), valid_body(name=f"{worker}-{call}")
                ).status_code
                for call in range(per_worker)
            ]

    with ThreadPoolExecutor(workers) as pool:
        statuses = [status for answered in pool.map(work, range(workers)) for status in answered]

    total = workers * per_worker
    assert statuses == [200] * total
    counts = vercel.calls()
    assert counts["total"] == total
    assert counts["byStatus"] == {"200": total}
    for n in range(resources):
        assert vercel.call_count("icfg_1", f"r{n}") == CallCount(total // resources, {"200": total // resources})
        assert vercel.held_resource("icfg_1", f"r{n}") is not None


# -- the console script ---------------------------------------------------------------------------


def test_the_cli_prints_its_port_serves_and_stops_on_sigterm() -> None:
    command = [sys.executable, "-m", "vercel_emulator", "--port", "0", "--token", "icfg_cli=cli-token", "--seed", "3"]
    environment = {**os.environ, "PYTHONPATH": str(REPOSITORY)}
    with subprocess.Popen(  # noqa: S603 - our own interpreter and fixed arguments
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment
    ) as emulator:
        try:
            assert emulator.stdout is not None
            line = emulator.stdout.readline().strip()
            assert line.startswith("vercel-emulator listening on http://127.0.0.1:")
            with loopback_client(line.rsplit(" ", 1)[1], "cli-token") as http:
                assert put(http, resource_path("icfg_cli", "cache/eu west#1"), valid_body()).status_code == 200
                assert http.get(resource_path("icfg_cli", "cache/eu west#1")).json()["partnerId"] == "cache/eu west#1"
                assert http.get("/_emulator/faults").json()["seed"] == 3
        finally:
            emulator.send_signal(signal.SIGTERM)
        _, errors = emulator.communicate(timeout=10)
    assert emulator.returncode == 0
    assert "cli-token" not in errors
    assert SECRET_VALUE not in errors


def test_list_and_get_carry_what_the_official_sdk_validates(vercel: EmulatorServer, client: httpx.Client) -> None:
    put(client, resource_path("icfg_1", "db_primary"), valid_body())
    resource = client.get(resource_path("icfg_1", "db_primary")).json()
    (listed,) = client.get(resource_path("icfg_1")).json()["resources"]
    assert (resource["id"], "id" in listed) == ("db_primary", False)  # the SDK's models: the partner's id
    for view in (resource, listed):
        assert view["internalId"].startswith("res_")
        assert (view["partnerId"], view["billingPlanId"]) == ("db_primary", "plan_pro")
        assert {"productId", "name", "status"} <= set(view)
    assert "TOP-SECRET" not in json.dumps([resource, listed])
