"""A reconcile run's report: a table for people, one log line and metrics per installation for CloudWatch."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from vercel_sync.reconcile.compare import DRIFT_KINDS, Kind
from vercel_sync.reconcile.engine import InstallationOutcome

COLUMNS = ("installation", "in step", "missing", "different", "orphaned", "repairs", "removed", "unreadable")
# Metric name per count (the alarm watches ResourcesDrifted).
METRIC_NAMES: dict[Kind, str] = {
    "in_step": "ResourcesInStep",
    "missing": "ResourcesMissingAtVercel",
    "different": "ResourcesDifferentAtVercel",
    "orphaned": "ResourcesOrphanedAtVercel",
}


def table(outcomes: Sequence[InstallationOutcome]) -> str:
    rows: list[tuple[str, ...]] = [COLUMNS]
    for outcome in outcomes:
        counts = outcome.report.counts()
        rows.append(
            (
                outcome.report.installation_id,
                *(str(counts[kind]) for kind in ("in_step", "missing", "different", "orphaned")),
                str(outcome.repairs_sent),
                str(outcome.orphans_removed),
                str(outcome.unreadable),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    lines = [
        "  ".join(
            cell.ljust(width) if i == 0 else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        )
        for row in rows
    ]
    return "\n".join(lines) + "\n"


def differences(outcomes: Sequence[InstallationOutcome]) -> list[str]:
    """One line per drifted resource: which way it drifted and, when different, in which fields."""
    lines = []
    for outcome in outcomes:
        if outcome.report.error:
            lines.append(f"{outcome.report.installation_id}: not compared: {outcome.report.error}")
        for finding in outcome.report.of_kind(*DRIFT_KINDS):
            fields = f" ({', '.join(finding.fields)})" if finding.fields else ""
            lines.append(f"{outcome.report.installation_id}/{finding.resource_id}: {finding.kind}{fields}")
    return lines


def log_fields(outcome: InstallationOutcome) -> dict[str, Any]:
    return {**outcome.to_dict(), "drifted": outcome.report.drift}


def emit_metrics(outcome: InstallationOutcome) -> None:
    """One EMF document per installation: the installation is a property, not a dimension (one metric
    per kind, however many installations; the document still says whose counts they are)."""
    from aws_lambda_powertools.metrics import MetricUnit

    from vercel_sync.observability import metrics

    counts = outcome.report.counts()
    for kind, name in METRIC_NAMES.items():
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=counts[kind])
    metrics.add_metric(name="ResourcesDrifted", unit=MetricUnit.Count, value=outcome.report.drift)
    metrics.add_metric(name="ReconcileRepairsSent", unit=MetricUnit.Count, value=outcome.repairs_sent)
    metrics.add_metric(name="ReconcileOrphansRemoved", unit=MetricUnit.Count, value=outcome.orphans_removed)
    metrics.add_metric(
        name="ReconcileInstallationsFailed", unit=MetricUnit.Count, value=int(bool(outcome.report.error))
    )
    metrics.add_metadata(key="installationId", value=outcome.report.installation_id)
    metrics.flush_metrics()
