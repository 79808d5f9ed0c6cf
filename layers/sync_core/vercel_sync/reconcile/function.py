"""Running a reconcile: the parts it is given (built by ``wiring.build_reconcile_parts``), the partner's view
read once, then each installation; and ReconcileFunction's scheduled run (docs/operations.md, "Reconcile")."""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from vercel_sync.backfill.engine import ItemSource, MessageSink
from vercel_sync.mapping import PartnerMapping
from vercel_sync.ports import SecretStore
from vercel_sync.reconcile.compare import totals
from vercel_sync.reconcile.engine import (
    InstallationOutcome,
    Limiter,
    Reconcile,
    ReconcileCheckpoints,
    ReconcileOptions,
    ReconcileState,
    Vercel,
    new_state,
)
from vercel_sync.reconcile.partner import PartnerView, read_partner_view
from vercel_sync.reconcile.report import emit_metrics, log_fields
from vercel_sync.reconcile.settings import ReconcileSettings

# The scheduled run starts no installation with less time left than this.
STOP_MARGIN_MS = 60_000


@dataclass
class ReconcileParts:
    source: ItemSource  # the partner table
    vercel: Vercel
    secrets: SecretStore  # the sync's token and resource-secret reader
    mapping: PartnerMapping
    import_limiter: Limiter | None
    list_limiter: Limiter | None
    repair_sink: MessageSink | None  # the partner events queue, marking each message a repair


def run_reconcile(
    parts: ReconcileParts,
    settings: ReconcileSettings,
    options: ReconcileOptions,
    *,
    run_id: str,
    resumed: ReconcileState | None = None,
    only: Collection[str] = (),
    checkpoints: ReconcileCheckpoints | None = None,
    on_start: Callable[[ReconcileState], None] | None = None,
    on_outcome: Callable[[InstallationOutcome], None] | None = None,
    stop: threading.Event | None = None,
) -> tuple[ReconcileState, list[InstallationOutcome]]:
    """A new run over the table's installations (or ``only`` those), or ``resumed`` where it stopped."""
    covered = resumed.installations if resumed is not None else only

    def read(installations: Collection[str]) -> PartnerView:
        return read_partner_view(
            parts.source,
            table_name=settings.partner_table_name,
            queue_url=settings.partner_events_queue_url or "-",
            mapping=parts.mapping,
            secrets=parts.secrets,
            only=installations,
        )

    view = read(covered)
    state = resumed or new_state(run_id, [*view.installations(), *only])
    if checkpoints is not None:
        checkpoints.save(state)
    if on_start is not None:
        on_start(state)
    reconcile = Reconcile(
        state,
        view,
        parts.vercel,
        parts.secrets,
        options,
        list_limiter=parts.list_limiter,
        import_limiter=parts.import_limiter,
        sink=parts.repair_sink if options.apply else None,
        checkpoints=checkpoints,
        on_outcome=on_outcome,
        stop=stop or threading.Event(),
        reread=lambda installation_id: read([installation_id]),
    )
    return state, reconcile.run()


def run_scheduled(
    context: Any, parts: ReconcileParts, settings: ReconcileSettings, run_id: str | None = None
) -> dict[str, Any]:
    """ReconcileFunction: every installation the table names, a log line and metrics for each."""
    from vercel_sync.observability import logger

    run_id = run_id or f"scheduled-{datetime.now(UTC):%Y%m%d-%H%M%S}"
    options = ReconcileOptions(settings.apply, settings.remove_orphans, settings.removal_mode)
    stop = threading.Event()

    def report(outcome: InstallationOutcome) -> None:
        logger.info("reconciled an installation", extra=log_fields(outcome))
        emit_metrics(outcome)
        if context is not None and context.get_remaining_time_in_millis() < STOP_MARGIN_MS:
            stop.set()

    state, outcomes = run_reconcile(parts, settings, options, run_id=run_id, on_outcome=report, stop=stop)
    counts = {str(kind): count for kind, count in totals([o.report for o in outcomes]).items()}
    summary: dict[str, Any] = {
        "runId": run_id,
        "installations": len(state.installations),
        "reconciled": len(outcomes),
        "notReached": len(state.pending) - sum(1 for o in outcomes if o.report.error),
        "failed": sum(1 for o in outcomes if o.report.error),
        **counts,
        "apply": settings.apply,
        "removeOrphans": settings.remove_orphans,
    }
    logger.info("reconcile run finished", extra=summary)
    if summary["failed"]:
        # An error of the function: its errors alarm is the one to watch.
        raise ReconcileRunError(f"{summary['failed']} installation(s) could not be compared; see the log lines above")
    return summary


class ReconcileRunError(Exception):
    """The scheduled run could not compare some installation."""
