"""One wiring shape for the functions: per function, its service built once per container from
that function's settings (on first use), and an override for tests and the local runner."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from vercel_sync.backfill.settings import BackfillSettings

if TYPE_CHECKING:
    from vercel_sync.backfill.function import BackfillRunner


class Provider[T]:
    """A container's one <thing>, built on first use from the environment; tests hand in their own."""

    def __init__(self, build: Callable[[], T]) -> None:
        self._build = build
        self._value: T | None = None
        self._lock = threading.Lock()

    def get(self) -> T:
        with self._lock:
            if self._value is None:
                self._value = self._build()
            return self._value

    def set(self, value: T | None) -> None:
        with self._lock:
            self._value = value


def build_backfill_runner(settings: BackfillSettings) -> BackfillRunner:
    """BackfillFunction's runner on AWS: one boto3 session, patient clients, built on first use."""
    from vercel_sync.adapters.aws_clients import PATIENT_AWS_TIMEOUTS, AwsClients
    from vercel_sync.adapters.checkpoint_table import StateTableCheckpoints
    from vercel_sync.adapters.lambda_invoker import LambdaInvoker
    from vercel_sync.adapters.partner_table import DynamoDBScanner
    from vercel_sync.adapters.queue_sender import SqsSender, queue_url_from_arn
    from vercel_sync.backfill.function import BackfillRunner
    from vercel_sync.observability import logger

    aws = AwsClients(tiers=(PATIENT_AWS_TIMEOUTS,))
    if not settings.queue_url and settings.queue_arn:
        url = queue_url_from_arn(settings.queue_arn, client=aws.client("sqs"))
        settings = settings.model_copy(update={"queue_url": url})
    queue_url = settings.queue_url or ""
    return BackfillRunner(
        settings,
        source=DynamoDBScanner(settings.table_name, client_factory=aws.factory("dynamodb")),
        sink_for=lambda run_id: SqsSender(queue_url, run_id=run_id, client_factory=aws.factory("sqs")),
        store=StateTableCheckpoints(settings.state_table, client_factory=aws.factory("dynamodb")),
        invoker=LambdaInvoker(client_factory=aws.factory("lambda")),
        log=lambda message, extra: logger.info(message, extra=extra),
    )


backfill_runner = Provider(lambda: build_backfill_runner(BackfillSettings.from_env(os.environ)))
