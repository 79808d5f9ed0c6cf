"""`make run`: every events/ file through its real handler over real HTTP (moto server, the emulator)."""

from __future__ import annotations

import json

import pytest

from tests.conftest import LogCapture
from tests.fakes import EVENTS
from tests.leak_scan import register_secret
from tools.run_events import LocalStack, run

pytestmark = pytest.mark.integration


def test_every_event_file_syncs_end_to_end(capfd: pytest.CaptureFixture[str], captured_logs: LogCapture) -> None:
    lines: list[str] = []
    stack = LocalStack()
    register_secret(*stack.secret_values(), label="make run's token and secret values")
    files = sorted(p for p in EVENTS.glob("*.json") if not p.name.startswith("env."))

    code = run(files, verbose=True, out=lines.append, stack=stack)

    assert code == 0, "\n".join(lines)
    # The files share one stack and one sync-state table, so later files meet the versions earlier
    # ones applied: changes to one resource in a batch are coalesced (one call), and the standard
    # queue's auth_tenant_42 and db_replica are older than the FIFO file's: skipped as stale. The
    # stream's REMOVE of cache/eu west#1 is ordered by its sequence number, so it applies.
    assert lines[-1].strip() == "7 imports sent; 0 problem(s)."
    held = {(i["installationId"], i["resourceId"]): i["body"] for i in stack.imported()}
    assert ("icfg_demo01", "cache/eu west#1") in held  # an id with "/", " " and "#" kept whole
    assert held[("icfg_demo01", "db_primary")]["status"] == "ready"
    assert held[("icfg_demo01", "db_replica")]["status"] == "uninstalled"  # FIFO's version 4 stays
    secrets = held[("icfg_demo01", "db_primary")]["secrets"]
    assert secrets[0] == {
        "name": "DATABASE_URL",
        "value": f"postgres://orders:{stack.password}@db.internal:5432/orders",
        "prefix": "ORDERS",
    }
    parked = [line for line in lines if "failed-records queue <-" in line]
    assert len(parked) == 6
    assert all("invalid_record" in line for line in parked)

    # Nothing printed, logged or queued holds the token or a secret value.
    captured = capfd.readouterr()
    emitted = "\n".join([*lines, *captured_logs.lines, captured.out, captured.err])
    assert '"message":"batch synced"' in emitted  # the logs were captured
    for value in stack.secret_values():
        assert value not in emitted


def test_a_refused_token_is_reported_as_a_problem() -> None:
    lines: list[str] = []
    stack = LocalStack(vercel_accepts="a-token-nobody-has")
    event_file = EVENTS / "sqs_standard_raw_sns_eventbridge.json"

    code = run([event_file], out=lines.append, stack=stack)

    assert code == 1
    response = json.loads(next(line for line in lines if "batch response" in line).split(": ", 1)[1])
    assert len(response["batchItemFailures"]) == 3


@pytest.mark.parametrize("verbose", [False, True], ids=["plain", "verbose"])
def test_metrics_lines_are_printed_only_with_verbose(
    verbose: bool, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from aws_lambda_powertools.metrics.provider import cold_start

    monkeypatch.setattr(cold_start, "is_cold_start", True)  # `make run` is a fresh process: a cold start
    lines: list[str] = []
    stack = LocalStack()
    register_secret(*stack.secret_values(), label="make run's token and secret values")

    code = run([EVENTS / "sqs_standard_raw_sns_eventbridge.json"], verbose=verbose, out=lines.append, stack=stack)

    assert code == 0, "\n".join(lines)
    printed = capfd.readouterr().out
    assert ('{"_aws":' in printed) is verbose, printed[-2000:]
