"""The emulator's short-lived tokens (issue 16): the client_credentials token endpoint checks the client id
and secret, its tokens really expire, and credentials/rotate answers in the shape @vercel/sdk validates."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from tests.integration.support import TOKEN_1, loopback_client, resource_path
from tests.leak_scan import register_secret
from vercel_emulator import EmulatorServer
from vercel_emulator.cli import build_parser

pytestmark = pytest.mark.integration

CLIENT_ID = "oac_emulator_tokens_client"
CLIENT_SECRET = "emulator-tokens-client-secret-value"
register_secret(CLIENT_SECRET, label="the emulator token tests' client secret")
TOKEN_PATH = "/v2/oauth/access_token"


@pytest.fixture
def vercel() -> Iterator[EmulatorServer]:
    with EmulatorServer({"icfg_1": TOKEN_1}, client_id=CLIENT_ID, client_secret=CLIENT_SECRET) as server:
        server.state.tokens.on_issue = lambda token: register_secret(token, label="a token the emulator issued")
        yield server


def grant(**changes: str) -> dict[str, str]:
    form = {
        "grant_type": "client_credentials",
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "installation_id": "icfg_1",
    }
    return {name: value for name, value in (form | changes).items() if value}


def request_token(vercel: EmulatorServer, **changes: str) -> httpx.Response:
    with loopback_client(vercel.url) as http:
        response = http.post(TOKEN_PATH, data=grant(**changes))
    if response.status_code == 200:
        register_secret(response.json()["access_token"], label="a token the emulator issued")
    return response


def test_the_token_endpoint_issues_a_token_the_api_accepts(vercel: EmulatorServer) -> None:
    response = request_token(vercel)

    assert response.status_code == 200
    answer = response.json()
    assert answer["token_type"] == "Bearer"
    assert answer["expires_in"] == 3600
    with loopback_client(vercel.url, answer["access_token"]) as http:
        assert http.get(resource_path("icfg_1")).status_code == 200
        assert http.get(resource_path("icfg_2")).status_code in (403, 404)  # not another installation's
    assert vercel.token_requests("icfg_1").by_status == {"200": 1}


def test_a_json_body_is_taken_too(vercel: EmulatorServer) -> None:
    with loopback_client(vercel.url) as http:
        response = http.post(TOKEN_PATH, json=grant())
    register_secret(response.json()["access_token"], label="a token the emulator issued")
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("changes", "status"),
    [
        ({"client_secret": "not-the-integrations-secret"}, 401),
        ({"client_id": "oac_someone_else"}, 401),
        ({"client_secret": ""}, 400),
        ({"installation_id": ""}, 400),
        ({"grant_type": "authorization_code"}, 400),
    ],
)
def test_wrong_or_missing_credentials_get_no_token(
    vercel: EmulatorServer, changes: dict[str, str], status: int
) -> None:
    response = request_token(vercel, **changes)
    assert response.status_code == status
    assert "access_token" not in response.text
    assert CLIENT_SECRET not in response.text


def test_issued_tokens_expire_after_the_configured_lifetime(vercel: EmulatorServer) -> None:
    vercel.set_token_lifetime(1)
    token = request_token(vercel).json()["access_token"]
    with loopback_client(vercel.url, token) as http:
        assert http.get(resource_path("icfg_1")).status_code == 200
        time.sleep(1.2)
        expired = http.get(resource_path("icfg_1"))
    assert expired.status_code == 401
    assert vercel.accepted_tokens("icfg_1") == 1  # the token set by hand never expires


def test_rotate_answers_in_the_sdks_shape_and_its_token_expires_too(vercel: EmulatorServer) -> None:
    vercel.set_token_lifetime(1)
    with loopback_client(vercel.url, TOKEN_1) as http:
        answer = http.post("/v1/installations/icfg_1/credentials/rotate", json={"client_secret": CLIENT_SECRET}).json()
    register_secret(answer["access_token"], label="a token the emulator rotated")

    assert set(answer) == {"access_token", "token_type", "expires_in", "scope"}
    assert answer["token_type"] == "oauth2-token"
    assert answer["expires_in"] == 1
    assert isinstance(answer["scope"], str)
    time.sleep(1.2)
    with loopback_client(vercel.url, answer["access_token"]) as http:
        assert http.get(resource_path("icfg_1")).status_code == 401


def test_the_command_line_takes_the_client_id_and_the_token_lifetime() -> None:
    args = build_parser().parse_args(["--client-id", CLIENT_ID, "--token-lifetime-seconds", "5"])
    assert (args.client_id, args.token_lifetime_seconds) == (CLIENT_ID, 5)
    assert build_parser().parse_args([]).token_lifetime_seconds == 3600
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--token-lifetime-seconds", "0"])


@pytest.mark.parametrize("field", ["client_id", "client_secret"])
def test_non_ascii_credentials_are_refused_not_an_error_of_the_emulator(vercel: EmulatorServer, field: str) -> None:
    # hmac.compare_digest takes str of ASCII only: anything else raised, and the sync saw a 500 (transient).
    response = request_token(vercel, **{field: "s\u00e9cret-\u2603"})
    assert response.status_code == 401
    with loopback_client(vercel.url, TOKEN_1) as http:
        rotate = http.post("/v1/installations/icfg_1/credentials/rotate", json={"client_secret": "s\u00e9cret-\u2603"})
    assert rotate.status_code == 403
