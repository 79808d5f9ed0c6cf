"""Wiring per container: the sync service is built once, on first use, from the environment.

Built lazily so an import costs nothing beyond the modules, and reused so the HTTP
connection pool and the secrets cache survive across invocations of a warm container. Tests
and the local runner hand in their own service with :func:`set_sync_service`.
"""

from __future__ import annotations

import os
from typing import Any

from vercel_sync.pipeline import SyncService, TimeBudget
from vercel_sync.settings import Settings

_service: SyncService | None = None


_DEFAULT: Any = object()


def build_sync_service(
    settings: Settings,
    *,
    vercel: Any = _DEFAULT,
    secrets: Any = _DEFAULT,
    failed_records: Any = _DEFAULT,
    state_store: Any = _DEFAULT,
    rate_limiter: Any = _DEFAULT,
    observer: Any = _DEFAULT,
) -> SyncService:
    """The service the settings describe; any adapter given replaces the one built from them
    (``None`` switches an optional one off: ``failed_records``, ``state_store``, ``rate_limiter``)."""
    from vercel_sync.adapters.aws_clients import AwsClients
    from vercel_sync.adapters.source_queue import SqsSourceQueue
    from vercel_sync.observability import PowertoolsObserver, trace_context_propagator

    # One boto3 session for every AWS client of the container, each client built when first
    # used (a stream batch never needs SQS unless a record is parked), one DynamoDB client
    # for the state table and the rate limiter.
    aws = AwsClients(aws_client_config())
    if vercel is _DEFAULT:
        from vercel_sync.adapters.vercel import VercelClient

        vercel = VercelClient(
            settings.vercel_api_url,
            timeout_seconds=settings.http_timeout_seconds,
            max_connections=settings.max_concurrency,
        )
    if secrets is _DEFAULT:
        from vercel_sync.adapters.secrets import SecretsManagerReader

        secrets = SecretsManagerReader(settings, client_factory=aws.factory("secretsmanager"))
    if failed_records is _DEFAULT:
        from vercel_sync.adapters.failed_records import SqsFailedRecordsQueue

        failed_records = (
            SqsFailedRecordsQueue(settings.failed_records_queue_url, client_factory=aws.factory("sqs"))
            if settings.failed_records_queue_url
            else None
        )
    if state_store is _DEFAULT:
        from vercel_sync.adapters.state_table import DynamoDbStateStore

        state_store = (
            DynamoDbStateStore(settings.sync_state_table, client_factory=aws.factory("dynamodb"))
            if settings.sync_state_table
            else None
        )
    if rate_limiter is _DEFAULT:
        from vercel_sync.adapters.rate_limiter import build_rate_limiter

        # Shared through the state table when there is one, else per container.
        rate_limiter = build_rate_limiter(settings, client_factory=aws.factory("dynamodb"))
    return SyncService(
        vercel=vercel,
        secrets=secrets,
        failed_records=failed_records,
        observer=PowertoolsObserver() if observer is _DEFAULT else observer,
        state_store=state_store,
        rate_limiter=rate_limiter,
        max_concurrency=settings.max_concurrency,
        time_budget=time_budget(settings),
        park_stream_records_after_seconds=settings.stream_park_after_seconds,
        wrap_task=trace_context_propagator(),
        call_interval_seconds=settings.rate_limit.seconds / settings.rate_limit.calls,
        source_queue=SqsSourceQueue(client_factory=aws.factory("sqs")),
    )


# Botocore's defaults (60 s timeouts, legacy retries) could outlast the invocation: short
# timeouts and one retry (standard mode: its first backoff is at most 1 s), so a read's worst
# case is known and small. Secrets Manager answers in milliseconds when it is well.
AWS_CONNECT_TIMEOUT_SECONDS = 1
AWS_READ_TIMEOUT_SECONDS = 3
AWS_MAX_ATTEMPTS = 2
AWS_RETRY_BACKOFF_SECONDS = 1
SAFETY_MARGIN_MS = 1_000


def time_budget(settings: Settings) -> TimeBudget:
    """The worst case of each slow step, from the timeouts the adapters are built with."""
    from vercel_sync.adapters.vercel import worst_case_call_seconds

    aws_read_seconds = (
        AWS_MAX_ATTEMPTS * (AWS_CONNECT_TIMEOUT_SECONDS + AWS_READ_TIMEOUT_SECONDS)
        + (AWS_MAX_ATTEMPTS - 1) * AWS_RETRY_BACKOFF_SECONDS
    )
    return TimeBudget(
        aws_read_ms=aws_read_seconds * 1000,
        vercel_call_ms=int(worst_case_call_seconds(settings.http_timeout_seconds) * 1000),
        margin_ms=SAFETY_MARGIN_MS,
    )


def aws_client_config() -> object:
    from botocore.config import Config

    return Config(
        connect_timeout=AWS_CONNECT_TIMEOUT_SECONDS,
        read_timeout=AWS_READ_TIMEOUT_SECONDS,
        retries={"mode": "standard", "max_attempts": AWS_MAX_ATTEMPTS},
    )


def get_sync_service() -> SyncService:
    global _service
    if _service is None:
        _service = build_sync_service(Settings.from_env(os.environ))
    return _service


def set_sync_service(service: SyncService | None) -> None:
    """Use ``service`` for the following invocations (``None``: build from the environment again)."""
    global _service
    _service = service
