"""Per function, its service built once per container from the environment; tests and tools hand in their own.

Built lazily so an import costs nothing beyond the modules, and reused so the HTTP connection pool
and the secrets cache survive across invocations of a warm container.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any

from vercel_sync.deadline import TimeBudget
from vercel_sync.ports import RateLimiter
from vercel_sync.rotation.service import RotationService
from vercel_sync.settings import RateLimit, Settings
from vercel_sync.sync.service import SyncService


class Provider[T]:
    """A container's one <thing>, built on first use from the environment; tests hand in their own."""

    def __init__(self, build: Callable[[], T]) -> None:
        self._build = build
        self._value: T | None = None
        self._lock = threading.Lock()

    def get(self) -> T:
        value = self._value
        if value is None:
            with self._lock:
                if self._value is None:
                    self._value = self._build()
                value = self._value
        return value

    def set(self, value: T | None) -> None:
        """Use ``value`` for the following invocations (``None``: build from the environment again)."""
        with self._lock:
            self._value = value


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


def build_rotation_service(settings: Settings, *, rate_limiter: Any = _DEFAULT) -> RotationService:
    """The rotation service the settings describe (``rate_limiter=None``: no limit)."""
    from vercel_sync.adapters.aws_clients import AwsClients
    from vercel_sync.adapters.failed_records import SqsFailedRecordsQueue
    from vercel_sync.adapters.secret_index import DynamoDbSecretIndex
    from vercel_sync.adapters.secrets import SecretsManagerReader
    from vercel_sync.adapters.vercel import VercelClient
    from vercel_sync.observability import PowertoolsRotationObserver

    # One boto3 session and one client per service for the container, as the sync functions'.
    aws = AwsClients()
    if rate_limiter is _DEFAULT:
        from vercel_sync.adapters.rate_limiter import build_rate_limiter

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


sync_service = Provider(lambda: build_sync_service(Settings.from_env(os.environ)))
rotation_service = Provider(lambda: build_rotation_service(Settings.from_env(os.environ)))
