"""ReconcileFunction: on its schedule (template parameter ReconcileSchedule), Vercel's view of every
installation against the partner table; repairs and orphan removal as its parameters say.
See docs/operations.md, "Reconcile"."""

from typing import Any

from vercel_sync import wiring
from vercel_sync.observability import logger
from vercel_sync.reconcile.function import run_scheduled


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    settings, parts = wiring.reconcile_parts.get()
    return run_scheduled(context, parts, settings)
