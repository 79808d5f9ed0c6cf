"""A reconcile run: per installation, Vercel's list against the partner's view, then (when asked) the
repairs: the partner's record through the partner events queue, orphans removed by the removal mode.
Resumable: each installation finished is checkpointed (docs/operations.md, "Reconcile")."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from vercel_sync.backfill.checkpoints import BackfillError
from vercel_sync.backfill.engine import MessageSink
from vercel_sync.errors import PermanentSyncError, TransientSyncError
from vercel_sync.ratelimit.operations import DeletionBuckets, ListBuckets
from vercel_sync.reconcile.compare import UNINSTALLED, InstallationReport, compare_installation, partner_id
from vercel_sync.reconcile.partner import PartnerView
from vercel_sync.settings import RemovalMode

ATTEMPTS = 3
MAX_LIMITER_WAIT_SECONDS = 120.0


class Vercel(Protocol):
    def list_resources(self, integration_configuration_id: str, *, token: str) -> list[dict[str, Any]]: ...

    def import_resource(
        self, integration_configuration_id: str, resource_id: str, body: Mapping[str, Any], *, token: str
    ) -> dict[str, Any]: ...

    def delete_resource(self, integration_configuration_id: str, resource_id: str, *, token: str) -> None: ...


class TokenReader(Protocol):
    def installation_token(self, integration_configuration_id: str, *, force_fetch: bool = False) -> str: ...


class Limiter(Protocol):
    def acquire(self, installation_id: str, *, max_wait_seconds: float) -> bool: ...

    def pause(self, installation_id: str, seconds: float) -> None: ...


@dataclass(frozen=True)
class ReconcileOptions:
    apply: bool = False  # send the partner's record for each missing or different resource
    remove_orphans: bool = False  # remove what the partner no longer has (by removal_mode)
    removal_mode: RemovalMode = "uninstalled"


@dataclass
class InstallationOutcome:
    report: InstallationReport
    repairs_sent: int = 0
    orphans_removed: int = 0
    unreadable: int = 0  # partner items that cannot be compared (the sync parks them)

    def to_dict(self) -> dict[str, Any]:
        return {
            "installationId": self.report.installation_id,
            **{_camel(kind): count for kind, count in self.report.counts().items()},
            "repairsSent": self.repairs_sent,
            "orphansRemoved": self.orphans_removed,
            "unreadable": self.unreadable,
            **({"error": self.report.error} if self.report.error else {}),
        }


def _camel(kind: str) -> str:
    head, *rest = kind.split("_")
    return head + "".join(part.title() for part in rest)


@dataclass
class ReconcileState:
    """A run: the installations it covers (fixed when it starts) and the outcome of each one finished."""

    run_id: str
    installations: list[str]
    done: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def pending(self) -> list[str]:
        return [installation for installation in self.installations if installation not in self.done]

    def to_dict(self) -> dict[str, Any]:
        return {"runId": self.run_id, "installations": self.installations, "done": self.done}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ReconcileState:
        return cls(str(data["runId"]), list(data["installations"]), dict(data.get("done") or {}))


class ReconcileCheckpoints(Protocol):
    def save(self, state: ReconcileState) -> None: ...


@dataclass
class Reconcile:
    state: ReconcileState
    partner: PartnerView
    vercel: Vercel
    tokens: TokenReader
    options: ReconcileOptions
    list_limiter: Limiter | None = None  # the shared limiter at Vercel's retrieval rate
    import_limiter: Limiter | None = None  # the shared limiter at the imports' rate
    sink: MessageSink | None = None  # the partner events queue, marked as repairs
    checkpoints: ReconcileCheckpoints | None = None
    on_outcome: Callable[[InstallationOutcome], None] | None = None
    stop: threading.Event = field(default_factory=threading.Event)
    sleep: Callable[[float], None] = time.sleep
    # The partner's view of one installation read again, just before orphans are removed: ``partner``
    # was read when the run started, and what the partner created since must not be removed.
    reread: Callable[[str], PartnerView] | None = None

    def __post_init__(self) -> None:
        if self.options.apply and self.sink is None:
            raise ValueError("a reconcile run that repairs needs the partner events queue")

    def run(self) -> list[InstallationOutcome]:
        outcomes = []
        for installation_id in self.state.pending:
            if self.stop.is_set():
                break
            outcome = self.installation(installation_id)
            outcomes.append(outcome)
            if outcome.report.error is None:
                # Only a finished installation is skipped on resume; one that failed is tried again.
                self.state.done[installation_id] = outcome.to_dict()
                if self.checkpoints is not None:
                    self.checkpoints.save(self.state)
            if self.on_outcome is not None:
                self.on_outcome(outcome)
        return outcomes

    def installation(self, installation_id: str) -> InstallationOutcome:
        unreadable_ids = self.partner.unreadable.get(installation_id, [])
        unreadable = len(unreadable_ids)
        try:
            lists = ListBuckets(self.list_limiter) if self.list_limiter is not None else None
            held = self._vercel_call(installation_id, self.vercel.list_resources, lists)
        except (TransientSyncError, PermanentSyncError) as error:
            report = InstallationReport(installation_id, error=f"listing its resources at Vercel: {error.message}")
            return InstallationOutcome(report, unreadable=unreadable)
        report = compare_installation(
            installation_id,
            self.partner.expected(installation_id),
            held,
            removal_mode=self.options.removal_mode,
            unreadable=unreadable_ids,
        )
        outcome = InstallationOutcome(report, unreadable=unreadable)
        if self.options.apply:
            self._repair(installation_id, outcome)
        if self.options.remove_orphans:
            self._remove_orphans(installation_id, outcome, {pid: r for r in held if (pid := partner_id(r))})
        return outcome

    def _repair(self, installation_id: str, outcome: InstallationOutcome) -> None:
        assert self.sink is not None
        entries = self.partner.resources.get(installation_id, {})
        messages = [entries[f.resource_id].message for f in outcome.report.of_kind("missing", "different")]
        for start in range(0, len(messages), 10):  # SendMessageBatch's limit
            try:
                self.sink.send_batch(messages[start : start + 10])
            except BackfillError as error:  # this installation is tried again on resume
                outcome.report.error = f"sending repairs through the partner events queue: {error}"
                return
            outcome.repairs_sent = start + len(messages[start : start + 10])

    def _remove_orphans(
        self, installation_id: str, outcome: InstallationOutcome, held: Mapping[str, Mapping[str, Any]]
    ) -> None:
        orphans = outcome.report.of_kind("orphaned")
        if orphans and self.reread is not None:
            try:
                fresh = self.reread(installation_id)
            except (TransientSyncError, PermanentSyncError) as error:
                outcome.report.error = f"reading the partner table again before removing orphans: {error.message}"
                return
            still = compare_installation(
                installation_id,
                fresh.expected(installation_id),
                held.values(),
                removal_mode=self.options.removal_mode,
                unreadable=fresh.unreadable.get(installation_id, []),
            ).of_kind("orphaned")
            orphans = [finding for finding in orphans if finding in still]
        for finding in orphans:
            try:
                self._remove(installation_id, finding.resource_id, held[finding.resource_id])
            except (TransientSyncError, PermanentSyncError) as error:
                outcome.report.error = f"removing orphan {finding.resource_id}: {error.message}"
                return
            outcome.orphans_removed += 1

    def _remove(self, installation_id: str, resource_id: str, held: Mapping[str, Any]) -> None:
        """By the removal mode: DELETE, or an import of Vercel's own view of it with status uninstalled
        (there is no partner record left to send through the queue)."""
        if self.options.removal_mode == "delete":
            delete = self.vercel.delete_resource
            deletions = DeletionBuckets(self.import_limiter) if self.import_limiter is not None else None
            self._vercel_call(installation_id, lambda i, *, token: delete(i, resource_id, token=token), deletions)
            return
        body = {"productId": held.get("productId"), "name": held.get("name"), "status": UNINSTALLED}
        put = self.vercel.import_resource
        self._vercel_call(
            installation_id, lambda i, *, token: put(i, resource_id, body, token=token), self.import_limiter
        )

    def _vercel_call[T](self, installation_id: str, send: Callable[..., T], bucket: Limiter | None) -> T:
        """``send(installation_id, token=...)`` within the rate limit: a 401 re-reads the token once (as
        the sync does), a transient failure is tried again (``ATTEMPTS`` in all, honouring Retry-After)."""
        token = self.tokens.installation_token(installation_id)
        refreshed = False
        for attempt in range(1, ATTEMPTS + 1):
            if bucket is not None and not bucket.acquire(installation_id, max_wait_seconds=MAX_LIMITER_WAIT_SECONDS):
                raise TransientSyncError("the rate limiter had no slot in time")
            try:
                return send(installation_id, token=token)
            except TransientSyncError as error:
                if error.http_status == 401 and not refreshed:
                    refreshed = True
                    token = self.tokens.installation_token(installation_id, force_fetch=True)
                    continue
                if attempt == ATTEMPTS or error.http_status == 401:
                    raise
                wait = error.retry_after_seconds if error.retry_after_seconds is not None else 2.0**attempt
                if bucket is not None and error.http_status == 429:
                    bucket.pause(installation_id, wait)
                self.sleep(wait)
        raise TransientSyncError("no attempt left after re-reading the installation token", http_status=401)


def new_state(run_id: str, installations: Sequence[str]) -> ReconcileState:
    return ReconcileState(run_id, sorted(set(installations)))
