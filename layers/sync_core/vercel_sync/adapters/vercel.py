"""The Vercel Marketplace API client, on httpx.

One pooled ``httpx.Client`` per container (built with the sync service and reused by every
invocation), explicit timeouts, ids percent-encoded as single path segments, the headers the
official SDK sends, and a ``User-Agent`` naming the product. The client does not retry: it
classifies each outcome into the errors the pipeline routes (``errors.py``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from vercel_sync import PRODUCT_NAME, __version__
from vercel_sync.errors import PermanentSyncError, TransientSyncError, is_transient_http_status
from vercel_sync.paths import MAX_ID_LENGTH, encode_path_segment
from vercel_sync.redaction import truncate

USER_AGENT = f"{PRODUCT_NAME}/{__version__} httpx/{httpx.__version__}"
# Vercel's error bodies are small; anything larger is cut before we keep it.
MAX_ERROR_BODY_BYTES = 16 * 1024


class VercelUnauthorizedError(TransientSyncError):
    """401: the token was refused. The pipeline re-reads it once; after that the record is retried."""


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
        self._http = httpx.Client(
            timeout=httpx.Timeout(timeout_seconds),
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
            headers={
                "User-Agent": USER_AGENT,
                "Accept": "application/json",
                "Content-Type": "application/json",
            },
            transport=transport,
            follow_redirects=False,
        )

    def resource_url(self, integration_configuration_id: str, resource_id: str) -> str:
        for what, value in (("integrationConfigurationId", integration_configuration_id), ("resourceId", resource_id)):
            if not value or len(value) > MAX_ID_LENGTH:
                raise PermanentSyncError(f"{what} must be 1 to {MAX_ID_LENGTH} characters", reason="invalid_record")
        return (
            f"{self._base_url}/v1/installations/{encode_path_segment(integration_configuration_id)}"
            f"/resources/{encode_path_segment(resource_id)}"
        )

    def import_resource(
        self,
        integration_configuration_id: str,
        resource_id: str,
        body: Mapping[str, Any],
        *,
        token: str,
    ) -> dict[str, Any]:
        """PUT the import; returns Vercel's JSON answer or raises a classified error."""
        url = self.resource_url(integration_configuration_id, resource_id)
        content = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        try:
            response = self._http.put(url, content=content, headers={"Authorization": f"Bearer {token}"})
        except httpx.TimeoutException as exc:
            raise TransientSyncError(f"Vercel did not answer in time ({type(exc).__name__})") from None
        except httpx.TransportError as exc:
            raise TransientSyncError(f"could not reach Vercel ({type(exc).__name__})") from None
        return self._result(response)

    def _result(self, response: httpx.Response) -> dict[str, Any]:
        status = response.status_code
        if 200 <= status < 300:
            try:
                answer = response.json()
            except ValueError:
                return {}
            return answer if isinstance(answer, dict) else {}
        error_body = truncate(response.content[:MAX_ERROR_BODY_BYTES].decode("utf-8", errors="replace"))
        if status == 401:
            raise VercelUnauthorizedError("Vercel refused the installation token (401)", http_status=401)
        if is_transient_http_status(status):
            raise TransientSyncError(
                f"Vercel answered {status}",
                http_status=status,
                retry_after_seconds=retry_after_seconds(response.headers),
            )
        raise PermanentSyncError(
            f"Vercel rejected the import ({status}){_error_summary(error_body)}",
            reason="vercel_rejected",
            http_status=status,
            vercel_error=error_body,
        )

    def close(self) -> None:
        self._http.close()


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
    milliseconds = headers.get("retry-after-ms")
    if milliseconds is not None:
        try:
            return max(0.0, float(milliseconds) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - (now or datetime.now(UTC))).total_seconds())
