"""The Vercel Marketplace API client on httpx's pooled transport: a hard deadline per call, TLS always verified,
no cookie jar, ids as single path segments, bodies size-capped. No retries: each outcome becomes an error of
``errors.py``."""

from __future__ import annotations

import json
import math
import time
import urllib.request
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from vercel_sync import PRODUCT_NAME, __version__
from vercel_sync.adapters.http_deadline import install_call_deadline, send_within
from vercel_sync.deadline import seconds_left
from vercel_sync.errors import PermanentSyncError, TransientSyncError, is_transient_http_status
from vercel_sync.paths import MAX_ID_LENGTH, encode_path_segment

USER_AGENT = f"{PRODUCT_NAME}/{__version__} httpx/{httpx.__version__}"
# Every answer is read up to this size (Vercel's are small).
MAX_ERROR_BODY_BYTES = 16 * 1024
# A resources list is read up to this size (a few KB per resource); a longer one is an error, not a partial list.
MAX_LIST_BODY_BYTES = 32 * 1024 * 1024
# A DynamoDB item is at most 400 KB: a larger body is an invalid record.
MAX_REQUEST_BODY_BYTES = 1024 * 1024
# Within a call's timeout, connecting, waiting for a pooled connection and sending get at most this each.
SHORT_PHASE_TIMEOUT_SECONDS = 2.0
# A call with less time than this is not started: the record goes back to its source instead.
SHORTEST_CALL_SECONDS = 1.0
MAX_RETRY_AFTER_SECONDS = 3600.0
# A 429 body's reset above this is epoch milliseconds: in seconds it would be after the year 5000.
LARGEST_RESET_IN_SECONDS = 10**11


def http_timeout(timeout_seconds: float) -> httpx.Timeout:
    short = min(timeout_seconds, SHORT_PHASE_TIMEOUT_SECONDS)
    return httpx.Timeout(timeout_seconds, connect=short, write=short, pool=short)


class VercelUnauthorizedError(TransientSyncError):
    """401: the token was refused. The sync re-reads it once; after that the record is retried."""


class VercelClient:
    def __init__(
        self,
        base_url: str,
        *,
        timeout_seconds: float = 10.0,
        max_connections: int = 32,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self._timeout_seconds = timeout_seconds
        # httpx's pooled transport, called directly: httpx.Client's layer (URL merging, a shared cookie
        # jar, auth and redirect flows) is nothing a bearer-token call needs, and costs CPU per call.
        self._http = transport or _transport(max_connections, self._base_url)
        if isinstance(self._http, httpx.HTTPTransport):
            install_call_deadline(self._http)
        self._timeout = http_timeout(timeout_seconds).as_dict()
        self._headers = (  # Content-Type last: a call without a body leaves it out
            ("User-Agent", USER_AGENT),
            ("Accept", "application/json"),
            ("Content-Type", "application/json"),
        )

    def resource_url(self, integration_configuration_id: str, resource_id: str) -> str:
        segments = []
        for what, value in (("integrationConfigurationId", integration_configuration_id), ("resourceId", resource_id)):
            try:
                segments.append(encode_path_segment(value))
            except ValueError:
                raise PermanentSyncError(
                    f"{what} must be 1 to {MAX_ID_LENGTH} characters and not '.' or '..'", reason="invalid_record"
                ) from None
        installation, resource = segments
        return f"{self._base_url}/v1/installations/{installation}/resources/{resource}"

    def secrets_url(self, integration_configuration_id: str, resource_id: str) -> str:
        return self.resource_url(integration_configuration_id, resource_id) + "/secrets"

    def import_resource(
        self, integration_configuration_id: str, resource_id: str, body: Mapping[str, Any], *, token: str
    ) -> dict[str, Any]:
        """PUT the import; returns Vercel's JSON answer or raises a classified error."""
        return self._put(self.resource_url(integration_configuration_id, resource_id), body, token=token, what="import")

    def update_resource_secrets(
        self, integration_configuration_id: str, resource_id: str, body: Mapping[str, Any], *, token: str
    ) -> dict[str, Any]:
        """PUT ``{secrets, partial?}`` to the resource's secrets (Vercel answers 201), as an import."""
        url = self.secrets_url(integration_configuration_id, resource_id)
        return self._put(url, body, token=token, what="secrets update")

    def delete_resource(self, integration_configuration_id: str, resource_id: str, *, token: str) -> None:
        """DELETE the resource (Vercel answers 204); a 404 is success: it is gone already."""
        url = self.resource_url(integration_configuration_id, resource_id)
        try:
            self._send("DELETE", url, None, token=token, what="deletion")
        except PermanentSyncError as error:
            if error.http_status != 404:
                raise

    def list_resources(self, integration_configuration_id: str, *, token: str) -> list[dict[str, Any]]:
        """GET the installation's resources as Vercel reports them (``{"resources": [...]}``; not paginated)."""
        # A resource's URL without its last segment: the installation's id checked and encoded the same way.
        url = self.resource_url(integration_configuration_id, "-").rpartition("/")[0]
        answer = self._send("GET", url, None, token=token, what="resources list", max_bytes=MAX_LIST_BODY_BYTES)
        resources = answer.get("resources")
        if not isinstance(resources, list):
            raise TransientSyncError("Vercel's resources list was not {resources: [...]} (or too long to read)")
        return [resource for resource in resources if isinstance(resource, dict)]

    def _put(self, url: str, body: Mapping[str, Any], *, token: str, what: str) -> dict[str, Any]:
        content = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        if len(content) > MAX_REQUEST_BODY_BYTES:
            raise PermanentSyncError(
                f"the {what} body is {len(content)} bytes, over the {MAX_REQUEST_BODY_BYTES}-byte limit",
                reason="invalid_record",
            )
        return self._send("PUT", url, content, token=token, what=what)

    def _send(
        self,
        method: str,
        url: str,
        content: bytes | None,
        *,
        token: str,
        what: str,
        max_bytes: int = MAX_ERROR_BODY_BYTES,
    ) -> dict[str, Any]:
        seconds, timeout = self._timeout_seconds, self._timeout
        left = seconds_left()
        if left is not None and left < seconds:
            if left < min(SHORTEST_CALL_SECONDS, seconds):
                raise TransientSyncError(f"no time left for a call to Vercel ({max(0.0, left):.1f} s)")
            seconds, timeout = left, http_timeout(left).as_dict()
        headers = [
            *(self._headers if content is not None else self._headers[:2]),
            ("Authorization", f"Bearer {token}"),
        ]
        request = httpx.Request(method, url, content=content, headers=headers, extensions={"timeout": timeout})
        response, answer, complete = send_within(self._http, request, seconds, max_bytes=max_bytes, peer="Vercel")
        return self._result(response, answer, complete=complete, what=what)

    def _result(self, response: httpx.Response, content: bytes, *, complete: bool, what: str) -> dict[str, Any]:
        status = response.status_code
        if 200 <= status < 300:
            try:
                answer = json.loads(content)
            except ValueError:
                return {}
            return answer if isinstance(answer, dict) else {}
        error_body = content.decode("utf-8", errors="replace")
        if status < 400:
            # 1xx/3xx: usually a wrong VERCEL_API_URL (redirects are not followed: they would carry the token).
            raise TransientSyncError(
                f"Vercel answered {status} instead of a result; check VERCEL_API_URL", http_status=status
            )
        if status == 401:
            raise VercelUnauthorizedError("Vercel refused the installation token (401)", http_status=401)
        if is_transient_http_status(status):
            retry_after = retry_after_seconds(response.headers)
            if retry_after is None and status == 429 and complete:
                retry_after = limit_reset_seconds(content)
            raise TransientSyncError(f"Vercel answered {status}", http_status=status, retry_after_seconds=retry_after)
        raise PermanentSyncError(
            f"Vercel rejected the {what} ({status}){_error_summary(error_body)}",
            reason="vercel_rejected",
            http_status=status,
            vercel_error=error_body,
            vercel_error_complete=complete,
        )

    def close(self) -> None:
        self._http.close()


def environment_proxy(url: str) -> str | None:
    """The proxy the environment names for ``url``, as ``httpx.Client`` would take it (docs/configuration.md)."""
    proxies = urllib.request.getproxies_environment()
    target = httpx.URL(url)
    port = target.port or (443 if target.scheme == "https" else 80)
    if not proxies or urllib.request.proxy_bypass(f"{target.host}:{port}"):
        return None
    proxy = proxies.get(target.scheme) or proxies.get("all")
    if proxy and "://" not in proxy:
        proxy = "http://" + proxy
    return proxy or None


def _transport(max_connections: int, base_url: str) -> httpx.HTTPTransport:
    try:
        proxy = environment_proxy(base_url)
        return httpx.HTTPTransport(
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
            verify=True,  # whatever the environment says: no setting turns it off (the tests check)
            retries=0,
            proxy=proxy,
        )
    except ValueError:
        # Not quoted: a proxy URL may hold a user name and password.
        raise ValueError("the proxy named by HTTPS_PROXY, HTTP_PROXY or ALL_PROXY is not a valid URL") from None


def _error_summary(error_body: str) -> str:
    """Vercel's ``error.code`` when the body has one, for a readable reason."""
    try:
        document = json.loads(error_body)
    except ValueError:
        return ""
    error = document.get("error") if isinstance(document, dict) else None
    code = error.get("code") if isinstance(error, dict) else None
    return f": {code}" if isinstance(code, str) and len(code) <= 80 else ""


def retry_after_seconds(headers: Mapping[str, str], *, now: datetime | None = None) -> float | None:
    """``retry-after-ms`` (milliseconds) or ``Retry-After`` (seconds or an HTTP date), as seconds."""
    for name, per_second in (("retry-after-ms", 1000), ("retry-after", 1)):
        if (text := headers.get(name)) is not None:
            try:
                return _bounded(float(text) / per_second)
            except ValueError:
                pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return _bounded((moment - (now or datetime.now(UTC))).total_seconds())


def limit_reset_seconds(body: bytes, *, now: float | None = None) -> float | None:
    """The wait a 429 body's ``error.limit.reset`` (epoch seconds; one in milliseconds is read as such) asks for,
    bounded as ``Retry-After`` is; ``None`` (the backoff decides) when the body is not JSON, the reset is no
    number or already past."""
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        return None
    error = document.get("error") if isinstance(document, dict) else None
    limit = error.get("limit") if isinstance(error, dict) else None
    reset = limit.get("reset") if isinstance(limit, dict) else None
    if isinstance(reset, bool) or not isinstance(reset, int | float):
        return None
    try:
        reset_seconds = float(reset) / 1000 if reset > LARGEST_RESET_IN_SECONDS else float(reset)
        seconds = reset_seconds - (time.time() if now is None else now)
    except OverflowError:  # an integer too large for a float
        return None
    return _bounded(seconds) if seconds > 0 else None


def _bounded(seconds: float) -> float | None:
    """A usable wait: not negative, at most ``MAX_RETRY_AFTER_SECONDS``; ``nan`` and infinities are ignored."""
    if not math.isfinite(seconds):
        return None
    return min(max(0.0, seconds), MAX_RETRY_AFTER_SECONDS)
