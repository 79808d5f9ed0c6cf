"""Wiring per container: the sync service is built once, on first use, from the environment.

Built lazily so an import costs nothing beyond the modules, and reused so the HTTP
connection pool and the secrets cache survive across invocations of a warm container. Tests
and the local runner hand in their own service with :func:`set_sync_service`.
"""

from __future__ import annotations

import os

from vercel_sync.pipeline import SyncService, TimeBudget
from vercel_sync.settings import Settings

_service: SyncService | None = None


def build_sync_service(settings: Settings) -> SyncService:
    from vercel_sync.adapters.failed_records import SqsFailedRecordsQueue
    from vercel_sync.adapters.secrets import SecretsManagerReader
    from vercel_sync.adapters.vercel import VercelClient
    from vercel_sync.observability import PowertoolsObserver

    return SyncService(
        vercel=VercelClient(
            settings.vercel_api_url,
            timeout_seconds=settings.http_timeout_seconds,
            max_connections=settings.max_concurrency,
        ),
        secrets=SecretsManagerReader(settings, boto_config=aws_client_config()),
        failed_records=(
            SqsFailedRecordsQueue(settings.failed_records_queue_url, boto_config=aws_client_config())
            if settings.failed_records_queue_url
            else None
        ),
        observer=PowertoolsObserver(),
        time_budget=time_budget(settings),
        park_stream_records_after_seconds=settings.stream_park_after_seconds,
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
