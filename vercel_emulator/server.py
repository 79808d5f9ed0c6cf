"""The HTTP server: aiohttp's low-level server on one event loop, and ``EmulatorServer`` for tests.

One handler serves every request and dispatches on the RAW path (``request.raw_path``), splitting
it on ``/`` before percent-decoding each id once, so an id holding an encoded ``/`` stays one
segment. All state is touched only on the loop, so nothing takes a lock; requests that sleep
(injected latency) do not hold anything up.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import copy
import hmac
import ipaddress
import json
import logging
import math
import re
import threading
import time
import traceback
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qs, unquote, urlsplit

from aiohttp import web
from aiohttp.log import access_logger

from vercel_emulator.schema import describe_problems, import_body_problems, secrets_update_problems
from vercel_emulator.state import (
    ABORTED,
    DROPPED,
    ROUTE_LIST,
    ROUTE_RESOURCE,
    ROUTE_REVOKE,
    ROUTE_ROTATE,
    ROUTE_SECRETS,
    ROUTE_TOKEN,
    EmulatorState,
    FaultSettings,
    FixedWindowRateLimiter,
    RateLimit,
    fault_method_key,
    vercel_view,
)

logger = logging.getLogger("vercel_emulator")

CONTROL_PREFIX = "/_emulator/"
# Remote address, request line, status, response size, seconds: never headers or bodies.
ACCESS_LOG_FORMAT = '%a "%r" %s %b %Tf'

_ERROR_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
    500: "internal_server_error",
    502: "bad_gateway",
    503: "service_unavailable",
    504: "gateway_timeout",
}

Handler = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]

BEARER = "Bearer"  # the type of the tokens the token endpoint issues
# The shape @vercel/sdk validates for credentials/rotate's answer.
ROTATED_TOKEN_TYPE = "oauth2-token"  # noqa: S105 - a token type's name, not a token  # nosec B105
TOKEN_SCOPE = "read-write:integration-resource"  # noqa: S105 - the emulator's choice: the SDK checks only that it is a string  # nosec B105
# The client_credentials token endpoint (VERCEL_TOKEN_URL's default path in the sync).
TOKEN_PATH = "/v2/oauth/access_token"  # noqa: S105 - a URL path, not a secret  # nosec B105

# The methods each API route answers.
_ROUTE_METHODS = {
    ROUTE_LIST: ("GET",),
    ROUTE_RESOURCE: ("GET", "PUT", "DELETE"),
    ROUTE_SECRETS: ("PUT",),
    ROUTE_ROTATE: ("POST",),
    ROUTE_REVOKE: ("POST",),
}


def _api_route(path: str) -> tuple[str, str, str | None] | None:
    """(route, raw installation segment, raw resource segment or None) for an API path, else None."""
    # "", "v1", "installations", {id}, then "resources"[, {resourceId}[, "secrets"]] or
    # "credentials", "rotate" | "revoke".
    segments = path.split("/")
    if len(segments) < 5 or segments[2] != "installations" or not segments[3]:
        return None
    installation, rest = segments[3], segments[4:]
    if rest == ["resources"]:
        return ROUTE_LIST, installation, None
    if len(rest) == 2 and rest[0] == "resources" and rest[1]:
        return ROUTE_RESOURCE, installation, rest[1]
    if len(rest) == 3 and rest[0] == "resources" and rest[1] and rest[2] == "secrets":
        return ROUTE_SECRETS, installation, rest[1]
    if len(rest) == 2 and rest[0] == "credentials" and rest[1] in ("rotate", "revoke"):
        return (ROUTE_ROTATE if rest[1] == "rotate" else ROUTE_REVOKE), installation, None
    return None


def _json_response(status: int, document: object, headers: Mapping[str, str] | None = None) -> web.Response:
    body = json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return web.Response(status=status, body=body, content_type="application/json", headers=headers)


# A JSON escape of a UTF-16 surrogate (\ud800 to \udfff): the only way a lone one gets into a
# UTF-8 body.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def _is_unicode_text(raw: bytes, document: object) -> bool:
    """False if ``document`` (parsed from ``raw``) holds a lone surrogate. Only a body with a
    surrogate escape (or in UTF-16/32, which json also reads: a NUL among the first bytes) pays
    for the full check, so the common import costs one byte search."""
    if b"\x00" not in raw[:4] and not _SURROGATE_ESCAPE.search(raw):
        return True
    try:
        json.dumps(document, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def error_response(status: int, message: str, headers: Mapping[str, str] | None = None) -> web.Response:
    """Vercel's error shape: ``{"error": {"code": ..., "message": ...}}``."""
    return _json_response(status, {"error": {"code": _ERROR_CODES[status], "message": message}}, headers)


def _decode_segment(segment: str) -> str:
    """One path segment percent-decoded once (``UnicodeDecodeError`` when not UTF-8)."""
    return unquote(segment, errors="strict") if "%" in segment else segment


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


def _is_loopback(remote: str | None) -> bool:
    if not remote:
        return False
    try:
        address = ipaddress.ip_address(remote)
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return bool(address.is_loopback or (mapped is not None and mapped.is_loopback))


def _loopback_host(host: str | None) -> bool:
    """``localhost``, an IPv4 loopback address or ``::1`` (``urlsplit``'s hostname: lowercase, no brackets)."""
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _addressed_to_loopback(host_header: str | None, server_port: int | None) -> bool:
    """The ``Host`` header names a loopback host and this server's port. A page that reached the
    server by DNS rebinding sends its own host name here, so it is refused."""
    if not host_header or server_port is None:
        return False
    try:
        parts = urlsplit("//" + host_header)
        port = parts.port
    except ValueError:
        return False
    if parts.username is not None or parts.password is not None or parts.path or parts.query or parts.fragment:
        return False
    return _loopback_host(parts.hostname) and (port if port is not None else 80) == server_port


def _loopback_origin(origin: str | None) -> bool:
    """No ``Origin`` (not a browser's cross-origin request), or a page served from a loopback host.
    ``null`` (a sandboxed page, a file) is refused."""
    if origin is None:
        return True
    try:
        parts = urlsplit(origin)
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and _loopback_host(parts.hostname) and parts.path in ("", "/")


def _local_port(request: web.BaseRequest) -> int | None:
    transport = request.transport
    address = transport.get_extra_info("sockname") if transport is not None else None
    return int(address[1]) if isinstance(address, tuple) and len(address) >= 2 else None


def _is_json(request: web.BaseRequest) -> bool:
    return request.content_type.lower() == "application/json"


def control_refusal(request: web.BaseRequest) -> web.Response | None:
    """Why the control API refuses this request, if it does. ``/_emulator/imports`` holds secret
    values: a page in the developer's browser must neither read it (DNS rebinding: the Host check)
    nor change the emulator (a cross-site post: the Origin check; a form's body, which is never
    JSON: the Content-Type check)."""
    if not _is_loopback(request.remote):
        return error_response(403, "The control API answers loopback clients only.")
    if not _addressed_to_loopback(request.headers.get("Host"), _local_port(request)):
        return error_response(403, "The control API answers requests addressed to a loopback host and its port only.")
    if not _loopback_origin(request.headers.get("Origin")):
        return error_response(403, "The control API answers pages from loopback origins only.")
    if (request.body_exists or "Content-Type" in request.headers) and not _is_json(request):
        return error_response(415, "The control API takes application/json bodies only.")
    return None


class EmulatorHandler:
    """Answers every request from one :class:`EmulatorState`."""

    def __init__(self, state: EmulatorState) -> None:
        self.state = state
        self._control_routes: dict[str, dict[str, Handler]] = {
            "health": {"GET": self._health},
            "calls": {"GET": self._calls},
            "imports": {"GET": self._imports},
            "installations": {"POST": self._set_installation_token},
            "faults": {"GET": self._faults, "POST": self._set_faults},
            "rate-limit": self._limit_routes("rate_limiter"),
            "secrets-rate-limit": self._limit_routes("secrets_rate_limiter"),
            "delete-rate-limit": self._limit_routes("delete_rate_limiter"),
            "reset": {"POST": self._reset},
        }

    async def __call__(self, request: web.BaseRequest) -> web.StreamResponse:
        path = request.raw_path.partition("?")[0]
        if path.startswith("/v1/"):
            return await self._api(request, path)
        if path == TOKEN_PATH:
            return await self._token_endpoint(request)
        if path.startswith(CONTROL_PREFIX):
            return await self._control(request, path[len(CONTROL_PREFIX) :])
        return error_response(404, "The requested route does not exist.")

    # -- the Vercel API -------------------------------------------------------------------------

    async def _api(self, request: web.BaseRequest, path: str) -> web.StreamResponse:
        parsed = _api_route(path)
        if parsed is None:
            return error_response(404, "The requested route does not exist.")
        route, raw_installation, raw_resource = parsed
        try:
            installation_id = _decode_segment(raw_installation)
            resource_id = _decode_segment(raw_resource) if raw_resource is not None else None
        except UnicodeDecodeError:
            return error_response(400, "A path id is not percent-encoded UTF-8.")
        method = request.method
        allowed = _ROUTE_METHODS[route]
        if method not in allowed:
            return error_response(405, f"Use {' or '.join(allowed)} here.", {"Allow": ", ".join(allowed)})

        calls = self.state.calls
        call_number = calls.received(method, installation_id, resource_id, route)
        try:
            response = await self._api_call(request, method, route, installation_id, resource_id, call_number)
        except ConnectionResetError:
            # The client went away mid-request: nothing to answer, and not the emulator's fault.
            calls.answered(method, installation_id, resource_id, ABORTED, route)
            return web.Response(status=400)  # never sent: the connection is gone
        except Exception as exc:  # noqa: BLE001 - any bug becomes a 500 answer and a log line
            # The exception's type and where it was raised, not its message: that could quote the
            # body, which may hold secrets.
            where = "".join(traceback.format_tb(exc.__traceback__))
            logger.error("unexpected %s answering %s on %s:\n%s", type(exc).__name__, method, route, where)
            response = error_response(500, "The emulator failed unexpectedly.")
        outcome = DROPPED if response is None else str(response.status)
        calls.answered(method, installation_id, resource_id, outcome, route)
        if response is None:
            # The transport is already aborted; aiohttp's write of this placeholder fails quietly.
            return web.Response(status=500)
        return response

    async def _api_call(
        self,
        request: web.BaseRequest,
        method: str,
        route: str,
        installation_id: str,
        resource_id: str | None,
        call_number: int,
    ) -> web.Response | None:
        """The answer, or ``None`` when the connection was dropped without one."""
        state = self.state
        faults = state.faults
        decision = state.decide_fault(fault_method_key(method, route), installation_id, resource_id, call_number)
        delay_ms = faults.latency_ms + (faults.slow_ms if decision.slow else 0.0)
        if delay_ms:
            await asyncio.sleep(delay_ms / 1000)
        if decision.kind == "drop":
            if request.transport is not None:
                request.transport.abort()
            return None
        if decision.kind == "error":
            assert decision.status is not None
            return error_response(decision.status, "Injected fault: the request was not processed.")
        if decision.kind == "throttle":
            return self._too_many_requests(
                "Injected throttle: too many requests, try again later.",
                faults.throttle_retry_after,
                state.rate_limiter.limit,
            )

        refusal = self._authorize(request, installation_id)
        if refusal is not None:
            return refusal
        if method == "GET":
            return self._read(installation_id, resource_id)
        if method == "DELETE":
            assert resource_id is not None
            return self._delete(installation_id, resource_id)
        if route == ROUTE_ROTATE:
            return await self._rotate_credentials(request, installation_id)
        if route == ROUTE_REVOKE:
            return await self._revoke_credential(request, installation_id)
        assert resource_id is not None
        if route == ROUTE_SECRETS:
            return await self._update_secrets(request, installation_id, resource_id)
        return await self._import(request, installation_id, resource_id)

    def _authorize(self, request: web.BaseRequest, installation_id: str) -> web.Response | None:
        """401 without a known token, then 404 for an unknown installation, then 403 for another's token."""
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        token = token.strip()
        tokens = self.state.tokens
        owner = tokens.installation_for(token) if token and scheme.lower() == "bearer" else None
        if owner is None:
            return error_response(401, "The request is not authorized.", {"WWW-Authenticate": "Bearer"})
        if not tokens.is_known_installation(installation_id):
            return error_response(404, "The installation was not found.")
        if owner != installation_id:
            return error_response(403, "You do not have permission to access this resource.")
        return None

    def _read(self, installation_id: str, resource_id: str | None) -> web.Response:
        if resource_id is None:
            held = self.state.resources.get(installation_id, {})
            listed = [vercel_view(pid, stored, listed=True) for pid, stored in held.items()]
            return _json_response(200, {"resources": listed})
        stored = self.state.resource(installation_id, resource_id)
        if stored is None:
            return error_response(404, "The resource was not found.")
        return _json_response(200, vercel_view(resource_id, stored))

    def _delete(self, installation_id: str, resource_id: str) -> web.Response:
        """Delete Resource: 204 with no body. Its own rate limit (every authorised call counts), then
        404 for a resource not held; afterwards GET and the list no longer have it."""
        limited = self._rate_limited(self.state.delete_rate_limiter, installation_id, "deletions")
        if limited is not None:
            return limited
        if not self.state.remove(installation_id, resource_id):
            return error_response(404, "The resource was not found.")
        return web.Response(status=204)

    async def _read_body(self, request: web.BaseRequest) -> bytes | web.Response:
        """The request body, or the answer to give instead (413)."""
        if request.headers.get("Expect", "").lower() == "100-continue":
            # The low-level server does not answer it (aiohttp's router would): a client that
            # waits for it before sending the body would otherwise stall.
            await request.writer.write(b"HTTP/%d.%d 100 Continue\r\n\r\n" % request.version)
        try:
            return await request.read()
        except web.HTTPRequestEntityTooLarge:
            return error_response(413, "The request body is too large.")

    def _rate_limited(self, limiter: FixedWindowRateLimiter, installation_id: str, what: str) -> web.Response | None:
        retry_after = limiter.admit(installation_id, time.monotonic())
        if retry_after is None:
            return None
        limit = limiter.limit
        return self._too_many_requests(
            f"Rate limit exceeded: {limit.calls} {what} per {limit.seconds:g} s per installation. "
            f"Try again in {retry_after} s.",
            retry_after,
            limit,
        )

    def _too_many_requests(self, message: str, retry_after: int, limit: RateLimit) -> web.Response:
        """429 ``rate_limited`` with its wait where the fault setting ``retry_after_in`` puts it: the
        ``Retry-After`` header, the body's ``error.limit`` (``reset`` in epoch seconds), or both."""
        place = self.state.faults.retry_after_in
        headers = {"Retry-After": str(retry_after)} if place in ("header", "both") else None
        if place == "header":
            return error_response(429, message, headers)
        reset = math.ceil(time.time()) + retry_after
        error = {
            "code": "rate_limited",
            "message": message,
            "limit": {"total": limit.calls, "remaining": 0, "reset": reset},
        }
        return _json_response(429, {"error": error}, headers)

    @staticmethod
    def _json_document(request: web.BaseRequest, raw: bytes) -> object | web.Response:
        """The parsed JSON body, or the 400 to answer."""
        if request.content_type != "application/json":
            return error_response(400, "The request body must be sent as Content-Type: application/json.")
        try:
            document: object = json.loads(raw, parse_constant=_reject_constant)
        except (ValueError, RecursionError):
            return error_response(400, "The request body is not valid JSON.")
        return document

    async def _import(self, request: web.BaseRequest, installation_id: str, resource_id: str) -> web.Response:
        raw = await self._read_body(request)
        if isinstance(raw, web.Response):
            return raw
        limited = self._rate_limited(self.state.rate_limiter, installation_id, "imports")
        if limited is not None:
            return limited
        document = self._json_document(request, raw)
        if isinstance(document, web.Response):
            return document
        problems = import_body_problems(document)
        if problems:
            return error_response(400, describe_problems(problems))
        assert isinstance(document, dict)
        if not _is_unicode_text(raw, document):
            # JSON can escape a lone surrogate ("\ud800"); stored, it could never be answered back.
            return error_response(400, "Invalid request body: a string is not valid Unicode (a lone surrogate).")
        self.state.store(installation_id, resource_id, document)
        return _json_response(200, {"name": document["name"]})

    async def _update_secrets(self, request: web.BaseRequest, installation_id: str, resource_id: str) -> web.Response:
        """Update Resource Secrets: 201 with no body. Its own rate limit (every authorised call
        counts), then 404 for a resource never imported, then the body's checks."""
        raw = await self._read_body(request)
        if isinstance(raw, web.Response):
            return raw
        limited = self._rate_limited(self.state.secrets_rate_limiter, installation_id, "secrets updates")
        if limited is not None:
            return limited
        if self.state.resource(installation_id, resource_id) is None:
            return error_response(404, "The resource was not found.")
        document = self._json_document(request, raw)
        if isinstance(document, web.Response):
            return document
        problems = secrets_update_problems(document)
        if problems:
            return error_response(400, describe_problems(problems))
        assert isinstance(document, dict)
        if not _is_unicode_text(raw, document):
            return error_response(400, "Invalid request body: a string is not valid Unicode (a lone surrogate).")
        self.state.update_secrets(
            installation_id, resource_id, document["secrets"], partial=bool(document.get("partial", False))
        )
        return web.Response(status=201)

    async def _credentials_body(self, request: web.BaseRequest, *fields: str) -> dict[str, Any] | web.Response:
        """The credentials routes' JSON body: ``client_secret`` (checked when one is configured)
        and the named string ``fields``."""
        raw = await self._read_body(request)
        if isinstance(raw, web.Response):
            return raw
        document = self._json_document(request, raw)
        if isinstance(document, web.Response):
            return document
        expected = ", ".join(f"{name}: string" for name in ("client_secret", *fields))
        if not isinstance(document, dict) or any(
            type(document.get(name)) is not str or not document[name] for name in ("client_secret", *fields)
        ):
            return error_response(400, f"Invalid request body: expected {{{expected}}}.")
        configured = self.state.client_secret
        if configured is not None and not _same_secret(document["client_secret"], configured):
            return error_response(403, "The client secret does not match the integration's.")
        return document

    async def _rotate_credentials(self, request: web.BaseRequest, installation_id: str) -> web.Response:
        """A new token for the installation; the one that asked stays valid until revoked."""
        document = await self._credentials_body(request)
        if isinstance(document, web.Response):
            return document
        lifetime = self.state.token_lifetime_seconds
        token = self.state.tokens.rotate(installation_id, lifetime)
        answer = {"access_token": token, "token_type": ROTATED_TOKEN_TYPE, "expires_in": lifetime, "scope": TOKEN_SCOPE}
        return _json_response(200, answer)

    async def _token_endpoint(self, request: web.BaseRequest) -> web.Response:
        """The client_credentials grant for one installation (``installation_id``), counted under it."""
        if request.method != "POST":
            return error_response(405, "Use POST here.", {"Allow": "POST"})
        raw = await self._read_body(request)
        if isinstance(raw, web.Response):
            return raw
        form = _token_form(request, raw)
        installation_id = form.get("installation_id") or ""
        calls = self.state.calls
        calls.received("POST", installation_id, None, ROUTE_TOKEN)
        response = self._token_answer(form, installation_id)
        calls.answered("POST", installation_id, None, str(response.status), ROUTE_TOKEN)
        return response

    def _token_answer(self, form: Mapping[str, str], installation_id: str) -> web.Response:
        if form.get("grant_type") != "client_credentials":
            return error_response(400, "Expected grant_type=client_credentials.")
        if not form.get("client_id") or not form.get("client_secret") or not installation_id:
            return error_response(400, "Expected client_id, client_secret and installation_id.")
        state = self.state
        for given, configured in ((form["client_id"], state.client_id), (form["client_secret"], state.client_secret)):
            if configured is not None and not _same_secret(given, configured):
                return error_response(401, "The client credentials are not the integration's.")
        lifetime = state.token_lifetime_seconds
        token = state.tokens.issue(installation_id, lifetime)
        announced = lifetime if state.announced_expires_in is None else state.announced_expires_in
        return _json_response(200, {"access_token": token, "token_type": BEARER, "expires_in": announced})

    async def _revoke_credential(self, request: web.BaseRequest, installation_id: str) -> web.Response:
        """Retire the token named in the body (``access_token``); never the installation's last."""
        document = await self._credentials_body(request, "access_token")
        if isinstance(document, web.Response):
            return document
        outcome = self.state.tokens.revoke(installation_id, document["access_token"])
        if outcome == "unknown":
            return error_response(404, "No such live credential for this installation.")
        if outcome == "last":
            return error_response(409, "The installation's last live credential cannot be revoked.")
        return web.Response(status=204)

    # -- the control API ------------------------------------------------------------------------

    async def _control(self, request: web.BaseRequest, name: str) -> web.StreamResponse:
        refusal = control_refusal(request)
        if refusal is not None:
            return refusal
        route = self._control_routes.get(name)
        if route is None:
            return error_response(404, "The requested route does not exist.")
        handler = route.get(request.method)
        if handler is None:
            allowed = ", ".join(route)
            return error_response(405, f"Use {allowed} here.", {"Allow": allowed})
        try:
            return await handler(request)
        except Exception as exc:  # noqa: BLE001 - a bug answers 500 with Vercel's error shape, and a log line
            where = "".join(traceback.format_tb(exc.__traceback__))
            logger.error("unexpected %s answering %s on the control API:\n%s", type(exc).__name__, name, where)
            return error_response(500, "The emulator failed unexpectedly.")

    async def _health(self, request: web.BaseRequest) -> web.Response:
        return _json_response(200, {"status": "ok"})

    async def _calls(self, request: web.BaseRequest) -> web.Response:
        return _json_response(200, self.state.calls.to_json())

    async def _imports(self, request: web.BaseRequest) -> web.Response:
        imports = [
            {
                "installationId": installation_id,
                "resourceId": resource_id,
                "id": stored.emulator_id,
                "body": stored.body,
            }
            for installation_id, held in self.state.resources.items()
            for resource_id, stored in held.items()
        ]
        return _json_response(200, {"imports": imports})

    async def _set_installation_token(self, request: web.BaseRequest) -> web.Response:
        document = await _control_body(request)
        if isinstance(document, web.Response):
            return document
        installation_id = document.get("installationId")
        token = document.get("token")
        keep_previous = document.get("keepPreviousTokens", False)
        if type(installation_id) is not str or type(token) is not str or type(keep_previous) is not bool:
            return error_response(
                400, "Expected {installationId: string, token: string, keepPreviousTokens?: boolean}."
            )
        try:
            accepted = self.state.tokens.set_token(installation_id, token, keep_previous=keep_previous)
        except ValueError as exc:
            return error_response(400, str(exc))
        return _json_response(200, {"installationId": installation_id, "acceptedTokens": accepted})

    async def _faults(self, request: web.BaseRequest) -> web.Response:
        return _json_response(200, self.state.faults.to_json())

    async def _set_faults(self, request: web.BaseRequest) -> web.Response:
        document = await _control_body(request)
        if isinstance(document, web.Response):
            return document
        try:
            self.state.faults = self.state.faults.updated_from_json(document)
        except ValueError as exc:
            return error_response(400, str(exc))
        return _json_response(200, self.state.faults.to_json())

    def _limit_routes(self, limiter: str) -> dict[str, Handler]:
        """GET and POST of one of the state's limits (imports', secrets updates', deletions')."""

        async def show(request: web.BaseRequest) -> web.Response:
            limit = getattr(self.state, limiter).limit
            return _json_response(200, {"calls": limit.calls, "seconds": limit.seconds})

        async def change(request: web.BaseRequest) -> web.Response:
            limit = await _control_rate_limit(request)
            if isinstance(limit, web.Response):
                return limit
            setattr(self.state, limiter, FixedWindowRateLimiter(limit))
            return await show(request)

        return {"GET": show, "POST": change}

    async def _reset(self, request: web.BaseRequest) -> web.Response:
        self.state.reset()
        return _json_response(200, {"status": "ok"})


async def _control_body(request: web.BaseRequest) -> dict[str, Any] | web.Response:
    try:
        document = json.loads(await request.read() or b"{}")
    except ValueError:
        return error_response(400, "The request body is not valid JSON.")
    if not isinstance(document, dict):
        return error_response(400, "The request body must be a JSON object.")
    return document


async def _control_rate_limit(request: web.BaseRequest) -> RateLimit | web.Response:
    document = await _control_body(request)
    if isinstance(document, web.Response):
        return document
    calls, seconds = document.get("calls"), document.get("seconds")
    if (
        not isinstance(calls, int)
        or not isinstance(seconds, int | float)
        or isinstance(calls, bool)
        or isinstance(seconds, bool)
        or set(document) - {"calls", "seconds"}
    ):
        return error_response(400, "Expected {calls: integer, seconds: number}.")
    try:
        return RateLimit(calls, float(seconds))
    except ValueError as exc:
        return error_response(400, str(exc))


def _same_secret(given: str, configured: str) -> bool:
    """Constant-time, on UTF-8 bytes: ``hmac.compare_digest`` raises on a str that is not ASCII."""
    return hmac.compare_digest(given.encode("utf-8", "surrogatepass"), configured.encode("utf-8", "surrogatepass"))


def _token_form(request: web.BaseRequest, raw: bytes) -> dict[str, str]:
    """The token request's fields: a form body (RFC 6749) or JSON; anything else has none."""
    text = raw.decode("utf-8", errors="replace")
    if _is_json(request):
        try:
            document = json.loads(text)
        except ValueError:
            return {}
        return {k: v for k, v in document.items() if isinstance(v, str)} if isinstance(document, dict) else {}
    return {name: values[0] for name, values in parse_qs(text).items()}


async def start_listening(
    state: EmulatorState, host: str = "127.0.0.1", port: int = 0, *, access_log: bool = False
) -> tuple[web.ServerRunner, int]:
    """Serve ``state`` on ``host:port`` (0: a free port) on the running loop; returns the runner and port."""
    server = web.Server(
        EmulatorHandler(state),
        access_log=access_logger if access_log else None,
        access_log_format=ACCESS_LOG_FORMAT,
    )
    runner = web.ServerRunner(server, shutdown_timeout=2.0)
    await runner.setup()
    site = web.TCPSite(runner, host, port, backlog=1024)
    await site.start()
    return runner, int(runner.addresses[0][1])


@dataclass(frozen=True)
class CallCount:
    """Calls one route received for one resource: all of them, and by outcome (``"200"``, ``"dropped"``)."""

    total: int
    by_status: dict[str, int]


class EmulatorServer:
    """The emulator on its own thread and event loop, for tests and the demo in one process.

    ``EmulatorServer(tokens={"icfg_1": "token"}, rate_limit="3/2", faults=FaultSettings(...), seed=7)``;
    ``with`` it (or ``start()``/``stop()``) and point a client at ``.url``. The helpers read and
    change the live state on the server's loop, so they are safe while requests are in flight.
    """

    def __init__(
        self,
        tokens: Mapping[str, str | Iterable[str]] | None = None,
        *,
        rate_limit: RateLimit | str | None = None,
        secrets_rate_limit: RateLimit | str | None = None,
        delete_rate_limit: RateLimit | str | None = None,
        faults: FaultSettings | None = None,
        seed: int | None = None,
        client_secret: str | None = None,
        client_id: str | None = None,
        token_lifetime_seconds: int | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        access_log: bool = False,
    ) -> None:
        if isinstance(rate_limit, str):
            rate_limit = RateLimit.parse(rate_limit)
        if isinstance(secrets_rate_limit, str):
            secrets_rate_limit = RateLimit.parse(secrets_rate_limit)
        if isinstance(delete_rate_limit, str):
            delete_rate_limit = RateLimit.parse(delete_rate_limit)
        if seed is not None:
            faults = replace(faults or FaultSettings(), seed=seed)
        self.state = EmulatorState(
            tokens,
            rate_limit=rate_limit,
            secrets_rate_limit=secrets_rate_limit,
            delete_rate_limit=delete_rate_limit,
            faults=faults,
            client_secret=client_secret,
            client_id=client_id,
        )
        if token_lifetime_seconds is not None:
            self.state.token_lifetime_seconds = token_lifetime_seconds
        self._host = host
        self._port = port
        self._access_log = access_log
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.ServerRunner | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        if self._loop is None:
            raise RuntimeError("the emulator is not started")
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self._port}"

    def start(self) -> Self:
        if self._loop is not None:
            raise RuntimeError("the emulator is already started")
        started: concurrent.futures.Future[None] = concurrent.futures.Future()
        loop = asyncio.new_event_loop()

        def serve() -> None:
            asyncio.set_event_loop(loop)
            try:
                self._runner, self._port = loop.run_until_complete(
                    start_listening(self.state, self._host, self._port, access_log=self._access_log)
                )
            except BaseException as exc:  # noqa: BLE001 - handed to the starting thread, which raises it
                started.set_exception(exc)
                loop.close()
                return
            started.set_result(None)
            loop.run_forever()
            loop.run_until_complete(self._runner.cleanup())
            loop.close()

        self._thread = threading.Thread(target=serve, name="vercel-emulator", daemon=True)
        self._thread.start()
        started.result(timeout=10)
        self._loop = loop
        return self

    def stop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        self._loop = self._thread = self._runner = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()

    def _on_loop[T](self, action: Callable[[], T]) -> T:
        """Run ``action`` on the server's loop (directly when not started) and return its result."""
        loop = self._loop
        if loop is None:
            return action()
        result: concurrent.futures.Future[T] = concurrent.futures.Future()

        def run() -> None:
            try:
                result.set_result(action())
            except Exception as exc:  # noqa: BLE001 - handed to the calling thread, which raises it
                result.set_exception(exc)

        loop.call_soon_threadsafe(run)
        return result.result(timeout=10)

    # -- helpers for tests and the demo ---------------------------------------------------------

    def call_count(
        self, installation_id: str, resource_id: str | None, method: str = "PUT", route: str | None = None
    ) -> CallCount:
        """Calls received for one resource on one route (default: the import/read route; with
        ``resource_id=None`` the list route). ``route="secrets"``: its secrets updates."""
        total, by_status = self._on_loop(lambda: self.state.calls.count(method, installation_id, resource_id, route))
        return CallCount(total, by_status)

    def secrets_call_count(self, installation_id: str, resource_id: str) -> CallCount:
        """Update Resource Secrets calls received for one resource."""
        return self.call_count(installation_id, resource_id, "PUT", "secrets")

    def calls(self) -> dict[str, Any]:
        """All counts, as ``GET /_emulator/calls`` answers them."""
        return self._on_loop(self.state.calls.to_json)

    def held_resource(self, installation_id: str, resource_id: str) -> dict[str, Any] | None:
        """The resource as ``GET .../resources/{resourceId}`` reports it (secret names only), or ``None``."""

        def read() -> dict[str, Any] | None:
            stored = self.state.resource(installation_id, resource_id)
            return None if stored is None else copy.deepcopy(vercel_view(resource_id, stored))

        return self._on_loop(read)

    def imported_body(self, installation_id: str, resource_id: str) -> dict[str, Any] | None:
        """The full last-imported body, secret values included (test-only), or ``None``."""

        def read() -> dict[str, Any] | None:
            stored = self.state.resource(installation_id, resource_id)
            return None if stored is None else copy.deepcopy(stored.body)

        return self._on_loop(read)

    def set_token(self, installation_id: str, token: str, *, keep_previous: bool = False) -> None:
        """Add an installation or rotate its token (``keep_previous=True`` keeps the old one valid)."""
        self._on_loop(lambda: self.state.tokens.set_token(installation_id, token, keep_previous=keep_previous))

    def set_faults(self, faults: FaultSettings) -> None:
        def apply() -> None:
            self.state.faults = faults

        self._on_loop(apply)

    def set_rate_limit(self, rate_limit: RateLimit | str) -> None:
        limit = RateLimit.parse(rate_limit) if isinstance(rate_limit, str) else rate_limit
        self._on_loop(lambda: self.state.set_rate_limit(limit))

    def set_secrets_rate_limit(self, rate_limit: RateLimit | str) -> None:
        limit = RateLimit.parse(rate_limit) if isinstance(rate_limit, str) else rate_limit
        self._on_loop(lambda: self.state.set_secrets_rate_limit(limit))

    def set_delete_rate_limit(self, rate_limit: RateLimit | str) -> None:
        limit = RateLimit.parse(rate_limit) if isinstance(rate_limit, str) else rate_limit
        self._on_loop(lambda: self.state.set_delete_rate_limit(limit))

    def set_client_credentials(self, client_id: str | None, client_secret: str | None) -> None:
        """The integration's client id and secret the token and credentials routes require (None: any)."""

        def apply() -> None:
            self.state.client_id, self.state.client_secret = client_id, client_secret

        self._on_loop(apply)

    def set_token_lifetime(self, seconds: int, *, announced: int | None = None) -> None:
        """The life of the tokens issued from now on (the token endpoint's and credentials/rotate's);
        ``announced``: the token endpoint's ``expires_in`` if not the truth."""

        def apply() -> None:
            self.state.token_lifetime_seconds = seconds
            self.state.announced_expires_in = announced

        self._on_loop(apply)

    def token_requests(self, installation_id: str) -> CallCount:
        """The token endpoint's requests for the installation, and their outcomes."""
        total, by_status = self._on_loop(lambda: self.state.calls.count("POST", installation_id, None, ROUTE_TOKEN))
        return CallCount(total, by_status)

    def accepted_tokens(self, installation_id: str) -> int:
        """How many tokens the installation accepts now (2 between a rotate and its revoke)."""
        return self._on_loop(lambda: self.state.tokens.accepted(installation_id))

    def reset(self) -> None:
        """Forget resources, counts and rate windows, and restart the fault sequence."""
        self._on_loop(self.state.reset)
