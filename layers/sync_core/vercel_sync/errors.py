"""The failure vocabulary: permanent (the record goes to the failed-records queue) or transient (back to
its source). Messages hold ids, statuses and field names only, never a token or secret value."""

from __future__ import annotations

TRANSIENT_HTTP_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
# Statuses that refuse the installation, not the one resource: the rest of its batch is not sent.
INSTALLATION_HTTP_STATUSES = frozenset({403, 404, 410})


class SyncError(Exception):
    """Base of every failure the pipeline knows how to route."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class PermanentSyncError(SyncError):
    """The record cannot succeed as it is; retrying would only repeat the failure."""

    reason: str = "permanent_failure"

    def __init__(
        self,
        message: str,
        *,
        reason: str | None = None,
        http_status: int | None = None,
        vercel_error: str | None = None,
        vercel_error_complete: bool = True,
    ) -> None:
        super().__init__(message)
        if reason is not None:
            self.reason = reason
        self.http_status = http_status
        self.vercel_error = vercel_error
        self.vercel_error_complete = vercel_error_complete  # False: cut where it was read (a secret may be cut)


class RetriesExhaustedError(PermanentSyncError):
    """A transient failure that outlasted what its source keeps: parked with the whole record."""

    reason = "retries_exhausted"

    @classmethod
    def in_stream(cls, error: TransientSyncError, age_seconds: float) -> RetriesExhaustedError:
        return cls(
            f"still failing after {age_seconds / 3600:.1f} h in the stream, which keeps records 24 h: {error.message}",
            http_status=error.http_status,
        )


class InstallationUnavailableError(PermanentSyncError):
    """Vercel refused the installation itself (403, 404, 410): no call for it can succeed now."""

    reason = "installation_unavailable"


class InvalidRecordError(PermanentSyncError):
    """The partner record does not make a valid Import Resource payload."""

    reason = "invalid_record"


class TransientSyncError(SyncError):
    """Worth another try later: the record goes back to its event source."""

    def __init__(
        self,
        message: str,
        *,
        http_status: int | None = None,
        retry_after_seconds: float | None = None,
        rate_limited: bool = False,
    ) -> None:
        super().__init__(message)
        self.http_status = http_status
        self.retry_after_seconds = retry_after_seconds  # what Vercel asked (Retry-After, retry-after-ms)
        # Sent back only for want of a call under the rate limit (ours, or Vercel's pause): nothing failed.
        self.rate_limited = rate_limited


class ConfigurationError(Exception):
    """The function's environment is wrong; raised at the first invocation, nothing is lost."""


def is_transient_http_status(status: int) -> bool:
    """True for statuses a later try may fix (429, 5xx, 408, 425)."""
    return status in TRANSIENT_HTTP_STATUSES or status >= 500
