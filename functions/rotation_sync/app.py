"""RotationSyncFunction: a resource secret changed (EventBridge) -> Vercel Update Resource Secrets."""

from typing import Any

from vercel_sync.observability import handle_rotation_event, logger, metrics, tracer
from vercel_sync.wiring import rotation_service


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return handle_rotation_event(event, context, rotation_service.get())
