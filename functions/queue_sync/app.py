"""QueueSyncFunction: partner events (SQS, standard or FIFO) -> Vercel Import Resource."""

from typing import Any

from vercel_sync.observability import logger, metrics, tracer
from vercel_sync.sources import handle_queue_event
from vercel_sync.wiring import sync_service


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return handle_queue_event(event, context, sync_service.get())
