"""ReconcileFunction: in the template only with a schedule, least privilege; its run logs and meters
each installation and ends with an error when one could not be compared."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
from cfnlint.decode.cfn_yaml import loads

from tests.fakes import FakeSecrets
from vercel_sync.backfill.engine import Page, ScannedItem
from vercel_sync.errors import TransientSyncError
from vercel_sync.mapping import default_mapping
from vercel_sync.reconcile.function import ReconcileParts, ReconcileRunError, run_scheduled
from vercel_sync.reconcile.settings import ReconcileSettings

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE: dict[str, Any] = loads((ROOT / "template.yaml").read_text())
RESOURCES: dict[str, Any] = TEMPLATE["Resources"]
RECONCILE_RESOURCES = (
    "ReconcileLogGroup",
    "ReconcileFunction",
    "ReconcileRole",
    "ReconcileScheduleRule",
    "ReconcileInvokePermission",
    "ReconcileFailureQueue",
    "ReconcileFailureQueuePolicy",
    "ReconcileDriftAlarm",
    "ReconcileErrorsAlarm",
)


def test_the_scheduled_run_exists_only_with_a_schedule_and_is_off_by_default() -> None:
    assert TEMPLATE["Parameters"]["ReconcileSchedule"]["Default"] == ""
    assert TEMPLATE["Parameters"]["ReconcileApply"]["Default"] == "false"
    assert all(RESOURCES[name]["Condition"] == "ReconcileScheduled" for name in RECONCILE_RESOURCES)
    rule = RESOURCES["ReconcileScheduleRule"]["Properties"]
    assert rule["ScheduleExpression"] == {"Ref": "ReconcileSchedule"}


def test_its_role_sends_to_the_partner_queue_only_when_it_repairs() -> None:
    statements = RESOURCES["ReconcileRole"]["Properties"]["Policies"][1]["PolicyDocument"]["Statement"]
    text = json.dumps(statements)
    conditional = [s["Fn::If"] for s in statements if "Fn::If" in s]
    assert any(branch[0] == "ReconcileRepairs" and branch[1]["Action"] == "sqs:SendMessage" for branch in conditional)
    assert "lambda:InvokeFunction" not in text
    assert "ssm:" not in text
    plain = [s for s in statements if "Effect" in s]
    assert all(s["Action"] != "dynamodb:PutItem" or "SyncStateTable" in json.dumps(s) for s in plain)


def test_the_drift_alarm_watches_drift_on_two_periods_running() -> None:
    alarm = RESOURCES["ReconcileDriftAlarm"]["Properties"]
    assert (alarm["MetricName"], alarm["EvaluationPeriods"], alarm["DatapointsToAlarm"]) == ("ResourcesDrifted", 2, 2)


class Vercel:
    def list_resources(self, installation_id: str, *, token: str) -> list[dict[str, Any]]:
        if installation_id == "icfg_down":
            raise TransientSyncError("Vercel answered 503", http_status=503, retry_after_seconds=0)
        return [{"partnerId": "stray", "productId": "p", "name": "n", "status": "ready"}]


class Source:
    """A partner table of two installations' resources."""

    def approximate_item_count(self) -> int:
        return 2

    def scan_page(self, segment: int, total_segments: int, start_key: Any, limit: int) -> Page:
        items = [
            {
                "integrationConfigurationId": installation,
                "resourceId": "r1",
                "productId": "p",
                "name": "n",
                "status": "ready",
            }
            for installation in ("icfg_a", "icfg_down")
        ]
        return Page([ScannedItem({"k": {"S": str(i)}}, item) for i, item in enumerate(items)], None)


def test_the_scheduled_run_logs_and_meters_each_installation_and_fails_on_one_not_compared(
    capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    parts = ReconcileParts(Source(), Vercel(), FakeSecrets(), default_mapping(), None, None, None)  # type: ignore[arg-type]
    with pytest.raises(ReconcileRunError, match="1 installation"):
        run_scheduled(None, parts, ReconcileSettings(partner_table_name="partner"), "scheduled-test")
    documents = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    metrics = {d["installationId"]: d for d in documents if "_aws" in d}
    assert (metrics["icfg_a"]["ResourcesDrifted"], metrics["icfg_a"]["ResourcesMissingAtVercel"]) == ([2.0], [1.0])
    assert metrics["icfg_down"]["ReconcileInstallationsFailed"] == [1.0]
    # The log lines as records (where the logger's handler prints them depends on earlier tests).
    lines = {r.installationId: r for r in caplog.records if r.getMessage() == "reconciled an installation"}
    assert (lines["icfg_a"].missing, lines["icfg_a"].orphaned) == (1, 1)
    assert "503" in lines["icfg_down"].error


def test_a_resource_the_partner_created_while_the_run_went_on_is_not_removed_as_an_orphan() -> None:
    """The partner view is read when the run starts; "late" is created (and synced) after that, before its
    installation is reached. The run reads the table again before removing: "late" stays, "gone" goes."""
    from tests.fakes import FakeVercel
    from vercel_sync.reconcile.engine import ReconcileOptions
    from vercel_sync.reconcile.function import run_reconcile

    class GrowingTable:
        scans = 0

        def approximate_item_count(self) -> int:
            return 1

        def scan_page(self, segment: int, total_segments: int, start_key: Any, limit: int) -> Page:
            self.scans += 1
            ids = ["r1"] if self.scans == 1 else ["r1", "late"]
            items = [
                {
                    "integrationConfigurationId": "icfg_a",
                    "resourceId": rid,
                    "productId": "p",
                    "name": "n",
                    "status": "ready",
                }
                for rid in ids
            ]
            return Page([ScannedItem({"k": {"S": rid}}, item) for rid, item in zip(ids, items, strict=True)], None)

    class Listing(FakeVercel):
        def list_resources(self, installation_id: str, *, token: str) -> list[dict[str, Any]]:
            return [
                {"partnerId": rid, "productId": "p", "name": "n", "status": "ready"} for rid in ("r1", "late", "gone")
            ]

    vercel, table = Listing(), GrowingTable()
    parts = ReconcileParts(table, vercel, FakeSecrets(), default_mapping(), None, None, None)  # type: ignore[arg-type]
    settings = ReconcileSettings(partner_table_name="partner", removal_mode="delete")
    options = ReconcileOptions(remove_orphans=True, removal_mode="delete")
    _, (outcome,) = run_reconcile(parts, settings, options, run_id="late")
    assert [(c.resource_id, c.method) for c in vercel.calls] == [("gone", "DELETE")]
    assert outcome.orphans_removed == 1
