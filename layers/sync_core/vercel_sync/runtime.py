"""Wiring per container: the sync service is built once, on first use, from the environment.

Built lazily so an import costs nothing beyond the modules, and reused so the HTTP
connection pool and the secrets cache survive across invocations of a warm container. Tests
and the local runner hand in their own service with :func:`set_sync_service`.
"""

from __future__ import annotations

import os
from typing import Any

from vercel_sync.deadline import TimeBudget
from vercel_sync.pipeline import SyncService
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
    # used (a stream batch never needs SQS unless a record is parked), one DynamoDB client (per
    # timeout tier) for the state table and the rate limiter.
    aws = AwsClients()
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
        from vercel_sync.adapters.bucket_table import build_rate_limiter

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


SAFETY_MARGIN_MS = 1_000  # returning the batch response and flushing logs and metrics


def time_budget(settings: Settings) -> TimeBudget:
    """The least time each slow step is worth starting with: an AWS call at its shortest timeouts
    (parking a record is one), the shortest Vercel call worth making."""
    from vercel_sync.adapters.aws_clients import SHORTEST_AWS_TIMEOUTS
    from vercel_sync.adapters.vercel import SHORTEST_CALL_SECONDS

    return TimeBudget(
        aws_call_ms=int(SHORTEST_AWS_TIMEOUTS.worst_case_seconds * 1000),
        vercel_call_ms=int(min(SHORTEST_CALL_SECONDS, settings.http_timeout_seconds) * 1000),
        margin_ms=SAFETY_MARGIN_MS,
    )


def aws_client_config() -> object:
    """The longest of the clients' timeout tiers, for a client of its own (the rate limiter's bench)."""
    from vercel_sync.adapters.aws_clients import AWS_TIMEOUT_TIERS

    return AWS_TIMEOUT_TIERS[0].config()


def get_sync_service() -> SyncService:
    global _service
    if _service is None:
        _service = build_sync_service(Settings.from_env(os.environ))
    return _service


def set_sync_service(service: SyncService | None) -> None:
    """Use ``service`` for the following invocations (``None``: build from the environment again)."""
    global _service
    _service = service
