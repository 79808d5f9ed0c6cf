"""Rotation sync: a resource secret changed in Secrets Manager, so every Vercel resource whose last
import used it gets the new values (Update Resource Secrets). Pure: no AWS, no HTTP library; the
adapters are handed in (``rotation_runtime`` wires the real ones).

One EventBridge event (``RotationSucceeded``, or ``PutSecretValue`` / ``UpdateSecret`` through
CloudTrail) is handled like this:

1. :func:`parse_secret_change` finds the secret's id in the event and its *name* (an ARN's name
   part without Secrets Manager's ``-AbCdEf`` suffix; the state table's ``secretName`` keeps the
   name part of the id an import was given, so both forms are looked up). Events that change no
   current value are ignored: a failed API call (``errorCode``), a ``PutSecretValue`` that stages
   a version without ``AWSCURRENT`` (a rotation's pending step: its ``RotationSucceeded`` follows).
2. A secret outside ``RESOURCE_SECRET_PREFIX``, or shaped like an installation token, is ignored
   (``Settings.is_resource_secret``, the rule imports follow): its value is never read here.
3. The sync-state table's sparse index ``bySecretName`` lists the resources whose last import used
   the secret (:class:`SecretIndex`), with their ``secretsPrefix``.
4. A resource of an installation the secret does not belong to (the import's rule: its folder
   ``{RESOURCE_SECRET_PREFIX}X/`` or its tag) is parked as an invalid record: a rotation of one
   installation's secret never reaches another's. If none remains, no value is read.
5. The secret is read once, past any cache, and turned into each remaining resource's ``secrets``
   by the import's own rules (``transform.build_secrets_update``).
6. One call per resource. Transient failures (429, 5xx, timeouts) are retried with exponential
   backoff and full jitter, never sooner than ``Retry-After``, while the invocation's time allows;
   a 401 re-reads the installation's token once; a 429 pauses the installation in the optional
   shared rate limiter. Permanent failures (400, 403, 404, 409, 410, 422, an invalid or unreadable
   secret, a token that cannot be read) go to the failed-records queue, one message per resource
   (:func:`build_rotation_failure_message`, ``kind: "secret_rotation"``).
7. Anything not done raises :class:`RotationIncompleteError`: Lambda's asynchronous retries run the
   event again (every resource gets the then-current value: a late retry never pushes an older
   one), and after them its on-failure destination keeps the event.

No secret value or token leaves: failure messages and log fields are scrubbed of every value read.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from vercel_sync.calls import RetryPolicy
from vercel_sync.deadline import Deadline, TimeBudget, too_short_function_timeout_ms
from vercel_sync.errors import InvalidRecordError, PermanentSyncError, TransientSyncError
from vercel_sync.ports import (
    FailedRecordSink,
    NullRotationObserver,
    RateLimiter,
    RotationObserver,
    SecretIndex,
    SecretsApi,
    SecretStore,
)
from vercel_sync.redaction import scrub_text, truncate
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
from vercel_sync.transform import build_secrets_update

# Waiting for the shared rate limiter is bounded by the time left, and by this.
MAX_RATE_LIMIT_WAIT_SECONDS = 10.0


class RotationService:
    def __init__(
        self,
        *,
        settings: Settings,
        index: SecretIndex | None,
        secrets: SecretStore,
        vercel: SecretsApi,
        failed_records: FailedRecordSink | None,
        rate_limiter: RateLimiter | None = None,
        observer: RotationObserver | None = None,
        time_budget: TimeBudget | None = None,
        retry: RetryPolicy | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        draw: Callable[[], float] = random.random,  # jitter, not a secret
    ) -> None:
        self.settings = settings
        # Without the sync-state table (SYNC_STATE_TABLE unset) no resource can be found.
        self.index = index
        self.secrets = secrets
        self.vercel = vercel
        self.failed_records = failed_records
        self.rate_limiter = rate_limiter
        self.observer: RotationObserver = observer or NullRotationObserver()
        self.time_budget = time_budget
        self.retry = retry or RetryPolicy(max_calls=5, base_delay_seconds=0.5)
        self._clock = clock
        self._monotonic = monotonic
        self._sleep = sleep
        self._draw = draw
        self._timeout_checked = False  # at the first event, whose time left is the function's timeout

    def handle(self, event: Any, *, time_left_ms: int | None = None) -> RotationResult:
        """Sync one event; raises :class:`TransientSyncError` when it must be retried."""
        deadline = Deadline(time_left_ms, self.time_budget, self._monotonic)
        if not self._timeout_checked:
            self._timeout_checked = True
            too_short_ms = too_short_function_timeout_ms(time_left_ms, self.time_budget)
            if too_short_ms is not None and self.time_budget is not None:
                self.observer.function_timeout_too_short(function_timeout_ms=too_short_ms, budget=self.time_budget)
        try:
            change = parse_secret_change(event)
        except InvalidEventError as error:
            self._park(None, None, error, deadline, calls=0, secret_values=())
            return RotationResult("ignored")
        if change is None:
            self.observer.ignored("not a change of a current secret value", None)
            return RotationResult("ignored")
        if not self.settings.is_resource_secret(change.secret_id):
            # A token, or a secret no record may name: never read here, never sent.
            self.observer.ignored("not a resource secret (outside RESOURCE_SECRET_PREFIX, or token-shaped)", change)
            return RotationResult("ignored", secret_name=change.secret_name)
        if self.index is None:
            raise TransientSyncError("SYNC_STATE_TABLE is not set: rotation sync cannot find the resources")

        with deadline.bound("aws_read", "finding the resources that use the secret"):
            index = self.index
            targets = sorted({t for name in secret_names_of(change.secret_id) for t in index.resources_using(name)})
        result = RotationResult("no_resources" if not targets else "done", secret_name=change.secret_name)
        if not targets:
            self.observer.finished(change, result)
            return result

        owned, document = self._read_for_owners(change, targets, deadline, result)
        if not owned:
            self.observer.finished(change, result)
            return result

        run = _Run(self, change, deadline)
        pending: list[RotationTarget] = []
        for target in owned:
            try:
                result.calls += run.push(target, document)
                result.pushed.append(target)
            except PermanentSyncError as error:
                try:
                    self._park(
                        change, target, error, deadline, calls=run.calls_for(target), secret_values=run.secret_values
                    )
                except TransientSyncError:
                    pending.append(target)
                else:
                    result.parked.append(target)
                result.calls += run.calls_for(target)
            except TransientSyncError:
                pending.append(target)
                result.calls += run.calls_for(target)
        self.observer.finished(change, result)
        if pending:
            raise RotationIncompleteError(
                f"{len(pending)} of {len(targets)} resources using secret {change.secret_name} were not updated "
                "(transient failures or no time left); the event will be retried"
            )
        return result

    def _read_for_owners(
        self, change: SecretChange, targets: list[RotationTarget], deadline: Deadline, result: RotationResult
    ) -> tuple[list[RotationTarget], Any]:
        """The targets of the installation the secret belongs to, and the secret's document (read
        only if there is one). Each other target is parked as an invalid record (its last import
        named a secret of another installation, or one since moved or re-tagged), so that it shows
        in the failed-records queue and its alarm, not only in a log: someone has to re-import that
        resource with a secret of its own. A failure of the secret itself parks every target."""
        owned: list[RotationTarget] = []
        try:
            # One secret for every target: at most one DescribeSecret, cached for the others.
            for target in targets:
                try:
                    with deadline.bound("aws_read", "checking whose the secret is"):
                        self.secrets.check_owner(change.secret_id, target.installation_id)
                except InvalidRecordError as error:
                    refused = InvalidRecordError(f"the rotated secret's new value is not sent: {error.message}")
                    self._park(change, target, refused, deadline, calls=0, secret_values=())
                    result.parked.append(target)
                else:
                    owned.append(target)
            if not owned:
                return [], None
            with deadline.bound("aws_read", "reading the secret"):
                document = self.secrets.resource_secrets(
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
        secret_values: Iterable[str],
    ) -> None:
        values = list(secret_values)
        error.message = truncate(scrub_text(error.message, values))
        if self.failed_records is None:
            # The event goes back to Lambda's retries and then to its on-failure destination.
            raise TransientSyncError(f"{error.reason}: {error.message} (no failed-records queue configured)")
        message = build_rotation_failure_message(
            change, target, error, failed_at=self._clock(), calls=calls, secret_values=values
        )
        with deadline.bound("park", "sending it to the failed-records queue"):
            try:
                self.failed_records.park(message)
            except Exception as exc:  # noqa: BLE001 - any failure to park means the event must be retried
                raise TransientSyncError(f"the failed-records queue did not take it ({type(exc).__name__})") from None
        self.observer.parked(change, target, error)


class _Run:
    """One event's calls: tokens per installation (each re-read at most once), secret values seen."""

    def __init__(self, service: RotationService, change: SecretChange, deadline: Deadline) -> None:
        self.service = service
        self.change = change
        self.deadline = deadline
        self.secret_values: list[str] = []
        self._tokens: dict[str, str | PermanentSyncError] = {}
        self._refreshed: set[str] = set()
        self._calls: dict[RotationTarget, int] = {}

    def calls_for(self, target: RotationTarget) -> int:
        return self._calls.get(target, 0)

    def _token(self, installation_id: str, *, force_fetch: bool = False) -> str:
        known = self._tokens.get(installation_id)
        if isinstance(known, PermanentSyncError):
            raise known
        if known is not None and not force_fetch:
            return known
        try:
            with self.deadline.bound("aws_read", "reading the installation token"):
                token = self.service.secrets.installation_token(installation_id, force_fetch=force_fetch)
        except PermanentSyncError as error:
            self._tokens[installation_id] = error
            raise
        self._tokens[installation_id] = token
        self.secret_values.append(token)
        return token

    def push(self, target: RotationTarget, document: Any) -> int:
        """Update one resource's secrets; returns the calls made. Raises a classified error."""
        service = self.service
        payload = build_secrets_update(document, target.secrets_prefix)
        self.secret_values.extend(payload.secret_values())
        body = payload.to_body()
        installation = target.installation_id
        token = self._token(installation)
        attempt = 0
        while True:
            attempt += 1
            self.deadline.require("vercel_call", "a Vercel call")
            self._acquire(installation)
            started = time.perf_counter()
            self._calls[target] = self.calls_for(target) + 1
            try:
                with self.deadline.limit("vercel_call"):
                    service.vercel.update_resource_secrets(installation, target.resource_id, body, token=token)
            except TransientSyncError as error:
                if error.http_status == 401 and installation not in self._refreshed:
                    # The token may have been rotated: re-read it past the cache, once.
                    self._refreshed.add(installation)
                    token = self._token(installation, force_fetch=True)
                    service.observer.token_refreshed(installation)
                    attempt -= 1
                    continue
                wait = self._retry_in(installation, attempt, error)
                service.observer.call_failed(target, error, retry_in_seconds=wait)
                if wait is None:
                    raise
                service._sleep(wait)
                continue
            service.observer.pushed(
                self.change,
                target,
                calls=self.calls_for(target),
                latency_ms=(time.perf_counter() - started) * 1000,
            )
            return self.calls_for(target)

    def _acquire(self, installation: str) -> None:
        limiter = self.service.rate_limiter
        if limiter is None:
            return
        wait = max(0.0, min(MAX_RATE_LIMIT_WAIT_SECONDS, self.deadline.spare_seconds("vercel_call")))
        if not limiter.acquire(installation, max_wait_seconds=wait):
            raise TransientSyncError("no rate-limit token for the installation in time")

    def _retry_in(self, installation: str, attempt: int, error: TransientSyncError) -> float | None:
        """Seconds to wait before the next try, or ``None``: no retry in this invocation."""
        service = self.service
        retry_after = error.retry_after_seconds
        limiter = service.rate_limiter
        if error.http_status == 429 and retry_after and limiter and self.deadline.allows_best_effort_aws_call():
            # Vercel's window is shared by every invocation: none calls for it before then (best
            # effort: skipped when there is no time for the write).
            with self.deadline.limit("aws_read"):
                limiter.pause(installation, retry_after)
        if error.http_status == 401 or attempt >= service.retry.max_calls:
            return None  # a second 401 (the re-read token too) will not pass in this invocation
        wait = service.retry.delay_seconds(attempt, retry_after, lambda low, high: low + (high - low) * service._draw())
        if self.deadline.spare_seconds("vercel_call") < wait:
            return None
        return wait
