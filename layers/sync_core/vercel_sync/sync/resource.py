"""One resource's sync: its secrets and body, the claim, the call (calls.py), the record of it."""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Callable, Mapping
from functools import partial
from typing import TYPE_CHECKING, Any

from vercel_sync.calls import Calls, Installation, Tries
from vercel_sync.deadline import Deadline
from vercel_sync.errors import (
    INSTALLATION_HTTP_STATUSES,
    InstallationUnavailableError,
    PermanentSyncError,
    TransientSyncError,
)
from vercel_sync.ratelimit.operations import DeletionBuckets
from vercel_sync.settings import RemovalMode
from vercel_sync.sync.crew import waiting
from vercel_sync.sync.failures import Failures
from vercel_sync.sync.plan import DONE, ParsedChange, RecordResult, ResourceWork
from vercel_sync.sync_state import DELETED_STATUS, ImportedState, payload_digest
from vercel_sync.transform import build_import_body, needs_secrets

if TYPE_CHECKING:
    from vercel_sync.sync.service import Adapters


# What stands for a deletion's payload in the sync-state table: no import body digests the same,
# so an import after a deletion is never taken for unchanged.
_DELETION = {"deletedAtVercel": True}


class ResourceSync:
    """The resources of one batch, each synced on its own (one worker at a time per resource)."""

    def __init__(
        self,
        adapters: Adapters,
        calls: Calls,
        failures: Failures,
        deadline: Deadline,
        removal_mode: RemovalMode = "uninstalled",
    ) -> None:
        self.adapters, self.calls, self.failures, self.deadline = adapters, calls, failures, deadline
        self.observer = adapters.observer
        self.removal_mode = removal_mode
        # Vercel limits deletions apart from imports: buckets of their own in the same limiter.
        limiter = adapters.rate_limiter
        self.deletion_limiter = DeletionBuckets(limiter) if limiter is not None else None

    def run(self, work: ResourceWork, results: list[RecordResult]) -> None:
        """The newest change is synced; the others it coalesced share its fate."""
        newest = work.newest()
        synced = newest
        if not newest.change.repair and any(c.change.repair for c in work.changes):
            # A repair it coalesced: Vercel lost this resource, so its newest state goes even if unchanged.
            synced = dataclasses.replace(newest, change=dataclasses.replace(newest.change, repair=True))
        try:
            result = self.sync(synced)
        except Exception as bug:  # noqa: BLE001 - never lose the record to a bug
            installation = self.calls.installation(newest.record.integration_configuration_id)
            result = self.failures.bug(newest.change, bug, installation.tokens_used)
        results[newest.index] = result
        for other in work.changes:
            if other is not newest:
                results[other.index] = result if result.failed else DONE["coalesced"]
                if not result.failed:
                    self.observer.skipped(other.change, "coalesced")

    def sync(self, item: ParsedChange) -> RecordResult:
        installation = self.calls.installation(item.record.integration_configuration_id)
        secret_values: list[str] = []
        tries = Tries()
        try:
            return self._import(item, installation, secret_values, tries)
        except PermanentSyncError as error:
            if error.http_status in INSTALLATION_HTTP_STATUSES and not isinstance(error, InstallationUnavailableError):
                error = _stop(installation, error)
            secret_values.extend(installation.tokens_used)
            return self.failures.park(item.change, error, secret_values, calls=tries.calls)
        except TransientSyncError as error:
            secret_values.extend(installation.tokens_used)
            return self.failures.transient(item.change, error, secret_values, calls=tries.calls)

    def _import(
        self, item: ParsedChange, installation: Installation, secret_values: list[str], tries: Tries
    ) -> RecordResult:
        self.deadline.require("record", "a record")
        if installation.stopped is not None:
            stopped = installation.stopped
            raise InstallationUnavailableError(
                f"not sent: {stopped.message} (for another resource of this installation in this batch)",
                http_status=stopped.http_status,
            )
        body = None if self.deletes(item) else self._body(item, secret_values)
        token = self.calls.token(installation)
        secret_values.append(token)
        if self.adapters.state_store is None:
            latency_ms = self._call(item, installation, body, tries)
        else:
            digest = payload_digest(_DELETION if body is None else body, key=self.calls.digest_key(installation, token))
            claim_id, unchanged = self._claim(item, digest)
            # A reconcile repair is sent although the table says this payload went: Vercel lost it.
            unchanged = unchanged and not item.change.repair
            if claim_id is None:
                self.observer.skipped(item.change, "stale")
                return DONE["stale"]
            try:
                # A deletion is always sent (404 is success): Vercel may hold the resource again
                # although the table's last payload was this deletion.
                if unchanged and body is not None:
                    self._record_state(item, claim_id, digest, body)
                    self.observer.skipped(item.change, "unchanged")
                    return DONE["unchanged"]
                latency_ms = self._call(item, installation, body, tries)
                # Recorded before the record counts as done: unrecorded, a stale change could pass
                # the guard later. If this fails the record goes back and is sent again.
                self._record_state(item, claim_id, digest, body)
            except (PermanentSyncError, TransientSyncError):
                self._release(item, claim_id)
                raise
        self.observer.imported(item.change, latency_ms=latency_ms, calls=tries.calls)
        return DONE["imported"]

    def _body(self, item: ParsedChange, secret_values: list[str]) -> dict[str, Any]:
        change, record = item.change, item.record
        secret_document = None
        if needs_secrets(record, removed=change.removed):
            assert record.secrets_arn is not None
            secrets, installation_id = self.adapters.secrets, record.integration_configuration_id
            # Whose the secret is first: its value is read only if it is the installation's.
            with (
                self.deadline.bound("aws_read", "checking whose the resource secret is"),
                waiting("secret_owner"),  # a kind of its own: most checks make no call
            ):
                secrets.check_owner(record.secrets_arn, installation_id)
            with self.deadline.bound("aws_read", "reading the resource secret"), waiting("secret"):
                secret_document = secrets.resource_secrets(record.secrets_arn, installation_id=installation_id)
        payload, body = build_import_body(record, removed=change.removed, secret_document=secret_document)
        secret_values.extend(payload.secret_values())
        return body

    def deletes(self, item: ParsedChange) -> bool:
        """Whether the change reaches Vercel as a DELETE: a removal (a stream REMOVE, ``deleted: true``)
        in delete mode. Otherwise it is imported (a removal with status ``uninstalled``)."""
        return self.removal_mode == "delete" and (item.change.removed or item.record.deleted)

    def _call(
        self, item: ParsedChange, installation: Installation, body: Mapping[str, Any] | None, tries: Tries
    ) -> float:
        """The import of ``body``; ``None``: the resource's deletion."""
        vercel, resource_id = self.adapters.vercel, item.record.resource_id
        send: Callable[..., object]
        if body is None:
            send = partial(vercel.delete_resource, installation.id, resource_id)
            limiter = self.deletion_limiter
        else:
            send, limiter = partial(vercel.import_resource, installation.id, resource_id, body), None
        return self.calls.call(installation, send, item.change, self.observer, tries, rate_limiter=limiter)

    def _claim(self, item: ParsedChange, digest: str) -> tuple[str | None, bool]:
        """(claim id, whether the payload is unchanged); claim id None: the change is stale."""
        store = self.adapters.state_store
        assert store is not None
        installation_id, resource_id = item.record.integration_configuration_id, item.record.resource_id
        while True:
            with self.deadline.bound("aws_read", "claiming the resource in the sync-state table"), waiting("state"):
                claim = store.claim(
                    installation_id,
                    resource_id,
                    item.version,
                    lease_seconds=self.deadline.lease_seconds(),
                    repair=item.change.repair,
                )
            if claim.status == "stale":
                return None, False
            if claim.status == "claimed":
                return claim.claim_id, claim.state.payload_digest == digest
            # busy: another invocation's call for this resource is in flight.
            wait = max(0.05, (claim.busy_until or 0) - time.time()) + self.calls.clock.uniform(0.0, 0.05)
            if wait > self.deadline.spare_seconds("aws_read") or wait > self.calls.retry.max_delay_seconds:
                raise TransientSyncError("another invocation is syncing this resource: back to the source")
            self.calls.sleep(wait)

    def _record_state(
        self, item: ParsedChange, claim_id: str | None, digest: str, body: Mapping[str, Any] | None
    ) -> None:
        store, record = self.adapters.state_store, item.record
        assert store is not None
        uses_secret = record.secrets_arn is not None and body is not None and "secrets" in body
        # In parking's share of the time, which the call's bound kept free.
        with self.deadline.bound("park", "recording the import in the sync-state table"), waiting("state"):
            store.record(
                claim_id,
                ImportedState(
                    installation_id=record.integration_configuration_id,
                    resource_id=record.resource_id,
                    version=item.version,
                    payload_digest=digest,
                    product_id=record.product_id,
                    status=DELETED_STATUS if body is None else str(body.get("status")),
                    secret_name=record.secrets_arn if uses_secret else None,
                    secrets_prefix=record.secrets_prefix if uses_secret else None,
                    imported_at=self.calls.clock.now(),
                ),
            )

    def _release(self, item: ParsedChange, claim_id: str | None) -> None:
        store = self.adapters.state_store
        if claim_id is None or store is None or not self.deadline.allows_best_effort_aws_call():
            return
        # Best effort: the lease lapses on its own.
        with contextlib.suppress(Exception), self.deadline.limit("aws_read"), waiting("state"):
            store.release(item.record.integration_configuration_id, item.record.resource_id, claim_id)


def _stop(installation: Installation, error: PermanentSyncError) -> PermanentSyncError:
    """Vercel refused the installation: the rest of its batch is parked without a call."""
    with installation.lock:
        if installation.stopped is None:
            # The others get the status alone: the rest is this record's, and may quote its secrets.
            installation.stopped = InstallationUnavailableError(
                f"Vercel refused the installation ({error.http_status})", http_status=error.http_status
            )
    return InstallationUnavailableError(
        f"Vercel refused the installation ({error.http_status}): {error.message}",
        http_status=error.http_status,
        vercel_error=error.vercel_error,
        vercel_error_complete=error.vercel_error_complete,
    )
