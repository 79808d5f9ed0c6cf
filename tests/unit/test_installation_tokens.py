"""Short-lived installation tokens (``adapters/installation_tokens.py``): the client_credentials request, the
cache until shortly before ``expires_in``, one refresh after a 401 shared by concurrent callers, one request
per installation at a time, errors that quote neither the client secret nor a token."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from urllib.parse import parse_qs

import httpx
import pytest
import respx

from tests.fakes import FakeSecretsManagerClient, StoredSecret
from tests.leak_scan import register_secret
from vercel_sync.adapters.installation_tokens import ShortLivedTokens, TokenEndpoint
from vercel_sync.adapters.secrets import SecretsManagerReader
from vercel_sync.errors import ConfigurationError, PermanentSyncError, TransientSyncError
from vercel_sync.settings import Settings

TOKEN_URL = "https://api.vercel.com/v2/oauth/access_token"
CREDENTIALS_SECRET = "vercel/integration-credentials"
CLIENT_ID = "oac_unit_client_id_1234"
CLIENT_SECRET = "unit-client-secret-never-logged-5678"
SHORT_TOKENS = [f"vrcl_short_lived_unit_{n:02d}_abcdef" for n in range(20)]
register_secret(CLIENT_SECRET, *SHORT_TOKENS, label="short-lived tokens and the client secret (unit)")

SETTINGS = Settings(token_mode="short-lived", integration_credentials_secret_id=CREDENTIALS_SECRET)


def credentials_reader(document: object = None) -> SecretsManagerReader:
    stored = document if document is not None else {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}
    client = FakeSecretsManagerClient(secrets={CREDENTIALS_SECRET: StoredSecret(string=json.dumps(stored))})
    return SecretsManagerReader(SETTINGS, client_factory=lambda: client)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class CountingEndpoint:
    """Hands out SHORT_TOKENS in turn, each living ``expires_in`` s; ``delay`` s per request."""

    def __init__(self, expires_in: float = 3600.0, delay: float = 0.0) -> None:
        self.expires_in = expires_in
        self.delay = delay
        self.requests: list[str] = []
        self._lock = threading.Lock()

    def request(self, installation_id: str, client_id: str, client_secret: str) -> tuple[str, float]:
        assert (client_id, client_secret) == (CLIENT_ID, CLIENT_SECRET)
        with self._lock:
            self.requests.append(installation_id)
            token = SHORT_TOKENS[len(self.requests) - 1]
        time.sleep(self.delay)
        return token, self.expires_in


def provider(endpoint: object, clock: FakeClock | None = None, margin: float = 60.0) -> ShortLivedTokens:
    return ShortLivedTokens(
        credentials_reader(),
        endpoint,  # type: ignore[arg-type]
        margin_seconds=margin,
        monotonic=clock or time.monotonic,
    )


@pytest.fixture
def token_api() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_called=False) as router:
        yield router


def test_the_request_is_the_client_credentials_grant_for_the_installation(token_api: respx.MockRouter) -> None:
    route = token_api.post(TOKEN_URL).respond(
        200, json={"access_token": SHORT_TOKENS[0], "token_type": "Bearer", "expires_in": 3600}
    )
    endpoint = TokenEndpoint(TOKEN_URL, timeout_seconds=2)

    assert endpoint.request("icfg_1", CLIENT_ID, CLIENT_SECRET) == (SHORT_TOKENS[0], 3600.0)

    request = route.calls.last.request
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert "Authorization" not in request.headers
    form = {name: values[0] for name, values in parse_qs(request.content.decode()).items()}
    assert form == {
        "grant_type": "client_credentials",
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "installation_id": "icfg_1",
    }


def test_the_installation_field_is_a_setting(token_api: respx.MockRouter) -> None:
    route = token_api.post(TOKEN_URL).respond(200, json={"access_token": SHORT_TOKENS[0], "expires_in": 60})
    TokenEndpoint(TOKEN_URL, installation_field="integration_configuration_id").request("icfg_1", "a", "b")
    assert parse_qs(route.calls.last.request.content.decode())["integration_configuration_id"] == ["icfg_1"]


def test_a_token_is_requested_once_and_kept_until_shortly_before_it_expires() -> None:
    clock, endpoint = FakeClock(), CountingEndpoint(expires_in=3600)
    tokens = provider(endpoint, clock, margin=60)

    assert tokens.installation_token("icfg_1") == SHORT_TOKENS[0]
    clock.now += 3539
    assert tokens.installation_token("icfg_1") == SHORT_TOKENS[0]
    clock.now += 1  # 60 s before it expires
    assert tokens.installation_token("icfg_1") == SHORT_TOKENS[1]
    assert endpoint.requests == ["icfg_1", "icfg_1"]


def test_a_lifetime_shorter_than_twice_the_margin_is_kept_for_half_of_it() -> None:
    clock, endpoint = FakeClock(), CountingEndpoint(expires_in=4)
    tokens = provider(endpoint, clock, margin=60)

    tokens.installation_token("icfg_1")
    clock.now += 1.9
    tokens.installation_token("icfg_1")
    clock.now += 0.2
    tokens.installation_token("icfg_1")
    assert len(endpoint.requests) == 2


def test_installations_have_tokens_of_their_own() -> None:
    endpoint = CountingEndpoint()
    tokens = provider(endpoint)
    assert tokens.installation_token("icfg_1") != tokens.installation_token("icfg_2")
    assert endpoint.requests == ["icfg_1", "icfg_2"]


def test_force_fetch_after_a_401_requests_a_new_token_once() -> None:
    endpoint = CountingEndpoint()
    tokens = provider(endpoint)
    tokens.installation_token("icfg_1")

    assert tokens.installation_token("icfg_1", force_fetch=True) == SHORT_TOKENS[1]
    assert tokens.installation_token("icfg_1") == SHORT_TOKENS[1]
    assert len(endpoint.requests) == 2


def test_n_threads_asking_at_once_make_one_request() -> None:
    endpoint = CountingEndpoint(delay=0.2)
    tokens = provider(endpoint)
    got: list[str] = []
    start = threading.Barrier(12)

    def ask(force: bool) -> None:
        start.wait()
        got.append(tokens.installation_token("icfg_1", force_fetch=force))

    threads = [threading.Thread(target=ask, args=(False,)) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert endpoint.requests == ["icfg_1"]
    assert set(got) == {SHORT_TOKENS[0]}

    # Twelve 401s at once: one refresh, shared.
    got.clear()
    start.reset()
    threads = [threading.Thread(target=ask, args=(True,)) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert endpoint.requests == ["icfg_1", "icfg_1"]
    assert set(got) == {SHORT_TOKENS[1]}


@pytest.mark.parametrize("status", [400, 401, 403])
def test_refused_credentials_are_permanent_and_quote_nothing(token_api: respx.MockRouter, status: int) -> None:
    echo = {"error": "invalid_client", "client_secret": CLIENT_SECRET, "access_token": SHORT_TOKENS[0]}
    token_api.post(TOKEN_URL).respond(status, json=echo)

    with pytest.raises(PermanentSyncError) as caught:
        TokenEndpoint(TOKEN_URL).request("icfg_1", CLIENT_ID, CLIENT_SECRET)

    assert caught.value.reason == "token_unavailable"
    assert str(status) in str(caught.value)
    for value in (CLIENT_SECRET, SHORT_TOKENS[0], CLIENT_ID):
        assert value not in repr(caught.value.__dict__) + str(caught.value)


def test_throttling_and_outages_are_transient(token_api: respx.MockRouter) -> None:
    route = token_api.post(TOKEN_URL)
    route.side_effect = [
        httpx.Response(429, headers={"Retry-After": "7"}, json={"client_secret": CLIENT_SECRET}),
        httpx.Response(503),
        httpx.ConnectError("refused"),
        httpx.Response(200, json={"token_type": "Bearer"}),  # no access_token
    ]
    endpoint = TokenEndpoint(TOKEN_URL)
    errors = []
    for _ in range(4):
        with pytest.raises(TransientSyncError) as caught:
            endpoint.request("icfg_1", CLIENT_ID, CLIENT_SECRET)
        errors.append(caught.value)
    assert errors[0].http_status == 429
    assert errors[0].retry_after_seconds == 7
    assert errors[1].http_status == 503
    assert "could not reach" in str(errors[2])
    assert "access_token" in str(errors[3])
    assert not any(CLIENT_SECRET in str(error) for error in errors)


def test_an_answer_without_expires_in_lives_an_hour(token_api: respx.MockRouter) -> None:
    token_api.post(TOKEN_URL).respond(200, json={"access_token": SHORT_TOKENS[0], "expires_in": "soon"})
    assert TokenEndpoint(TOKEN_URL).request("icfg_1", CLIENT_ID, CLIENT_SECRET) == (SHORT_TOKENS[0], 3600.0)


@pytest.mark.parametrize(
    "document",
    [{"client_id": CLIENT_ID}, {"client_secret": CLIENT_SECRET}, ["x"], {"client_id": "", "client_secret": "y"}],
)
def test_credentials_of_another_shape_are_unavailable_and_not_quoted(document: object) -> None:
    with pytest.raises(PermanentSyncError) as caught:
        credentials_reader(document).integration_credentials()
    assert caught.value.reason == "token_unavailable"
    assert CLIENT_SECRET not in str(caught.value)
    assert '{"client_id": ..., "client_secret": ...}' in str(caught.value)


def test_short_lived_mode_needs_the_credentials_secret_and_defaults_the_token_url() -> None:
    with pytest.raises(ConfigurationError, match="INTEGRATION_CREDENTIALS_SECRET_ID"):
        Settings.from_env({"TOKEN_MODE": "short-lived"})
    settings = Settings.from_env(
        {"TOKEN_MODE": "short-lived", "INTEGRATION_CREDENTIALS_SECRET_ID": CREDENTIALS_SECRET, "VERCEL_TOKEN_URL": ""}
    )
    assert settings.token_url == TOKEN_URL
    assert (
        Settings.from_env({"VERCEL_TOKEN_URL": "https://auth.example/token"}).token_url == "https://auth.example/token"
    )
    with pytest.raises(ConfigurationError, match="VERCEL_TOKEN_URL"):
        Settings.from_env({"VERCEL_TOKEN_URL": "http://auth.example/token"})
    with pytest.raises(ConfigurationError, match="TOKEN_MODE"):
        Settings.from_env({"TOKEN_MODE": "forever"})


def test_the_wiring_hands_the_sync_short_lived_tokens_only_in_that_mode() -> None:
    from vercel_sync.adapters.aws_clients import AwsClients
    from vercel_sync.wiring import _shared_adapters

    short = _shared_adapters(SETTINGS, AwsClients())["secrets"]()
    long = _shared_adapters(Settings(), AwsClients())["secrets"]()
    assert isinstance(short, ShortLivedTokens)
    assert isinstance(long, SecretsManagerReader)


def test_the_digest_key_outlives_tokens_and_is_the_installations_own() -> None:
    endpoint = CountingEndpoint()
    tokens = provider(endpoint)
    key = tokens.digest_key("icfg_1")
    tokens.installation_token("icfg_1")
    tokens.installation_token("icfg_1", force_fetch=True)

    assert tokens.digest_key("icfg_1") == key  # the same after a renewal, and in another container
    assert provider(CountingEndpoint()).digest_key("icfg_1") == key
    assert tokens.digest_key("icfg_2") != key
    assert CLIENT_SECRET not in key


def test_change_suppression_is_keyed_by_the_token_unless_the_store_has_a_steadier_key() -> None:
    from tests.fakes import FakeSecrets
    from vercel_sync.calls import Calls, Clock, Installation, RetryPolicy
    from vercel_sync.deadline import Deadline

    clock = Clock()
    long_lived = Calls(FakeSecrets(), None, RetryPolicy(), clock, Deadline(None, None, clock.monotonic))
    short = provider(CountingEndpoint())
    short_lived = Calls(short, None, RetryPolicy(), clock, Deadline(None, None, clock.monotonic))
    installation = Installation("icfg_1")

    assert long_lived.digest_key(installation, SHORT_TOKENS[5]) == SHORT_TOKENS[5]
    assert short_lived.digest_key(installation, SHORT_TOKENS[5]) == short.digest_key("icfg_1")
