"""Rotation sync's wiring per container and its logs and metrics (``rotation.py`` holds the rules).

The service is built once, on first use, from the same environment as the sync functions
(``Settings``), with the same adapters: the Vercel client, the Secrets Manager reader (cache
bypassed for the rotated secret), the failed-records queue, and the sync-state table's index.
Tests and the local runner hand in their own with :func:`set_rotation_service`.
"""

from __future__ import annotations

import os
import traceback
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from vercel_sync.deadline import TimeBudget
from vercel_sync.errors import PermanentSyncError, TransientSyncError
from vercel_sync.observability import logger, metrics, report_function_timeout_too_short
from vercel_sync.rotation import RateLimiter, RotationResult, RotationService, RotationTarget, SecretChange
from vercel_sync.settings import RateLimit, Settings

_service: RotationService | None = None


# Vercel limits secrets updates apart from imports: 240 per 60 s per installation.
SECRETS_UPDATE_RATE_LIMIT = RateLimit(calls=240, seconds=60)


class SecretsUpdateBuckets:
    """The shared rate limiter, on buckets of their own for secrets updates (``secrets-update/<id>``),
    so rotation neither spends the imports' calls nor exceeds its own limit."""

    def __init__(self, limiter: RateLimiter) -> None:
        self._limiter = limiter

    def acquire(self, installation_id: str, *, max_wait_seconds: float) -> bool:
        return self._limiter.acquire("secrets-update/" + installation_id, max_wait_seconds=max_wait_seconds)

    def pause(self, installation_id: str, seconds: float) -> None:
        self._limiter.pause("secrets-update/" + installation_id, seconds)


_DEFAULT: Any = object()


def build_rotation_service(settings: Settings, *, rate_limiter: Any = _DEFAULT) -> RotationService:
    """The rotation service the settings describe (``rate_limiter=None``: no limit)."""
    from vercel_sync.adapters.aws_clients import AwsClients
    from vercel_sync.adapters.failed_records import SqsFailedRecordsQueue
    from vercel_sync.adapters.secret_index import DynamoDbSecretIndex
    from vercel_sync.adapters.secrets import SecretsManagerReader
    from vercel_sync.adapters.vercel import VercelClient
    from vercel_sync.runtime import time_budget

    # One boto3 session and one client per service for the container, as the sync functions'.
    aws = AwsClients()
    if rate_limiter is _DEFAULT:
        from vercel_sync.adapters.bucket_table import build_rate_limiter

        shared = build_rate_limiter(
            settings.model_copy(update={"rate_limit": SECRETS_UPDATE_RATE_LIMIT}),
            client_factory=aws.factory("dynamodb"),
        )
        rate_limiter = SecretsUpdateBuckets(shared)

    return RotationService(
        settings=settings,
        index=(
            DynamoDbSecretIndex(settings.sync_state_table, client_factory=aws.factory("dynamodb"))
            if settings.sync_state_table
            else None
        ),
        secrets=SecretsManagerReader(settings, client_factory=aws.factory("secretsmanager")),
        vercel=VercelClient(
            settings.vercel_api_url,
            timeout_seconds=settings.http_timeout_seconds,
            max_connections=settings.max_concurrency,
        ),
        failed_records=(
            SqsFailedRecordsQueue(settings.failed_records_queue_url, client_factory=aws.factory("sqs"))
            if settings.failed_records_queue_url
            else None
        ),
        rate_limiter=rate_limiter,
        observer=PowertoolsRotationObserver(),
        time_budget=time_budget(settings),
    )


def get_rotation_service() -> RotationService:
    global _service
    if _service is None:
        _service = build_rotation_service(Settings.from_env(os.environ))
    return _service


def set_rotation_service(service: RotationService | None) -> None:
    """Use ``service`` for the following invocations (``None``: build from the environment again)."""
    global _service
    _service = service


def handle_rotation_event(event: dict[str, Any], context: Any, service: RotationService) -> dict[str, Any]:
    """The handler's body: a summary (counts, the secret's name) when done; raises when the event
    must be retried (Lambda's asynchronous retries, then its on-failure destination)."""
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    time_left_ms = remaining() if callable(remaining) else None
    bug: type[Exception] | None = None
    try:
        result = service.handle(event, time_left_ms=time_left_ms)
    except TransientSyncError as error:
        metrics.add_metric(name="RotationEventsRetried", unit=MetricUnit.Count, value=1)
        logger.warning("rotation sync incomplete; the event will be retried", extra={"detail": error.message})
        raise
    except Exception as error:  # noqa: BLE001 - a bug: logged without its message, then retried
        frames = traceback.extract_tb(error.__traceback__)
        logger.error(
            "unexpected error in rotation sync; the event will be retried",
            extra={
                "errorType": type(error).__name__,
                "raisedAt": [f"{frame.filename.rsplit('/', 1)[-1]}:{frame.lineno} {frame.name}" for frame in frames],
            },
        )
        bug = type(error)
    if bug is not None:
        # Raised outside the handler so the original (whose text may quote a secret) is not chained.
        raise TransientSyncError(f"unexpected {bug.__name__} in rotation sync (a bug; see the error log)")
    return result.summary()


def _target_keys(target: RotationTarget) -> dict[str, Any]:
    return {"integrationConfigurationId": target.installation_id[:300], "resourceId": target.resource_id[:300]}


class PowertoolsRotationObserver:
    """One structured log line (ids and the secret's name, never a value) and a metric per outcome."""

    def ignored(self, why: str, change: SecretChange | None) -> None:
        logger.info(
            "secret event ignored",
            extra={"why": why, "secretName": change.secret_name if change else None},
        )

    def pushed(self, change: SecretChange, target: RotationTarget, *, calls: int, latency_ms: float) -> None:
        metrics.add_metric(name="ResourceSecretsUpdated", unit=MetricUnit.Count, value=1)
        logger.info(
            "updated the resource's secrets in Vercel",
            extra={**_target_keys(target), "secretName": change.secret_name, "calls": calls, "latencyMs": latency_ms},
        )

    def call_failed(self, target: RotationTarget, error: TransientSyncError, *, retry_in_seconds: float | None) -> None:
        metrics.add_metric(name="VercelCallsFailedTransiently", unit=MetricUnit.Count, value=1)
        logger.warning(
            "secrets update failed transiently",
            extra={
                **_target_keys(target),
                "detail": error.message,
                "httpStatus": error.http_status,
                "retryInSeconds": retry_in_seconds,
            },
        )

    def parked(self, change: SecretChange | None, target: RotationTarget | None, error: PermanentSyncError) -> None:
        metrics.add_metric(name="RotationsFailedPermanently", unit=MetricUnit.Count, value=1)
        logger.warning(
            "resource secrets cannot be updated; sent to the failed-records queue",
            extra={
                **(_target_keys(target) if target else {}),
                "secretName": change.secret_name if change else None,
                "reason": error.reason,
                "detail": error.message,
                "httpStatus": error.http_status,
            },
        )

    def token_refreshed(self, integration_configuration_id: str) -> None:
        metrics.add_metric(name="TokenRereads", unit=MetricUnit.Count, value=1)
        logger.info(
            "Vercel answered 401; re-read the installation token",
            extra={"integrationConfigurationId": integration_configuration_id},
        )

    def finished(self, change: SecretChange, result: RotationResult) -> None:
        logger.info("rotation sync finished", extra={**result.summary(), "eventName": change.event_name})

    def function_timeout_too_short(self, *, function_timeout_ms: int, budget: TimeBudget) -> None:
        report_function_timeout_too_short(function_timeout_ms=function_timeout_ms, budget=budget)
