"""Short-lived installation tokens (``TOKEN_MODE=short-lived``, docs/configuration.md): each installation's token
is requested with the OAuth ``client_credentials`` grant and the integration's client id and secret, kept in the
container until shortly before it expires, and requested again when Vercel refuses it (``calls.py``'s 401 path,
through ``force_fetch``). One request per installation at a time: concurrent callers wait for it and share it."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx

from vercel_sync.adapters.http_deadline import install_call_deadline, send_within
from vercel_sync.adapters.secrets import SecretsManagerReader, header_safe
from vercel_sync.adapters.vercel import MAX_ERROR_BODY_BYTES, USER_AGENT, environment_proxy, http_timeout
from vercel_sync.adapters.vercel import retry_after_seconds as retry_after
from vercel_sync.deadline import seconds_left
from vercel_sync.errors import PermanentSyncError, TransientSyncError, is_transient_http_status

# Vercel's short-lived tokens live one hour; an answer without expires_in is taken as one.
DEFAULT_EXPIRES_IN_SECONDS = 3600.0
REASON = "token_unavailable"


class CredentialsRefusedError(PermanentSyncError):
    """The token endpoint refused the client id and secret (400, 401, 403)."""


class TokenEndpoint:
    """POSTs the ``client_credentials`` grant (RFC 6749, 4.4: a form body) for one installation; answers
    ``(access_token, expires_in)``. No message quotes the answer's body: it could echo the client secret."""

    def __init__(
        self,
        url: str,
        *,
        installation_field: str = "installation_id",
        timeout_seconds: float = 10.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._url = url
        self._installation_field = installation_field
        self._timeout_seconds = timeout_seconds
        self._http = transport or httpx.HTTPTransport(verify=True, retries=0, proxy=environment_proxy(url))
        if isinstance(self._http, httpx.HTTPTransport):
            install_call_deadline(self._http)

    def request(self, installation_id: str, client_id: str, client_secret: str) -> tuple[str, float]:
        form = {
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_secret": client_secret,
            self._installation_field: installation_id,
        }
        seconds = self._timeout_seconds
        if (left := seconds_left()) is not None:
            seconds = min(seconds, max(left, 0.0))
        headers = [
            ("User-Agent", USER_AGENT),
            ("Accept", "application/json"),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ]
        request = httpx.Request(
            "POST",
            self._url,
            content=urlencode(form).encode("ascii"),
            headers=headers,
            extensions={"timeout": http_timeout(max(seconds, 0.001)).as_dict()},
        )
        response, content, _ = send_within(
            self._http, request, seconds, max_bytes=MAX_ERROR_BODY_BYTES, peer="the token endpoint"
        )
        return _token_from_answer(response, content)

    def close(self) -> None:
        self._http.close()


def _token_from_answer(response: httpx.Response, content: bytes) -> tuple[str, float]:
    status = response.status_code
    if 300 <= status < 400 or status < 200:
        raise TransientSyncError(f"the token endpoint answered {status}; check VERCEL_TOKEN_URL", http_status=status)
    if is_transient_http_status(status):
        raise TransientSyncError(
            f"the token endpoint answered {status}",
            http_status=status,
            retry_after_seconds=retry_after(response.headers),
        )
    if status >= 400:
        # 400 invalid_grant, 401 invalid_client, 403: the credentials or the installation are wrong.
        raise CredentialsRefusedError(
            f"the token endpoint refused the integration's credentials ({status})", reason=REASON
        )
    try:
        answer: Any = json.loads(content)
    except (ValueError, RecursionError):
        answer = None
    token = answer.get("access_token") if isinstance(answer, dict) else None
    if not isinstance(token, str) or not token or not header_safe(token):
        raise TransientSyncError("the token endpoint answered without a usable access_token")
    expires_in = answer.get("expires_in", DEFAULT_EXPIRES_IN_SECONDS)
    if isinstance(expires_in, bool) or not isinstance(expires_in, int | float) or not 0 < expires_in < 10**7:
        expires_in = DEFAULT_EXPIRES_IN_SECONDS
    return token, float(expires_in)


@dataclass(frozen=True, slots=True)
class _Held:
    token: str
    refresh_at: float  # monotonic: request another from then on


class ShortLivedTokens:
    """The SecretStore of a short-lived deployment: installation tokens from the token endpoint, resource
    secrets (and the integration's credentials) from Secrets Manager through ``reader``."""

    def __init__(
        self,
        reader: SecretsManagerReader,
        endpoint: TokenEndpoint,
        *,
        margin_seconds: float = 60.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._reader = reader
        self._endpoint = endpoint
        self._margin_seconds = margin_seconds
        self._monotonic = monotonic
        self._held: dict[str, _Held] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()

    def installation_token(self, integration_configuration_id: str, *, force_fetch: bool = False) -> str:
        """The installation's token; ``force_fetch`` (after a 401) asks for a new one, unless one arrived
        since this call began (another thread's refresh: one request for all of them)."""
        seen = self._held.get(integration_configuration_id)
        if seen is not None and not force_fetch and seen.refresh_at > self._monotonic():
            return seen.token
        with self._lock_for(integration_configuration_id):
            held = self._held.get(integration_configuration_id)
            started = self._monotonic()
            # Another holding than the one seen on entry is a refresh since: by identity, not by time,
            # which a coarse clock could tie with the refused token's fetch.
            if held is not None and held.refresh_at > started and (not force_fetch or held is not seen):
                return held.token
            token, expires_in = self._request(integration_configuration_id)
            # Counted from before the request: the token may have been issued at its start.
            margin = min(self._margin_seconds, expires_in / 2)
            self._held[integration_configuration_id] = _Held(token, started + expires_in - margin)
            return token

    def _request(self, installation_id: str) -> tuple[str, float]:
        credentials = self._reader.integration_credentials()
        try:
            return self._endpoint.request(installation_id, *credentials)
        except CredentialsRefusedError:
            # The client secret may have been rotated since this container cached it: read it once past
            # the cache, and ask again only if it changed (else the refusal stands).
            fresh = self._reader.integration_credentials(force_fetch=True)
            if fresh == credentials:
                raise
            return self._endpoint.request(installation_id, *fresh)

    def digest_key(self, integration_configuration_id: str) -> str:
        """Change suppression's key for the installation: from the client secret, which every container
        shares and which outlives the tokens (keyed by a token, every renewal would re-import all)."""
        _, client_secret = self._reader.integration_credentials()
        message = ("payload-digest/" + integration_configuration_id).encode("utf-8", "surrogatepass")
        return hmac.new(client_secret.encode("utf-8"), message, hashlib.sha256).hexdigest()

    def check_owner(self, secret_id: str, installation_id: str) -> None:
        self._reader.check_owner(secret_id, installation_id)

    def resource_secrets(self, secret_id: str, *, installation_id: str, force_fetch: bool = False) -> Any:
        return self._reader.resource_secrets(secret_id, installation_id=installation_id, force_fetch=force_fetch)

    def _lock_for(self, installation_id: str) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(installation_id, threading.Lock())
