"""Powertools Logger, Metrics and Tracer for the functions, and the sync's and rotation's observers.

Log lines carry ids, never a payload, an event, a token or a secret value; metrics have no ids as dimensions.
"""

from __future__ import annotations

import logging
import os
import threading
import traceback
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.metrics.functions import is_metrics_disabled

from vercel_sync.changes import SourceChange
from vercel_sync.deadline import TimeBudget, time_left_ms
from vercel_sync.errors import PermanentSyncError, TransientSyncError
from vercel_sync.ports import Skip
from vercel_sync.redaction import truncate
from vercel_sync.rotation.events import RotationResult, RotationTarget, SecretChange

if TYPE_CHECKING:
    from vercel_sync.mapping import PartnerMapping
    from vercel_sync.rotation.service import RotationService

SERVICE_NAME = os.environ.get("POWERTOOLS_SERVICE_NAME", "vercel-resource-sync")
METRICS_NAMESPACE = os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "VercelResourceSync")

# The SDKs' loggers. At DEBUG, botocore logs whole requests and answers (GetSecretValue's
# SecretString) and httpcore each call's steps: pinned, so no root level lets that through.
SDK_LOGGERS = ("botocore", "boto3", "urllib3", "httpx", "httpcore")
SDK_LOG_LEVEL = logging.WARNING


def pin_sdk_loggers() -> None:
    """Whatever the root's level, the SDK loggers (and those below them) pass warnings and up only."""
    for name in SDK_LOGGERS:
        sdk_logger = logging.getLogger(name)
        if sdk_logger.level < SDK_LOG_LEVEL:  # NOTSET (0) too: that would defer to the root
            sdk_logger.setLevel(SDK_LOG_LEVEL)
    for name, existing in list(logging.root.manager.loggerDict.items()):
        if not isinstance(existing, logging.Logger) or "." not in name or name.split(".", 1)[0] not in SDK_LOGGERS:
            continue
        if logging.NOTSET < existing.level < SDK_LOG_LEVEL:
            existing.setLevel(logging.NOTSET)


pin_sdk_loggers()  # on import: every handler imports this module before any SDK call

logger = Logger(service=SERVICE_NAME)
metrics = Metrics(namespace=METRICS_NAMESPACE, service=SERVICE_NAME)


def tracing_enabled() -> bool:
    """Tracing is on only in Lambda (not SAM local) and unless POWERTOOLS_TRACE_DISABLED is true."""
    disabled = os.environ.get("POWERTOOLS_TRACE_DISABLED", "false").strip().lower() in {"1", "true", "yes", "on"}
    in_lambda = bool(os.environ.get("LAMBDA_TASK_ROOT")) and not os.environ.get("AWS_SAM_LOCAL")
    return in_lambda and not disabled


class DisabledTracer:
    """Powertools' Tracer with tracing off, without importing the X-Ray SDK (and botocore) at cold start."""

    def capture_lambda_handler(self, **_: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        return lambda handler: handler


tracer: Any = DisabledTracer()
if tracing_enabled():
    from aws_lambda_powertools import Tracer

    tracer = Tracer(service=SERVICE_NAME)


def trace_context_propagator() -> Callable[[Callable[[], Any]], Callable[[], Any]] | None:
    """With tracing on: wraps a worker-thread task so its AWS and HTTP calls join the invocation's
    trace (the X-Ray SDK keeps the current segment per thread). ``None`` with tracing off."""
    if not tracing_enabled():
        return None
    from aws_xray_sdk.core import xray_recorder

    def wrap(task: Callable[[], Any]) -> Callable[[], Any]:
        entity = xray_recorder.get_trace_entity()

        def run() -> Any:
            xray_recorder.set_trace_entity(entity)
            try:
                return task()
            finally:
                xray_recorder.clear_trace_entities()

        return run

    return wrap


# CloudWatch takes at most 100 values of one metric in one EMF document (Powertools flushes then).
EMF_MAX_VALUES = 100
# An invalid record's id can be anything; a log line keeps enough of it to find the record.
MAX_LOGGED_ID = 300


def _loggable(text: str | None) -> str | None:
    """An id as it can be logged: lone surrogates escaped, cut if huge."""
    if text is None:
        return None
    return truncate(text.encode("utf-8", "backslashreplace").decode("utf-8"), MAX_LOGGED_ID)


def _record_keys(change: SourceChange, mapping: PartnerMapping | None) -> dict[str, object]:
    installation_id, resource_id = change.ids(mapping)
    return {
        "integrationConfigurationId": _loggable(installation_id),
        "resourceId": _loggable(resource_id),
        "source": change.position.kind,
        "itemIdentifier": change.position.item_identifier,
    }


def _bug(error: Exception) -> dict[str, Any]:
    """The exception's type and where it was raised, not its message: it may quote a secret."""
    frames = traceback.extract_tb(error.__traceback__)
    where = [f"{frame.filename.rsplit('/', 1)[-1]}:{frame.lineno} {frame.name}" for frame in frames]
    return {"errorType": type(error).__name__, "raisedAt": where}


def _failure(error: TransientSyncError | PermanentSyncError) -> dict[str, Any]:
    return {"detail": error.message, "httpStatus": error.http_status}


class _Observer:
    """What the sync's and rotation's observers share. A count is a metric (the sync's adds them per batch)."""

    def _count(self, name: str) -> None:
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)

    def token_refreshed(self, integration_configuration_id: str) -> None:
        self._count("TokenRereads")
        extra = {"integrationConfigurationId": _loggable(integration_configuration_id)}
        logger.info("Vercel answered 401; re-read the installation token", extra=extra)

    def function_timeout_too_short(self, *, function_timeout_ms: int, budget: TimeBudget) -> None:
        """An error log and a metric: no record can sync until the timeout is raised."""
        timeout_s, least_s = function_timeout_ms / 1000, budget.least_function_timeout_ms / 1000
        metrics.add_metric(name="FunctionTimeoutTooShort", unit=MetricUnit.Count, value=1)
        logger.error(
            f"the function timeout ({timeout_s:g} s) is shorter than one record needs ({least_s:g} s, of which "
            f"{budget.park_ms / 1000:g} s to park it): every record goes back to its source until the timeout is "
            "raised (template parameter FunctionTimeoutSeconds)",
            extra={
                "functionTimeoutSeconds": timeout_s,
                "leastFunctionTimeoutSeconds": least_s,
                "parkSeconds": budget.park_ms / 1000,
            },
        )


class PowertoolsObserver(_Observer):
    """The sync's log lines and metrics. Counts become metrics once per batch (:meth:`batch_finished`):
    one ``add_metric`` per record would cost more than the record's work. Imports and skips are logged
    at DEBUG only; every failure, retry or parking is a WARNING. ``mapping``: the deployment's partner
    mapping, which reads the ids a log line names (by default the default mapping)."""

    def __init__(self, mapping: PartnerMapping | None = None) -> None:
        self._mapping = mapping
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        self._latencies_ms: list[float] = []

    def _count(self, name: str) -> None:
        with self._lock:
            self._counts[name] += 1

    def imported(self, change: SourceChange, *, latency_ms: float, calls: int) -> None:
        with self._lock:
            self._counts["ResourcesImported"] += 1
            self._latencies_ms.append(round(latency_ms, 1))
        if logger.log_level <= logging.DEBUG:
            extra = {**_record_keys(change, self._mapping), "latencyMs": round(latency_ms, 1), "calls": calls}
            logger.debug("imported resource into Vercel", extra=extra)

    def batch_finished(self, records: int) -> None:
        with self._lock:
            counts, self._counts = self._counts, Counter()
            latencies, self._latencies_ms = self._latencies_ms, []
        for name, value in counts.items():
            metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
        # Whole documents of EMF_MAX_VALUES latencies are printed here, as Powertools' own flush prints
        # them: add_metric formats the metric's whole value list into a debug message on every call.
        whole = len(latencies) - len(latencies) % EMF_MAX_VALUES
        if whole and not is_metrics_disabled():
            import json  # here, to leave the module's imports to the cold-start work

            for start in range(0, whole, EMF_MAX_VALUES):
                values = latencies[start : start + EMF_MAX_VALUES]
                metric = {"Unit": MetricUnit.Milliseconds.value, "StorageResolution": 60, "Value": values}
                document = metrics.serialize_metric_set(metrics={"VercelCallLatency": metric})
                print(json.dumps(document, separators=(",", ":")))  # the EMF line, as Powertools prints it
        for latency_ms in latencies[whole:]:
            metrics.add_metric(name="VercelCallLatency", unit=MetricUnit.Milliseconds, value=latency_ms)
        if records:
            camel = {name[:1].lower() + name[1:]: n for name, n in counts.items()}
            logger.info("batch synced", extra={"records": records, **camel})

    def skipped(self, change: SourceChange, why: Skip) -> None:
        metric, message = _SKIPS[why]
        self._count(metric)
        if logger.log_level <= logging.DEBUG:
            logger.debug(message, extra=_record_keys(change, self._mapping))

    def call_failed(self, change: SourceChange, error: TransientSyncError, *, retry_in_seconds: float | None) -> None:
        if error.http_status == 429:
            self._count("VercelThrottled")
        if retry_in_seconds is None:
            return  # the record's fate is logged by retrying() or parked()
        self._count("VercelCallRetries")
        extra = {**_record_keys(change, self._mapping), **_failure(error), "retryInSeconds": round(retry_in_seconds, 3)}
        logger.info("Vercel call failed; retrying", extra=extra)

    def parked(self, change: SourceChange, error: PermanentSyncError) -> None:
        self._count("RecordsFailedPermanently")
        # The reason, a low-cardinality dimension, in a metric of its own so the other metrics keep
        # only the service's. single_metric prints even with metrics disabled (tests, local runs).
        if not is_metrics_disabled():
            metric = single_metric(
                name="RecordsFailedByReason", unit=MetricUnit.Count, value=1, namespace=METRICS_NAMESPACE
            )
            with self._lock, metric as one:
                one.add_dimension(name="service", value=SERVICE_NAME)
                one.add_dimension(name="reason", value=error.reason)
        extra = {**_record_keys(change, self._mapping), "reason": error.reason, **_failure(error)}
        logger.warning("record cannot succeed; sent to the failed-records queue", extra=extra)

    def retrying(self, change: SourceChange, error: TransientSyncError) -> None:
        self._count("RecordsReturnedForRetry")
        extra = {**_record_keys(change, self._mapping), **_failure(error)}
        logger.warning("transient failure; record goes back to its source", extra=extra)

    def unexpected(self, change: SourceChange, error: Exception) -> None:
        self._count("RecordsFailedUnexpectedly")
        logger.error(
            "unexpected error; record goes back to its source",
            extra={**_record_keys(change, self._mapping), **_bug(error)},
        )


_SKIPS: dict[Skip, tuple[str, str]] = {  # why -> (metric, DEBUG log message)
    "unchanged": ("ResourcesSkippedUnchanged", "payload unchanged since the last import; no call"),
    "stale": ("ResourcesSkippedStale", "a version at least as new is already applied; skipped"),
    "coalesced": ("RecordsCoalesced", "superseded by a newer change to the same resource in this batch"),
    "not_a_resource": ("ItemsNotResources", "not a resource by the partner mapping; ignored"),
}


def handle_rotation_event(event: dict[str, Any], context: Any, service: RotationService) -> dict[str, Any]:
    """The rotation handler's body: a summary (counts, the secret's name) when done; raises when the
    event must be retried (Lambda's asynchronous retries, then its on-failure destination)."""
    bug: type[Exception] | None = None
    try:
        result = service.handle(event, time_left_ms=time_left_ms(context))
    except TransientSyncError as error:
        metrics.add_metric(name="RotationEventsRetried", unit=MetricUnit.Count, value=1)
        logger.warning("rotation sync incomplete; the event will be retried", extra={"detail": error.message})
        raise
    except Exception as error:  # noqa: BLE001 - a bug: logged without its message, then retried
        logger.error("unexpected error in rotation sync; the event will be retried", extra=_bug(error))
        bug = type(error)
    if bug is not None:
        # Raised outside the handler so the original (whose text may quote a secret) is not chained.
        raise TransientSyncError(f"unexpected {bug.__name__} in rotation sync (a bug; see the error log)")
    return result.summary()


class PowertoolsRotationObserver(_Observer):
    """One structured log line (ids and the secret's name, never a value) and a metric per outcome."""

    def ignored(self, why: str, change: SecretChange | None) -> None:
        logger.info("secret event ignored", extra={"why": why, "secretName": change.secret_name if change else None})

    def pushed(self, change: SecretChange, target: RotationTarget, *, calls: int, latency_ms: float) -> None:
        metrics.add_metric(name="ResourceSecretsUpdated", unit=MetricUnit.Count, value=1)
        extra = {**_target_keys(target), "secretName": change.secret_name, "calls": calls, "latencyMs": latency_ms}
        logger.info("updated the resource's secrets in Vercel", extra=extra)

    def call_failed(self, target: RotationTarget, error: TransientSyncError, *, retry_in_seconds: float | None) -> None:
        metrics.add_metric(name="VercelCallsFailedTransiently", unit=MetricUnit.Count, value=1)
        extra = {**_target_keys(target), **_failure(error), "retryInSeconds": retry_in_seconds}
        logger.warning("secrets update failed transiently", extra=extra)

    def parked(self, change: SecretChange | None, target: RotationTarget | None, error: PermanentSyncError) -> None:
        metrics.add_metric(name="RotationsFailedPermanently", unit=MetricUnit.Count, value=1)
        extra = {**_target_keys(target), "secretName": change.secret_name if change else None, "reason": error.reason}
        extra |= _failure(error)
        logger.warning("resource secrets cannot be updated; sent to the failed-records queue", extra=extra)

    def finished(self, change: SecretChange, result: RotationResult) -> None:
        logger.info("rotation sync finished", extra={**result.summary(), "eventName": change.event_name})


def _target_keys(target: RotationTarget | None) -> dict[str, Any]:
    if target is None:
        return {}
    return {"integrationConfigurationId": target.installation_id[:300], "resourceId": target.resource_id[:300]}
