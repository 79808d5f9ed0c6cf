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
from vercel_sync.adapters.installation_tokens import CredentialsRefusedError, ShortLivedTokens, TokenEndpoint
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


# --- hostile token endpoints: every odd answer is transient, quotes nothing, and is never followed -------

REDIRECT_TARGET = "https://elsewhere.example/collect"


@pytest.mark.parametrize(
    "content",
    [
        b"<html>not json</html>",
        b"",
        b"{}",
        b'{"access_token": ""}',
        b'{"access_token": 12345}',
        b'{"access_token": null}',
        b'{"access_token": ["' + SHORT_TOKENS[0].encode() + b'"]}',
        json.dumps({"access_token": SHORT_TOKENS[0] + "\r\nX-Injected: 1"}).encode(),
        json.dumps({"access_token": SHORT_TOKENS[0] + "\u00e9"}).encode(),
        json.dumps({"access_token": " " + SHORT_TOKENS[0]}).encode(),
        json.dumps({"error": "invalid_grant", "error_description": CLIENT_SECRET}).encode(),
        b"[" * 100_000 + b"]" * 100_000,
        json.dumps({"access_token": SHORT_TOKENS[0], "pad": "x" * 40_000}).encode(),  # past the cap: cut
    ],
)
def test_an_ok_answer_without_a_usable_token_is_transient_and_quotes_nothing(
    token_api: respx.MockRouter, content: bytes
) -> None:
    token_api.post(TOKEN_URL).respond(200, content=content, headers={"Content-Type": "application/json"})

    with pytest.raises(TransientSyncError) as caught:
        TokenEndpoint(TOKEN_URL).request("icfg_1", CLIENT_ID, CLIENT_SECRET)

    assert caught.value.http_status is None
    shown = str(caught.value) + repr(caught.value.__dict__)
    assert not any(value in shown for value in (CLIENT_SECRET, SHORT_TOKENS[0], "X-Injected"))


@pytest.mark.parametrize(
    "expires_in",
    [None, -5, 0, 10**12, "3600", True, float("nan"), float("inf"), {"seconds": 60}],
)
def test_an_unusable_expires_in_is_taken_as_an_hour(token_api: respx.MockRouter, expires_in: object) -> None:
    answer: dict[str, object] = {"access_token": SHORT_TOKENS[0]}
    if expires_in is not None:
        answer["expires_in"] = expires_in
    token_api.post(TOKEN_URL).respond(200, content=json.dumps(answer).encode())  # NaN/Infinity as Python writes them

    assert TokenEndpoint(TOKEN_URL).request("icfg_1", CLIENT_ID, CLIENT_SECRET) == (SHORT_TOKENS[0], 3600.0)


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_is_not_followed_with_the_client_secret(token_api: respx.MockRouter, status: int) -> None:
    token_api.post(TOKEN_URL).respond(status, headers={"Location": REDIRECT_TARGET})
    elsewhere = token_api.route(url__startswith="https://elsewhere.example").respond(200)

    with pytest.raises(TransientSyncError, match="VERCEL_TOKEN_URL") as caught:
        TokenEndpoint(TOKEN_URL).request("icfg_1", CLIENT_ID, CLIENT_SECRET)

    assert not elsewhere.called
    assert REDIRECT_TARGET not in str(caught.value)


def test_a_token_endpoint_that_is_down_during_a_refresh_leaves_the_record_transient() -> None:
    class DownAfterFirst(CountingEndpoint):
        def request(self, installation_id: str, client_id: str, client_secret: str) -> tuple[str, float]:
            if self.requests:
                self.requests.append(installation_id)
                raise TransientSyncError("could not reach the token endpoint (ConnectError)")
            return super().request(installation_id, client_id, client_secret)

    endpoint = DownAfterFirst()
    tokens = provider(endpoint)
    assert tokens.installation_token("icfg_1") == SHORT_TOKENS[0]
    with pytest.raises(TransientSyncError):
        tokens.installation_token("icfg_1", force_fetch=True)
    # The next refresh asks again: a failure is not kept.
    with pytest.raises(TransientSyncError):
        tokens.installation_token("icfg_1", force_fetch=True)
    assert len(endpoint.requests) == 3


# --- the credentials secret: odd values are unavailable (permanent), never quoted ------------------------


@pytest.mark.parametrize(
    "stored",
    [
        StoredSecret(string="not json " + CLIENT_SECRET),
        StoredSecret(string=json.dumps({"client_id": CLIENT_ID, "client_secret": 7})),
        StoredSecret(string=json.dumps({"client_id": CLIENT_ID, "client_secret": {"v": CLIENT_SECRET}})),
        StoredSecret(string=json.dumps({"client_id": CLIENT_ID, "client_secret": "   "})),
        StoredSecret(string="[" * 100_000 + "]" * 100_000),
        StoredSecret(string=json.dumps({"access_token": SHORT_TOKENS[0]})),  # the other mode's shape
        StoredSecret(string=SHORT_TOKENS[0]),  # a bare long-lived token
        StoredSecret(binary=b"\xff\xfe" + CLIENT_SECRET.encode()),
        # A lone surrogate: JSON may hold one, no form body or HMAC key can (a bug on every record before).
        StoredSecret(string='{"client_id": "oac_1", "client_secret": "' + CLIENT_SECRET + '\\ud800"}'),
    ],
)
def test_a_credentials_secret_of_another_kind_is_unavailable_and_not_quoted(stored: StoredSecret) -> None:
    client = FakeSecretsManagerClient(secrets={CREDENTIALS_SECRET: stored})
    reader = SecretsManagerReader(SETTINGS, client_factory=lambda: client)

    with pytest.raises(PermanentSyncError) as caught:
        reader.integration_credentials()

    assert caught.value.reason == "token_unavailable"
    shown = str(caught.value) + repr(caught.value.__dict__)
    assert CLIENT_SECRET not in shown
    assert SHORT_TOKENS[0] not in shown


def test_a_missing_credentials_secret_is_unavailable() -> None:
    reader = SecretsManagerReader(SETTINGS, client_factory=lambda: FakeSecretsManagerClient())
    with pytest.raises(PermanentSyncError, match="ResourceNotFoundException"):
        reader.integration_credentials()


def test_a_long_lived_token_secret_holding_the_credentials_shape_is_no_token() -> None:
    settings = Settings()
    secret_id = settings.token_secret_id_for("icfg_1")
    document = json.dumps({"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET})
    client = FakeSecretsManagerClient(secrets={secret_id: StoredSecret(string=document)})

    with pytest.raises(PermanentSyncError, match="holds no access token") as caught:
        SecretsManagerReader(settings, client_factory=lambda: client).installation_token("icfg_1")
    assert CLIENT_SECRET not in str(caught.value)


def test_a_new_client_secret_changes_every_digest_key_once_and_keys_agree_across_containers() -> None:
    # Documented (configuration.md): rotating the client secret re-imports each resource on its next change.
    before = provider(CountingEndpoint()).digest_key("icfg_1")
    client = FakeSecretsManagerClient(
        secrets={CREDENTIALS_SECRET: StoredSecret(string=json.dumps({"client_id": CLIENT_ID, "client_secret": "new"}))}
    )
    other_container, third_container = (
        ShortLivedTokens(SecretsManagerReader(SETTINGS, client_factory=lambda: client), CountingEndpoint())
        for _ in range(2)
    )

    assert other_container.digest_key("icfg_1") != before
    assert other_container.digest_key("icfg_1") == third_container.digest_key("icfg_1")


def test_a_client_secret_rotated_under_the_cache_is_read_again_once_when_the_endpoint_refuses_it() -> None:
    # The container read the old secret and keeps it for TOKEN_CACHE_SECONDS; the endpoint now takes only
    # the new one. Refused, the credentials are read past the cache once: not every record parked.
    new_secret = "unit-client-secret-rotated-9012"
    register_secret(new_secret, label="the rotated client secret (unit)")
    stored = StoredSecret(string=json.dumps({"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}))
    client = FakeSecretsManagerClient(secrets={CREDENTIALS_SECRET: stored})
    current = {"secret": CLIENT_SECRET}
    requests: list[str] = []

    class Endpoint:
        def request(self, installation_id: str, client_id: str, client_secret: str) -> tuple[str, float]:
            requests.append(client_secret)
            if client_secret != current["secret"]:
                raise CredentialsRefusedError("the token endpoint refused the integration's credentials (401)")
            return SHORT_TOKENS[len(requests)], 3600.0

    tokens = ShortLivedTokens(SecretsManagerReader(SETTINGS, client_factory=lambda: client), Endpoint())  # type: ignore[arg-type]
    tokens.installation_token("icfg_1")
    stored.string = json.dumps({"client_id": CLIENT_ID, "client_secret": new_secret})
    current["secret"] = new_secret

    assert tokens.installation_token("icfg_1", force_fetch=True) == SHORT_TOKENS[3]
    assert requests == [CLIENT_SECRET, CLIENT_SECRET, new_secret]

    # Refused with the credentials Secrets Manager holds: permanent after one re-read, no loop.
    current["secret"] = "yet another"
    with pytest.raises(PermanentSyncError):
        tokens.installation_token("icfg_1", force_fetch=True)
    assert requests[3:] == [new_secret]


def test_a_refresh_never_hands_back_the_refused_token_on_a_clock_that_has_not_moved() -> None:
    # A clock tick coarser than a call (or a frozen one): the token fetched in the same tick as the 401
    # is the refused one, not another thread's refresh.
    clock, endpoint = FakeClock(), CountingEndpoint()
    tokens = provider(endpoint, clock)

    assert tokens.installation_token("icfg_1") == SHORT_TOKENS[0]
    assert tokens.installation_token("icfg_1", force_fetch=True) == SHORT_TOKENS[1]
    assert tokens.installation_token("icfg_1", force_fetch=True) == SHORT_TOKENS[2]
    assert tokens.installation_token("icfg_1") == SHORT_TOKENS[2]


def test_an_endless_answer_is_read_no_further_than_the_cap() -> None:
    chunk = b" " * 1024
    sent: list[int] = []

    def endless() -> Iterator[bytes]:
        while len(sent) < 10_000:  # 10 MB: a bound for the test, not for the code
            sent.append(len(chunk))
            yield chunk

    transport = httpx.MockTransport(lambda request: httpx.Response(200, content=endless()))
    with pytest.raises(TransientSyncError, match="access_token"):
        TokenEndpoint(TOKEN_URL, transport=transport).request("icfg_1", CLIENT_ID, CLIENT_SECRET)
    assert sum(sent) <= 17 * 1024


@pytest.mark.parametrize(("status", "outcome"), [(401, "parked"), (503, "back"), (302, "back"), (200, "back")])
def test_a_batch_through_a_hostile_token_endpoint_parks_or_sends_back_and_leaks_nothing(
    token_api: respx.MockRouter, status: int, outcome: str
) -> None:
    from tests.builders import record_without_secret, sqs
    from tests.fakes import FakeFailedRecords, FakeVercel, make_sync_service

    echo = {"error": "invalid_client", "client_secret": CLIENT_SECRET, "access_token": SHORT_TOKENS[0] + "\r\n"}
    token_api.post(TOKEN_URL).respond(status, json=echo, headers={"Location": "https://elsewhere.example/"})
    vercel, failed = FakeVercel(), FakeFailedRecords()
    tokens = ShortLivedTokens(credentials_reader(), TokenEndpoint(TOKEN_URL))
    service = make_sync_service(vercel=vercel, secrets=tokens, failed_records=failed, sleep=lambda _s: None)

    (result,) = service.sync_batch([sqs(record_without_secret("r1"), "a")])

    assert vercel.calls == []
    assert (result.outcome, failed.reasons()) == (
        ("parked", ["token_unavailable"]) if outcome == "parked" else (None, [])
    )
    shown = json.dumps(failed.messages) + str(result.error) + repr(getattr(result.error, "__dict__", ""))
    assert CLIENT_SECRET not in shown
    assert SHORT_TOKENS[0] not in shown
