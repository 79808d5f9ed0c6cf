"""Each function's service, built on first use and kept for the container (its connection pool and
secrets cache serve every invocation); tests and tools hand in their own."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from vercel_sync.backfill.settings import BackfillSettings
from vercel_sync.deadline import TimeBudget
from vercel_sync.errors import ConfigurationError
from vercel_sync.ratelimit.operations import SecretsUpdateBuckets
from vercel_sync.rotation.service import RotationAdapters, RotationService
from vercel_sync.settings import RotationSettings, Settings, SyncSettings
from vercel_sync.sync.service import Adapters, SyncService, Tuning

if TYPE_CHECKING:
    from vercel_sync.adapters.aws_clients import AwsClients
    from vercel_sync.backfill.function import BackfillRunner
    from vercel_sync.mapping import PartnerMapping
    from vercel_sync.reconcile.function import ReconcileParts
    from vercel_sync.reconcile.settings import ReconcileSettings


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


def build_sync_service(settings: SyncSettings, *, mapping: PartnerMapping | None = None, **given: Any) -> SyncService:
    """The sync functions' service; an adapter given by name (:class:`Adapters`) replaces the one the
    settings describe (``None`` switches an optional one off: ``failed_records``, ``state_store``, ...).
    ``mapping``: the partner mapping, else the one the settings name (:func:`load_partner_mapping`)."""
    from vercel_sync.adapters.aws_clients import AwsClients
    from vercel_sync.adapters.source_queue import SqsSourceQueue
    from vercel_sync.adapters.state_table import DynamoDbStateStore
    from vercel_sync.observability import PowertoolsObserver, trace_context_propagator

    aws, table = AwsClients(), settings.sync_state_table
    mapping = mapping or load_partner_mapping(settings, aws)
    builders: dict[str, Callable[[], Any]] = {
        **_shared_adapters(settings, aws),
        "state_store": lambda: DynamoDbStateStore(table, client_factory=aws.factory("dynamodb")) if table else None,
        "observer": lambda: PowertoolsObserver(mapping),
        "source_queue": lambda: SqsSourceQueue(client_factory=aws.factory("sqs")),
        "wrap_task": trace_context_propagator,
    }
    if unknown := set(given) - set(builders):
        raise TypeError(f"not an adapter of the sync: {', '.join(sorted(unknown))}")
    adapters = Adapters(**{name: given[name] if name in given else build() for name, build in builders.items()})
    tuning = Tuning(
        max_concurrency=settings.max_concurrency,
        time_budget=time_budget(settings),
        park_stream_records_after_seconds=settings.stream_park_after_seconds,
        call_interval_seconds=settings.rate_limit.seconds / settings.rate_limit.calls,
        removal_mode=settings.removal_mode,
    )
    return SyncService(adapters, tuning, mapping=mapping)


def load_partner_mapping(settings: SyncSettings | BackfillSettings, aws: AwsClients) -> PartnerMapping:
    """The deployment's partner mapping, read and validated once: ``PARTNER_MAPPING_FILE``, else the SSM
    parameter ``PARTNER_MAPPING_PARAMETER`` (Powertools Parameters), else the shipped default."""
    from vercel_sync.mapping import default_mapping, parse_mapping, read_mapping_file

    if settings.partner_mapping_file:
        return read_mapping_file(settings.partner_mapping_file)
    name = settings.partner_mapping_parameter
    if not name:
        return default_mapping()
    from aws_lambda_powertools.utilities.parameters import SSMProvider

    try:
        text = SSMProvider(boto3_client=aws.tier_client("ssm", 0)).get(name)
    except Exception as error:  # noqa: BLE001 - any failure: the batch goes back while it is fixed
        raise ConfigurationError(f"SSM parameter {name}: cannot be read ({type(error).__name__})") from None
    return parse_mapping(str(text), f"SSM parameter {name}")


def build_rotation_service(settings: RotationSettings, **given: Any) -> RotationService:
    """Rotation sync's service; the one adapter it can be given is ``rate_limiter`` (``None``: no limit)."""
    from vercel_sync.adapters.aws_clients import AwsClients
    from vercel_sync.adapters.secret_index import DynamoDbSecretIndex
    from vercel_sync.observability import PowertoolsRotationObserver

    if unknown := set(given) - {"rate_limiter"}:
        raise TypeError(f"not an adapter rotation is given: {', '.join(sorted(unknown))}")
    aws, table = AwsClients(), settings.sync_state_table
    shared = _shared_adapters(settings, aws)
    if "rate_limiter" not in given:
        given["rate_limiter"] = SecretsUpdateBuckets(shared["rate_limiter"]())
    adapters = RotationAdapters(
        index=DynamoDbSecretIndex(table, client_factory=aws.factory("dynamodb")) if table else None,
        secrets=shared["secrets"](),
        vercel=shared["vercel"](),
        failed_records=shared["failed_records"](),
        rate_limiter=given["rate_limiter"],
        observer=PowertoolsRotationObserver(),
    )
    return RotationService(settings, adapters, time_budget=time_budget(settings))


def _shared_adapters(settings: Settings, aws: AwsClients) -> dict[str, Callable[[], Any]]:
    """The builders of the adapters the sync and rotation both take, by their names there."""
    from vercel_sync.adapters.bucket_table import build_rate_limiter
    from vercel_sync.adapters.failed_records import SqsFailedRecordsQueue
    from vercel_sync.adapters.secrets import SecretsManagerReader
    from vercel_sync.adapters.vercel import VercelClient

    queue_url = settings.failed_records_queue_url

    def _secret_store(reader: SecretsManagerReader) -> Any:
        """Long-lived: the reader itself; short-lived: tokens from the token endpoint, the rest from the reader."""
        if not settings.short_lived_tokens:
            return reader
        from vercel_sync.adapters.installation_tokens import ShortLivedTokens, TokenEndpoint

        endpoint = TokenEndpoint(
            settings.token_url,
            installation_field=settings.token_installation_field,
            timeout_seconds=settings.http_timeout_seconds,
        )
        return ShortLivedTokens(reader, endpoint, margin_seconds=settings.token_refresh_margin_seconds)

    return {
        "vercel": lambda: VercelClient(
            settings.vercel_api_url,
            timeout_seconds=settings.http_timeout_seconds,
            max_connections=settings.max_concurrency,
        ),
        "secrets": lambda: _secret_store(SecretsManagerReader(settings, client_factory=aws.factory("secretsmanager"))),
        "failed_records": lambda: (
            SqsFailedRecordsQueue(queue_url, client_factory=aws.factory("sqs")) if queue_url else None
        ),
        # Shared through the state table when there is one, else per container.
        "rate_limiter": lambda: build_rate_limiter(settings, client_factory=aws.factory("dynamodb")),
    }


def build_backfill_runner(settings: BackfillSettings) -> BackfillRunner:
    """BackfillFunction's runner on AWS: one boto3 session, patient clients, built on first use."""
    from vercel_sync.adapters.aws_clients import PATIENT_AWS_TIMEOUTS, AwsClients
    from vercel_sync.adapters.checkpoint_table import StateTableCheckpoints
    from vercel_sync.adapters.lambda_invoker import LambdaInvoker
    from vercel_sync.adapters.partner_table import DynamoDBScanner
    from vercel_sync.adapters.queue_sender import SqsSender
    from vercel_sync.adapters.source_queue import queue_url_from_arn
    from vercel_sync.backfill.checkpoints import BackfillError
    from vercel_sync.backfill.function import BackfillRunner
    from vercel_sync.observability import logger

    aws = AwsClients(tiers=(PATIENT_AWS_TIMEOUTS,))
    if not settings.queue_url and settings.queue_arn:
        if (url := queue_url_from_arn(settings.queue_arn)) is None:
            raise BackfillError(f"not an SQS queue ARN: {settings.queue_arn!r}")
        settings = settings.model_copy(update={"queue_url": url})
    queue_url = settings.queue_url or ""
    return BackfillRunner(
        settings,
        source=DynamoDBScanner(settings.table_name, client_factory=aws.factory("dynamodb")),
        sink_for=lambda run_id: SqsSender(queue_url, run_id=run_id, client_factory=aws.factory("sqs")),
        store=StateTableCheckpoints(settings.state_table, client_factory=aws.factory("dynamodb")),
        invoker=LambdaInvoker(client_factory=aws.factory("lambda")),
        log=lambda message, extra: logger.info(message, extra=extra),
        mapping=load_partner_mapping(settings, aws),
    )


def build_reconcile_parts(settings: ReconcileSettings, *, apply: bool) -> ReconcileParts:
    """A reconcile run's adapters: the sync's token reader and Vercel client, the shared rate limiter
    (imports and deletions at their rate, lists in ``list/<id>`` buckets at Vercel's retrieval rate),
    and with ``apply`` the partner events queue, each message marked a repair."""
    from vercel_sync.adapters.aws_clients import PATIENT_AWS_TIMEOUTS, AwsClients
    from vercel_sync.adapters.bucket_table import build_rate_limiter
    from vercel_sync.adapters.partner_table import DynamoDBScanner
    from vercel_sync.adapters.queue_sender import SqsSender
    from vercel_sync.reconcile.function import ReconcileParts
    from vercel_sync.reconcile.settings import LIST_RATE_LIMIT

    aws = AwsClients(tiers=(PATIENT_AWS_TIMEOUTS,))
    shared = _shared_adapters(settings, aws)
    listing = settings.model_copy(update={"rate_limit": LIST_RATE_LIMIT})
    from vercel_sync.adapters.source_queue import queue_url_from_arn

    arn = settings.partner_events_queue_arn
    queue_url = settings.partner_events_queue_url or (queue_url_from_arn(arn) if arn else None) or ""
    if apply and not queue_url:
        raise ConfigurationError("a reconcile run that repairs needs PARTNER_EVENTS_QUEUE_URL (or _ARN)")
    return ReconcileParts(
        source=DynamoDBScanner(settings.partner_table_name, client_factory=aws.factory("dynamodb")),
        vercel=shared["vercel"](),
        secrets=shared["secrets"](),
        mapping=load_partner_mapping(settings, aws),
        import_limiter=shared["rate_limiter"](),
        list_limiter=build_rate_limiter(listing, client_factory=aws.factory("dynamodb")),
        repair_sink=SqsSender(queue_url, repair=True, client_factory=aws.factory("sqs")) if apply else None,
    )


def time_budget(settings: Settings) -> TimeBudget:
    from vercel_sync.adapters.aws_clients import SHORTEST_AWS_TIMEOUTS
    from vercel_sync.adapters.vercel import SHORTEST_CALL_SECONDS

    return TimeBudget(
        aws_call_ms=int(SHORTEST_AWS_TIMEOUTS.worst_case_seconds * 1000),
        vercel_call_ms=int(min(SHORTEST_CALL_SECONDS, settings.http_timeout_seconds) * 1000),
    )


def aws_client_config() -> object:
    """The longest of the clients' timeout tiers, for a client of its own (the rate limiter's bench)."""
    from vercel_sync.adapters.aws_clients import AWS_TIMEOUT_TIERS

    return AWS_TIMEOUT_TIERS[0].config()


sync_service = Provider(lambda: build_sync_service(SyncSettings.from_env(os.environ)))
rotation_service = Provider(lambda: build_rotation_service(RotationSettings.from_env(os.environ)))
backfill_runner = Provider(lambda: build_backfill_runner(BackfillSettings.from_env(os.environ)))


def _reconcile_parts() -> tuple[ReconcileSettings, ReconcileParts]:
    from vercel_sync.reconcile.settings import ReconcileSettings

    settings = ReconcileSettings.from_env(os.environ)
    return settings, build_reconcile_parts(settings, apply=settings.apply)


reconcile_parts = Provider(_reconcile_parts)
