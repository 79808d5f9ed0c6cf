"""Every protocol the services are handed (adapters and observers), and the observer of nothing."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

if TYPE_CHECKING:
    from vercel_sync.changes import SourceChange
    from vercel_sync.deadline import TimeBudget
    from vercel_sync.errors import PermanentSyncError, TransientSyncError
    from vercel_sync.rotation.events import RotationResult, RotationTarget, SecretChange
    from vercel_sync.sync_state import Claim, ImportedState, VersionKey

Skip = Literal["unchanged", "stale", "coalesced", "not_a_resource"]


class VercelApi(Protocol):
    def import_resource(
        self, integration_configuration_id: str, resource_id: str, body: Mapping[str, Any], *, token: str
    ) -> dict[str, Any]: ...
    def delete_resource(self, integration_configuration_id: str, resource_id: str, *, token: str) -> None: ...


class SecretsApi(Protocol):
    def update_resource_secrets(
        self, integration_configuration_id: str, resource_id: str, body: Mapping[str, Any], *, token: str
    ) -> dict[str, Any]: ...


class SecretStore(Protocol):
    """``check_owner`` raises unless the secret belongs to the installation; it reads no value."""

    def installation_token(self, integration_configuration_id: str, *, force_fetch: bool = False) -> str: ...
    def check_owner(self, secret_id: str, installation_id: str) -> None: ...
    def resource_secrets(self, secret_id: str, *, installation_id: str, force_fetch: bool = False) -> Any: ...


@runtime_checkable
class StableDigestKeys(Protocol):
    """A SecretStore whose tokens change too often to key change suppression's digests (short-lived
    tokens: hourly, and per container) gives a secret key per installation that does not."""

    def digest_key(self, integration_configuration_id: str) -> str: ...


class FailedRecordSink(Protocol):
    def park(self, message: dict[str, Any]) -> None: ...


class RateLimiter(Protocol):
    """Calls per installation, shared by every invocation (``adapters/bucket_table.py``)."""

    def acquire(self, installation_id: str, *, max_wait_seconds: float) -> bool: ...
    def pause(self, installation_id: str, seconds: float) -> None: ...


class SourceQueue(Protocol):
    """The queue function's source: makes messages visible again after their seconds, or sends them
    again as new messages (a standard queue's; ``(body, Lambda's messageAttributes, delay seconds)``)."""

    def defer(self, queue_arn: str, messages: Sequence[tuple[str, float]]) -> int: ...
    def resend(self, queue_arn: str, messages: Sequence[tuple[str, Mapping[str, Any], float]]) -> set[int]: ...


class StateStore(Protocol):
    """The sync-state table: ``record`` never moves a version backwards; ``release`` records nothing."""

    def claim(
        self,
        installation_id: str,
        resource_id: str,
        version: VersionKey | None,
        *,
        lease_seconds: float,
        repair: bool = False,  # the version applied may be sent again (never an older one)
    ) -> Claim: ...
    def record(self, claim_id: str | None, state: ImportedState) -> None: ...
    def release(self, installation_id: str, resource_id: str, claim_id: str) -> None: ...


class SecretIndex(Protocol):
    """Every resource whose last imported payload used the secret of that name."""

    def resources_using(self, secret_name: str) -> list[RotationTarget]: ...


class CallObserver[S](Protocol):
    """What a Vercel call reports about its subject (a change, a target); no retry: ``retry_in_seconds`` None."""

    def call_failed(self, subject: S, error: TransientSyncError, *, retry_in_seconds: float | None) -> None: ...
    def token_refreshed(self, integration_configuration_id: str) -> None: ...


class SyncObserver(CallObserver["SourceChange"], Protocol):
    """Where the sync reports what happened; called from the batch's worker threads (thread-safe)."""

    def imported(self, change: SourceChange, *, latency_ms: float, calls: int) -> None: ...
    def skipped(self, change: SourceChange, why: Skip) -> None: ...
    def parked(self, change: SourceChange, error: PermanentSyncError) -> None: ...
    def retrying(self, change: SourceChange, error: TransientSyncError) -> None: ...  # back to its source
    def unexpected(self, change: SourceChange, error: Exception) -> None: ...
    def batch_finished(self, records: int) -> None: ...
    def function_timeout_too_short(self, *, function_timeout_ms: int, budget: TimeBudget) -> None: ...


class RotationObserver(CallObserver["RotationTarget"], Protocol):
    def ignored(self, why: str, change: SecretChange | None) -> None: ...
    def pushed(self, change: SecretChange, target: RotationTarget, *, calls: int, latency_ms: float) -> None: ...
    def parked(self, change: SecretChange | None, target: RotationTarget | None, error: PermanentSyncError) -> None: ...
    def finished(self, change: SecretChange, result: RotationResult) -> None: ...
    def function_timeout_too_short(self, *, function_timeout_ms: int, budget: TimeBudget) -> None: ...


class NullObserver:
    """Observes nothing (tests, tools): stands in for the sync's observer and rotation's."""

    def _nothing(self, *_args: Any, **_kwargs: Any) -> None:
        pass

    imported = skipped = call_failed = parked = retrying = token_refreshed = unexpected = _nothing
    batch_finished = function_timeout_too_short = ignored = pushed = finished = _nothing
