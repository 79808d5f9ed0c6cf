"""The Vercel client over a mocked transport (respx): request shape and each status's class."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import httpx
import pytest
import respx

from vercel_sync import __version__
from vercel_sync.adapters.vercel import (
    MAX_ERROR_BODY_BYTES,
    MAX_REQUEST_BODY_BYTES,
    MAX_RETRY_AFTER_SECONDS,
    VercelClient,
    VercelUnauthorizedError,
    environment_proxy,
    limit_reset_seconds,
    retry_after_seconds,
)
from vercel_sync.errors import PermanentSyncError, TransientSyncError

BASE = "https://api.vercel.com"
TOKEN = "vrcl_tok_client_test_value"
BODY = {"productId": "postgres", "name": "orders-db", "status": "ready"}


@pytest.fixture
def client() -> Iterator[VercelClient]:
    vercel = VercelClient(BASE, timeout_seconds=2)
    yield vercel
    vercel.close()


@pytest.fixture
def api() -> Iterator[respx.MockRouter]:
    with respx.mock(base_url=BASE, assert_all_called=False) as router:
        yield router


def test_request_is_what_the_sdk_sends(client: VercelClient, api: respx.MockRouter) -> None:
    route = api.put("/v1/installations/icfg_1/resources/res%2F1%3Fx%23y").respond(200, json={"name": "orders-db"})

    answer = client.import_resource("icfg_1", "res/1?x#y", BODY, token=TOKEN)

    assert answer == {"name": "orders-db"}
    request = route.calls.last.request
    assert request.method == "PUT"
    assert request.url.raw_path == b"/v1/installations/icfg_1/resources/res%2F1%3Fx%23y"
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Accept"] == "application/json"
    assert request.headers["User-Agent"].startswith(f"vercel-resource-sync/{__version__} ")
    assert request.content == b'{"productId":"postgres","name":"orders-db","status":"ready"}'
    assert json.loads(request.content) == BODY


def test_one_pooled_connection_serves_many_calls(client: VercelClient, api: respx.MockRouter) -> None:
    api.put(url__regex=r".*").respond(200, json={"name": "x"})
    http_before = client._http
    for n in range(5):
        client.import_resource("icfg_1", f"res_{n}", BODY, token=TOKEN)
    assert client._http is http_before


@pytest.mark.parametrize("status", [400, 403, 404, 409, 410, 422])
def test_permanent_statuses(status: int, client: VercelClient, api: respx.MockRouter) -> None:
    error_body = {"error": {"code": "invalid_body", "message": "status must be one of ..."}}
    api.put(url__regex=r".*").respond(status, json=error_body)

    with pytest.raises(PermanentSyncError) as caught:
        client.import_resource("icfg_1", "res_1", BODY, token=TOKEN)

    assert caught.value.http_status == status
    assert caught.value.reason == "vercel_rejected"
    assert json.loads(caught.value.vercel_error or "") == error_body
    assert caught.value.message == f"Vercel rejected the import ({status}): invalid_body"


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504, 599])
def test_transient_statuses(status: int, client: VercelClient, api: respx.MockRouter) -> None:
    api.put(url__regex=r".*").respond(status, headers={"Retry-After": "7"})

    with pytest.raises(TransientSyncError) as caught:
        client.import_resource("icfg_1", "res_1", BODY, token=TOKEN)

    assert not isinstance(caught.value, PermanentSyncError)
    assert caught.value.http_status == status
    assert caught.value.retry_after_seconds == 7


def test_401_is_its_own_kind(client: VercelClient, api: respx.MockRouter) -> None:
    api.put(url__regex=r".*").respond(401, json={"error": {"code": "forbidden"}})
    with pytest.raises(VercelUnauthorizedError) as caught:
        client.import_resource("icfg_1", "res_1", BODY, token=TOKEN)
    assert caught.value.http_status == 401


@pytest.mark.parametrize(
    "exception",
    [httpx.ConnectError("refused"), httpx.ReadTimeout("slow"), httpx.RemoteProtocolError("dropped")],
)
def test_network_failures_are_transient(exception: Exception, client: VercelClient, api: respx.MockRouter) -> None:
    api.put(url__regex=r".*").mock(side_effect=exception)
    with pytest.raises(TransientSyncError) as caught:
        client.import_resource("icfg_1", "res_1", BODY, token=TOKEN)
    assert caught.value.http_status is None
    assert type(exception).__name__ in caught.value.message


def test_errors_never_carry_the_token(client: VercelClient, api: respx.MockRouter) -> None:
    api.put(url__regex=r".*").mock(side_effect=httpx.ConnectError(f"boom {TOKEN}"))
    with pytest.raises(TransientSyncError) as caught:
        client.import_resource("icfg_1", "res_1", BODY, token=TOKEN)
    assert TOKEN not in str(caught.value)
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__


def test_large_error_bodies_are_capped(client: VercelClient, api: respx.MockRouter) -> None:
    # Capped here, not cut short: the pipeline scrubs secrets from it first, then shortens it.
    api.put(url__regex=r".*").respond(400, content=b"x" * 100_000)
    with pytest.raises(PermanentSyncError) as caught:
        client.import_resource("icfg_1", "res_1", BODY, token=TOKEN)
    assert len(caught.value.vercel_error or "") == MAX_ERROR_BODY_BYTES


def test_overlong_ids_are_refused_before_any_call(client: VercelClient, api: respx.MockRouter) -> None:
    route = api.put(url__regex=r".*").respond(200, json={})
    with pytest.raises(PermanentSyncError, match="resourceId must be 1 to 256"):
        client.import_resource("icfg_1", "r" * 257, BODY, token=TOKEN)
    assert not route.called


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after-ms": "1500"}, 1.5),
        ({"retry-after": "12"}, 12.0),
        ({"retry-after": "Thu, 26 Nov 2026 12:00:30 GMT"}, 30.0),
        ({"retry-after": "garbage"}, None),
        ({}, None),
        ({"retry-after": "-5"}, 0.0),
    ],
)
def test_retry_after_forms(headers: dict[str, str], expected: float | None) -> None:
    now = datetime(2026, 11, 26, 12, 0, 0, tzinfo=UTC)
    assert retry_after_seconds(httpx.Headers(headers), now=now) == expected


# --- the transport layer: what httpx.Client did for us and still must be done -----------------


class _ProxyRecorder(BaseHTTPRequestHandler):
    """An HTTP proxy that answers every request itself and keeps its target (absolute-form)."""

    targets: ClassVar[list[str]] = []

    def do_PUT(self) -> None:
        type(self).targets.append(self.path)
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        answer = b'{"name": "via-proxy"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Set-Cookie", "session=from-vercel; Path=/")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def proxy_url() -> Iterator[str]:
    _ProxyRecorder.targets = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _ProxyRecorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_proxy_named_by_the_environment_carries_the_calls(proxy_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """As httpx.Client(trust_env=True) would: the transport is built with the environment's proxy."""
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "")
    monkeypatch.setenv("HTTP_PROXY", proxy_url)
    vercel = VercelClient("http://vercel.invalid", timeout_seconds=2)
    try:
        assert vercel.import_resource("icfg_1", "r1", BODY, token=TOKEN) == {"name": "via-proxy"}
    finally:
        vercel.close()
    assert _ProxyRecorder.targets == ["http://vercel.invalid/v1/installations/icfg_1/resources/r1"]


@pytest.mark.parametrize(
    ("environment", "expected"),
    [
        ({}, None),
        ({"HTTPS_PROXY": "http://proxy.internal:3128"}, "http://proxy.internal:3128"),
        ({"https_proxy": "http://proxy.internal:3128", "NO_PROXY": "api.vercel.com"}, None),
        ({"HTTPS_PROXY": "http://proxy.internal:3128", "NO_PROXY": ".vercel.com"}, None),
        ({"ALL_PROXY": "http://all.internal:3128"}, "http://all.internal:3128"),
        ({"HTTP_PROXY": "http://plain.internal:3128"}, None),  # for http:// URLs only
        ({"HTTPS_PROXY": "proxy.internal:3128"}, "http://proxy.internal:3128"),  # no scheme: http
        ({"HTTPS_PROXY": "http://proxy.internal:3128", "NO_PROXY": "api.vercel.com:443"}, None),
        (
            {"HTTPS_PROXY": "http://proxy.internal:3128", "NO_PROXY": "api.vercel.com:8443"},
            "http://proxy.internal:3128",
        ),
    ],
)
def test_environment_proxy(environment: dict[str, str], expected: str | None, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    assert environment_proxy("https://api.vercel.com") == expected


def test_no_cookie_is_kept_or_sent_from_one_installation_to_another(
    client: VercelClient, api: respx.MockRouter
) -> None:
    """The transport keeps no cookie jar: a cookie Vercel sets for one installation's call is never
    sent with another's (httpx.Client would have sent it back)."""
    route = api.put(url__regex=r".*").respond(200, json={"name": "x"}, headers={"Set-Cookie": "session=abc; Path=/"})
    client.import_resource("icfg_1", "r1", BODY, token=TOKEN)
    client.import_resource("icfg_2", "r2", BODY, token=TOKEN)
    assert "cookie" not in route.calls.last.request.headers


def test_a_malformed_proxy_is_refused_without_quoting_it(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    monkeypatch.setenv("HTTPS_PROXY", "ftp://user:pr0xy-pa55@proxy.internal:21")
    with pytest.raises(ValueError, match="not a valid URL") as caught:
        VercelClient(BASE)
    assert "pr0xy-pa55" not in str(caught.value)


# ------------------------------------------------------------------ the call's timeout and deadline


class SeenTimeouts:
    """A transport that answers 200 and records the timeouts each call was given, and the time its
    step had left while the call ran (what the network backend bounds every operation to)."""

    def __init__(self) -> None:
        self.timeouts: list[dict[str, float]] = []
        self.left: list[float | None] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        from vercel_sync.deadline import seconds_left

        self.timeouts.append(request.extensions["timeout"])
        self.left.append(seconds_left())
        return httpx.Response(200, json={"name": "orders-db"})


def call_with(seen: SeenTimeouts, timeout_seconds: float, step_seconds: float | None) -> None:
    from vercel_sync.deadline import within

    client = VercelClient(BASE, timeout_seconds=timeout_seconds, transport=httpx.MockTransport(seen))
    if step_seconds is None:
        client.import_resource("icfg_1", "r1", BODY, token=TOKEN)
    else:
        with within(step_seconds):
            client.import_resource("icfg_1", "r1", BODY, token=TOKEN)


CALL_TOLERANCE = 0.5  # seconds between the step's bound being set and the call reading it


def test_a_call_outside_any_step_has_its_configured_timeout() -> None:
    seen = SeenTimeouts()
    call_with(seen, timeout_seconds=10, step_seconds=None)
    assert seen.timeouts == [{"connect": 2.0, "read": 10.0, "write": 2.0, "pool": 2.0}]
    (left,) = seen.left
    assert left is not None  # the call as a whole is bounded by its timeout
    assert 10 - CALL_TOLERANCE < left <= 10


def test_a_call_is_cut_to_what_its_step_has_left() -> None:
    seen = SeenTimeouts()
    call_with(seen, timeout_seconds=10, step_seconds=3)
    ((timeouts,), (left,)) = seen.timeouts, seen.left
    assert 3 - CALL_TOLERANCE < timeouts["read"] <= 3
    assert (timeouts["connect"], timeouts["write"], timeouts["pool"]) == (2.0, 2.0, 2.0)
    assert left is not None
    assert 3 - CALL_TOLERANCE < left <= 3


def test_the_short_phases_are_cut_too() -> None:
    seen = SeenTimeouts()
    call_with(seen, timeout_seconds=10, step_seconds=1.5)  # less than a short phase's 2 s
    call_with(seen, timeout_seconds=0.8, step_seconds=None)  # a configured timeout below it
    cut, configured = seen.timeouts
    for phase in ("connect", "write", "pool", "read"):
        assert 1.5 - CALL_TOLERANCE < cut[phase] <= 1.5, phase
    assert configured == {"connect": 0.8, "read": 0.8, "write": 0.8, "pool": 0.8}


def test_a_step_with_more_time_than_the_call_needs_leaves_its_timeout_alone() -> None:
    seen = SeenTimeouts()
    call_with(seen, timeout_seconds=2, step_seconds=30)
    assert seen.timeouts == [{"connect": 2.0, "read": 2.0, "write": 2.0, "pool": 2.0}]
    (left,) = seen.left
    assert left is not None
    assert left <= 2


@pytest.mark.parametrize("step_seconds", [0.5, 0.0, -1.0])
def test_no_call_starts_with_less_than_the_shortest_call_left(step_seconds: float) -> None:
    seen = SeenTimeouts()
    with pytest.raises(TransientSyncError, match="no time left for a call to Vercel"):
        call_with(seen, timeout_seconds=10, step_seconds=step_seconds)
    assert seen.timeouts == []


@respx.mock
@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_redirects_go_back_to_the_source(status: int) -> None:
    respx.put(url__startswith=BASE).mock(
        return_value=httpx.Response(status, headers={"Location": "https://elsewhere.test/"})
    )
    with pytest.raises(TransientSyncError, match="VERCEL_API_URL"):
        VercelClient(BASE).import_resource("icfg_1", "r1", {"name": "x"}, token=TOKEN)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after": "inf"}, None),
        ({"retry-after": "nan"}, None),
        ({"retry-after": "1e12"}, MAX_RETRY_AFTER_SECONDS),
        ({"retry-after-ms": "-5"}, 0.0),
        ({"retry-after": "7"}, 7.0),
    ],
)
def test_retry_after_is_bounded(headers: dict[str, str], expected: float | None) -> None:
    assert retry_after_seconds(headers) == expected


class DrippingStream(httpx.SyncByteStream):
    def __iter__(self) -> Any:
        for _ in range(20):
            time.sleep(0.1)
            yield b" "


@respx.mock
def test_an_answer_that_drips_in_is_cut_off_at_the_read_timeout() -> None:
    respx.put(url__startswith=BASE).mock(return_value=httpx.Response(200, stream=DrippingStream()))
    with pytest.raises(TransientSyncError, match="longer than the call's timeout"):
        VercelClient(BASE, timeout_seconds=0.5).import_resource("icfg_1", "r1", {"name": "x"}, token=TOKEN)


# -- the secrets call ------------------------------------------------------------------------------


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


# --- a 429 without Retry-After: the body's error.limit.reset (epoch seconds), else the backoff -----


def _limited_body(reset: object) -> dict[str, Any]:
    return {
        "error": {
            "code": "rate_limited",
            "message": "slow down",
            "limit": {"total": 100, "remaining": 0, "reset": reset},
        }
    }


def test_a_429_without_retry_after_waits_until_the_body_says_the_limit_resets(
    client: VercelClient, api: respx.MockRouter
) -> None:
    reset = int(time.time()) + 30
    api.put(url__regex=r".*").respond(429, json=_limited_body(reset))

    with pytest.raises(TransientSyncError) as caught:
        client.import_resource("icfg_1", "res_1", BODY, token=TOKEN)

    assert caught.value.http_status == 429
    assert caught.value.retry_after_seconds is not None
    assert 28 <= caught.value.retry_after_seconds <= 30


def test_retry_after_wins_over_the_body(client: VercelClient, api: respx.MockRouter) -> None:
    api.put(url__regex=r".*").respond(429, headers={"Retry-After": "4"}, json=_limited_body(int(time.time()) + 300))
    with pytest.raises(TransientSyncError) as caught:
        client.import_resource("icfg_1", "res_1", BODY, token=TOKEN)
    assert caught.value.retry_after_seconds == 4


def test_only_a_429_body_is_read_for_a_reset(client: VercelClient, api: respx.MockRouter) -> None:
    api.put(url__regex=r".*").respond(503, json=_limited_body(int(time.time()) + 30))
    with pytest.raises(TransientSyncError) as caught:
        client.import_resource("icfg_1", "res_1", BODY, token=TOKEN)
    assert caught.value.retry_after_seconds is None


def test_a_429_body_past_the_size_cap_is_not_read_for_a_reset(client: VercelClient, api: respx.MockRouter) -> None:
    padded = json.dumps(_limited_body(int(time.time()) + 30) | {"padding": "x" * MAX_ERROR_BODY_BYTES})
    api.put(url__regex=r".*").respond(429, content=padded.encode())
    with pytest.raises(TransientSyncError) as caught:
        client.import_resource("icfg_1", "res_1", BODY, token=TOKEN)
    assert caught.value.retry_after_seconds is None


NOW = 1_800_000_000.0


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (json.dumps(_limited_body(NOW + 12)).encode(), 12.0),
        (json.dumps(_limited_body(NOW + 2.5)).encode(), 2.5),
        (json.dumps(_limited_body(NOW + 10**9)).encode(), MAX_RETRY_AFTER_SECONDS),  # capped as Retry-After
        (json.dumps(_limited_body(NOW - 5)).encode(), None),  # already past: the backoff decides
        (json.dumps(_limited_body(NOW)).encode(), None),
        (json.dumps(_limited_body(str(NOW + 12))).encode(), None),  # not a number
        (json.dumps(_limited_body(True)).encode(), None),
        (json.dumps(_limited_body(None)).encode(), None),
        (json.dumps(_limited_body([NOW + 12])).encode(), None),
        (b'{"error": {"limit": {"reset": 1e999}}}', None),  # infinity once parsed
        (b'{"error": {"limit": {"reset": NaN}}}', None),
        (b'{"error": {"limit": {"reset": 1' + b"0" * 400 + b"}}}", None),  # an integer no float holds
        (b"<html>Too Many Requests</html>", None),  # not JSON
        (b"", None),
        (b"[" * 5000 + b"]" * 5000, None),  # nested deeper than the parser recurses
        (b'{"error": "rate_limited"}', None),
        (b'{"error": {"limit": 1800000012}}', None),
        (b'["error"]', None),
    ],
)
def test_limit_reset_is_bounded_and_hostile_bodies_fall_back_to_the_backoff(
    body: bytes, expected: float | None
) -> None:
    assert limit_reset_seconds(body, now=NOW) == expected


# --- DELETE of a resource (REMOVAL_MODE=delete) -----------------------------------------------------


def test_delete_sends_a_bodyless_delete_and_takes_204(client: VercelClient, api: respx.MockRouter) -> None:
    route = api.delete("/v1/installations/icfg_1/resources/res%2F1").respond(204)

    assert client.delete_resource("icfg_1", "res/1", token=TOKEN) is None

    request = route.calls.last.request
    assert request.method == "DELETE"
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert "content-type" not in request.headers
    assert request.content == b""


def test_delete_of_a_resource_vercel_does_not_hold_is_success(client: VercelClient, api: respx.MockRouter) -> None:
    api.delete(url__regex=r".*").respond(404, json={"error": {"code": "not_found", "message": "gone"}})
    assert client.delete_resource("icfg_1", "res_1", token=TOKEN) is None


def test_delete_failures_are_classified_as_an_imports_are(client: VercelClient, api: respx.MockRouter) -> None:
    api.delete(url__regex=r".*").mock(
        side_effect=[
            httpx.Response(403, json={"error": {"code": "forbidden", "message": "no"}}),
            httpx.Response(429, headers={"Retry-After": "3"}),
            httpx.Response(401),
        ]
    )
    with pytest.raises(PermanentSyncError) as refused:
        client.delete_resource("icfg_1", "res_1", token=TOKEN)
    assert (refused.value.http_status, refused.value.message) == (403, "Vercel rejected the deletion (403): forbidden")
    with pytest.raises(TransientSyncError) as throttled:
        client.delete_resource("icfg_1", "res_1", token=TOKEN)
    assert (throttled.value.http_status, throttled.value.retry_after_seconds) == (429, 3)
    with pytest.raises(VercelUnauthorizedError):
        client.delete_resource("icfg_1", "res_1", token=TOKEN)


@pytest.mark.parametrize("status", [400, 409, 410, 422])
def test_delete_refusals_are_permanent_and_keep_vercels_answer(
    client: VercelClient, api: respx.MockRouter, status: int
) -> None:
    api.delete(url__regex=r".*").respond(status, json={"error": {"code": "conflict", "message": "no"}})
    with pytest.raises(PermanentSyncError) as caught:
        client.delete_resource("icfg_1", "res_1", token=TOKEN)
    assert (caught.value.http_status, caught.value.reason) == (status, "vercel_rejected")
    assert TOKEN not in str(caught.value)


def test_a_429_on_delete_waits_for_the_body_reset_without_retry_after(
    client: VercelClient, api: respx.MockRouter
) -> None:
    api.delete(url__regex=r".*").mock(
        side_effect=[
            httpx.Response(429, json=_limited_body(int(time.time()) + 20)),
            httpx.Response(429, headers={"Retry-After": "2"}, json=_limited_body(int(time.time()) + 20)),
            httpx.Response(429),
        ]
    )
    waits = []
    for _ in range(3):
        with pytest.raises(TransientSyncError) as caught:
            client.delete_resource("icfg_1", "res_1", token=TOKEN)
        waits.append(caught.value.retry_after_seconds)
    assert waits[0] is not None
    assert 18 <= waits[0] <= 20
    assert waits[1:] == [2, None]


@pytest.mark.parametrize(
    ("resource_id", "path"),
    [
        ("a/b", "/v1/installations/icfg_1/resources/a%2Fb"),
        ("100%", "/v1/installations/icfg_1/resources/100%25"),
        ("%2e%2e", "/v1/installations/icfg_1/resources/%252e%252e"),
        ("../secrets", "/v1/installations/icfg_1/resources/..%2Fsecrets"),
        ("a?b#c", "/v1/installations/icfg_1/resources/a%3Fb%23c"),
    ],
)
def test_delete_sends_each_id_as_one_path_segment(
    client: VercelClient, api: respx.MockRouter, resource_id: str, path: str
) -> None:
    route = api.delete(url__regex=r".*").respond(204)
    client.delete_resource("icfg_1", resource_id, token=TOKEN)
    assert route.calls.last.request.url.raw_path.decode() == path


@pytest.mark.parametrize("resource_id", ["..", ".", ""])
def test_delete_of_a_dot_segment_is_refused_before_any_call(
    client: VercelClient, api: respx.MockRouter, resource_id: str
) -> None:
    route = api.delete(url__regex=r".*").respond(204)
    with pytest.raises(PermanentSyncError) as caught:
        client.delete_resource("icfg_1", resource_id, token=TOKEN)
    assert caught.value.reason == "invalid_record"
    assert not route.called


def test_a_reset_in_milliseconds_is_read_as_milliseconds() -> None:
    # An epoch in milliseconds read as seconds is a wait of millennia (capped: an hour's pause of the
    # installation across containers); no epoch in seconds is that large before the year 5000.
    assert limit_reset_seconds(json.dumps(_limited_body(NOW * 1000 + 12_000)).encode(), now=NOW) == 12.0
    assert limit_reset_seconds(json.dumps(_limited_body(NOW * 1000 - 5_000)).encode(), now=NOW) is None


def test_a_429_body_that_parses_only_once_cut_is_not_read_for_a_reset(
    client: VercelClient, api: respx.MockRouter
) -> None:
    # Valid JSON, then padding past the cap: what was not read in full is not trusted for a wait.
    padded = json.dumps(_limited_body(int(time.time()) + 30)) + " " * MAX_ERROR_BODY_BYTES
    api.put(url__regex=r".*").respond(429, content=padded.encode())
    with pytest.raises(TransientSyncError) as caught:
        client.import_resource("icfg_1", "res_1", BODY, token=TOKEN)
    assert caught.value.retry_after_seconds is None


LIST_PATH = "/v1/installations/icfg_1/resources"


@pytest.mark.parametrize(
    "answer",
    [
        httpx.Response(200, text="<html>not json</html>"),
        httpx.Response(200, json={"items": []}),
        httpx.Response(200, json={"resources": {"partnerId": "r1"}}),
        httpx.Response(200, json=[{"partnerId": "r1"}]),
    ],
    ids=["not-json", "no-resources", "resources-not-a-list", "a-bare-list"],
)
def test_a_resources_list_not_in_vercels_shape_is_transient_and_quotes_no_token(
    client: VercelClient, api: respx.MockRouter, answer: httpx.Response
) -> None:
    api.get(LIST_PATH).mock(return_value=answer)
    with pytest.raises(TransientSyncError) as raised:
        client.list_resources("icfg_1", token=TOKEN)
    assert TOKEN not in str(raised.value)


def test_a_resources_list_keeps_only_objects(client: VercelClient, api: respx.MockRouter) -> None:
    api.get(LIST_PATH).respond(200, json={"resources": [{"partnerId": "r1"}, "r2", 3, None, [], {"partnerId": 4}]})
    assert client.list_resources("icfg_1", token=TOKEN) == [{"partnerId": "r1"}, {"partnerId": 4}]


@pytest.mark.parametrize(
    ("status", "kind"),
    [(401, TransientSyncError), (403, PermanentSyncError), (404, PermanentSyncError), (429, TransientSyncError)],
)
def test_a_refused_resources_list_is_classed_as_any_call(
    client: VercelClient, api: respx.MockRouter, status: int, kind: type[Exception]
) -> None:
    api.get(LIST_PATH).respond(status, json={"error": {"code": "x", "message": "no"}})
    with pytest.raises(kind) as raised:
        client.list_resources("icfg_1", token=TOKEN)
    assert getattr(raised.value, "http_status", None) == status
