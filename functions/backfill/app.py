"""BackfillFunction: every partner table item, sent through the partner events queue (resumable).

Event: ``{"runId": "initial-2026-11", "segments": 8, "installation": null, "product": null,
"dryRun": false}``. See docs/operations.md, "Backfill".
"""

from typing import Any

from vercel_sync import wiring
from vercel_sync.observability import logger


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    run_backfill_function = wiring.backfill_runner.get()
    return run_backfill_function(event, context)
