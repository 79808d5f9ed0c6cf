"""Rotation sync's service: one event's resources each get the secret's new values (docs/architecture.md). Pure."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from typing import Any

from vercel_sync.calls import Calls, Clock, RetryPolicy, Tries
from vercel_sync.deadline import Deadline, TimeBudget, check_function_timeout
from vercel_sync.errors import InvalidRecordError, PermanentSyncError, TransientSyncError
from vercel_sync.ports import (
    FailedRecordSink,
    NullObserver,
    RateLimiter,
    RotationObserver,
    SecretIndex,
    SecretsApi,
    SecretStore,
)
from vercel_sync.rotation.events import (
    InvalidEventError,
    RotationIncompleteError,
    RotationResult,
    RotationTarget,
    SecretChange,
    build_rotation_failure_message,
    parse_secret_change,
)
from vercel_sync.settings import Settings, secret_names_of
from vercel_sync.sync.failures import scrubbed, send_to_failed_records
from vercel_sync.transform import build_secrets_update

MAX_RATE_LIMIT_WAIT_SECONDS = 10.0


@dataclass(frozen=True)
class RotationAdapters:
    """What rotation is handed; without the sync-state table's index (``index`` None) nothing is found."""

    index: SecretIndex | None
    secrets: SecretStore
    vercel: SecretsApi
    failed_records: FailedRecordSink | None
    rate_limiter: RateLimiter | None = None
    observer: RotationObserver = field(default_factory=NullObserver)


class RotationService:
    def __init__(
        self,
        settings: Settings,
        adapters: RotationAdapters,
        *,
        retry: RetryPolicy | None = None,
        time_budget: TimeBudget | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.settings = settings
        self.adapters = adapters
        self.retry = retry or RetryPolicy(max_calls=5, base_delay_seconds=0.5)
        self.time_budget = time_budget
        self.clock = clock or Clock()
        self._timeout_checked = False  # at the first event, whose time left is the function's timeout

    def handle(self, event: Any, *, time_left_ms: int | None = None) -> RotationResult:
        """Raises :class:`TransientSyncError` when the event must be retried."""
        observer = self.adapters.observer
        deadline = Deadline(time_left_ms, self.time_budget, self.clock.monotonic)
        if not self._timeout_checked:
            self._timeout_checked = True
            check_function_timeout(time_left_ms, self.time_budget, observer.function_timeout_too_short)
        try:
            change = parse_secret_change(event)
        except InvalidEventError as error:
            self._park(None, None, error, deadline, calls=0, secret_values=())
            return RotationResult("ignored")
        if change is None:
            observer.ignored("not a change of a current secret value", None)
            return RotationResult("ignored")
        if not self.settings.is_resource_secret(change.secret_id):
            observer.ignored("not a resource secret (outside RESOURCE_SECRET_PREFIX, or token-shaped)", change)
            return RotationResult("ignored", secret_name=change.secret_name)
        index = self.adapters.index
        if index is None:
            raise TransientSyncError("SYNC_STATE_TABLE is not set: rotation sync cannot find the resources")
        with deadline.bound("aws_read", "finding the resources that use the secret"):
            targets = sorted({t for name in secret_names_of(change.secret_id) for t in index.resources_using(name)})
        result = RotationResult("no_resources" if not targets else "done", secret_name=change.secret_name)
        owned, document = self._read_for_owners(change, targets, deadline, result) if targets else ([], None)
        pending = self._push_all(change, owned, document, deadline, result)
        observer.finished(change, result)
        if pending:
            raise RotationIncompleteError(
                f"{len(pending)} of {len(targets)} resources using secret {change.secret_name} were not updated "
                "(transient failures or no time left); the event will be retried"
            )
        return result

    def _push_all(
        self,
        change: SecretChange,
        owned: list[RotationTarget],
        document: Any,
        deadline: Deadline,
        result: RotationResult,
    ) -> list[RotationTarget]:
        """One call per resource; returns the ones left for a retry."""
        calls = Calls(
            self.adapters.secrets,
            self.adapters.rate_limiter,
            self.retry,
            self.clock,
            deadline,
            max_limiter_wait_seconds=MAX_RATE_LIMIT_WAIT_SECONDS,
            pause_locally=False,
        )
        vercel, observer = self.adapters.vercel, self.adapters.observer
        values: list[str] = []  # the secret's values, as each resource's payload carries them
        pending: list[RotationTarget] = []
        for target in owned:
            installation, tries = calls.installation(target.installation_id), Tries()
            try:
                payload = build_secrets_update(document, target.secrets_prefix)
                values.extend(payload.secret_values())
                send = partial(
                    vercel.update_resource_secrets, target.installation_id, target.resource_id, payload.to_body()
                )
                calls.token(installation)
                latency_ms = calls.call(installation, send, target, observer, tries)
                observer.pushed(change, target, calls=tries.calls, latency_ms=latency_ms)
                result.pushed.append(target)
            except PermanentSyncError as error:
                try:
                    secret_values = values + installation.tokens_used
                    self._park(change, target, error, deadline, calls=tries.calls, secret_values=secret_values)
                except TransientSyncError:
                    pending.append(target)
                else:
                    result.parked.append(target)
            except TransientSyncError:
                pending.append(target)
            result.calls += tries.calls
        return pending

    def _read_for_owners(
        self, change: SecretChange, targets: list[RotationTarget], deadline: Deadline, result: RotationResult
    ) -> tuple[list[RotationTarget], Any]:
        """The targets of the secret's installation, and its document (read only if there is one);
        each other target is parked. A failure of the secret itself parks every target."""
        owned: list[RotationTarget] = []
        secrets = self.adapters.secrets
        try:
            for target in targets:
                try:
                    with deadline.bound("aws_read", "checking whose the secret is"):
                        secrets.check_owner(change.secret_id, target.installation_id)
                except InvalidRecordError as error:
                    refused = InvalidRecordError(f"the rotated secret's new value is not sent: {error.message}")
                    self._park(change, target, refused, deadline, calls=0, secret_values=())
                    result.parked.append(target)
                else:
                    owned.append(target)
            if not owned:
                return [], None
            with deadline.bound("aws_read", "reading the secret"):
                document = secrets.resource_secrets(
                    change.secret_id, installation_id=owned[0].installation_id, force_fetch=True
                )
        except PermanentSyncError as error:  # missing, denied, undecodable: no target can have it
            parked = set(result.parked)
            for target in targets:
                if target not in parked:
                    self._park(change, target, error, deadline, calls=0, secret_values=())
                    result.parked.append(target)
            return [], None
        return owned, document

    def _park(
        self,
        change: SecretChange | None,
        target: RotationTarget | None,
        error: PermanentSyncError,
        deadline: Deadline,
        *,
        calls: int,
        secret_values: list[str] | tuple[str, ...],
    ) -> None:
        """Raises :class:`TransientSyncError` when it cannot park (the event is retried)."""
        shown = scrubbed(error, list(secret_values))  # the message builder scrubs the error it is given itself
        failed_records = self.adapters.failed_records
        if failed_records is None:
            raise TransientSyncError(f"{error.reason}: {shown.message} (no failed-records queue configured)")
        message = build_rotation_failure_message(
            change, target, error, failed_at=self.clock.now(), calls=calls, secret_values=secret_values
        )
        refused = send_to_failed_records(failed_records, message, deadline)
        if refused is not None:
            raise TransientSyncError(refused)
        self.adapters.observer.parked(change, target, shown)
