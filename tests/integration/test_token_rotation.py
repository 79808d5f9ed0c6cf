"""The installation token is rotated with Vercel's credentials/rotate call and stored in Secrets
Manager while the sync runs (``tools/rotate_token.py``, the README's procedure): no record fails
for good. The old token is revoked at once (``--revoke-after 0``), so the functions still holding it
meet a 401, re-read the secret and carry on.
"""

from __future__ import annotations

import threading
import time
from types import ModuleType

import httpx
import pytest

from local_aws.provision import drain_json_messages
from local_runner import QueuePoller, Runner, RunSummary, StreamPoller
from tests.integration.conftest import INSTALLATION_ID, LocalStack
from tests.integration.support import put_item, record, send
from tests.leak_scan import register_secret
from tools.rotate_token import rotate_installation_token
from vercel_sync.settings import Settings

pytestmark = pytest.mark.integration

CLIENT_SECRET = "integration-client-secret-for-tests"


def wait_until(condition: object, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_rotating_the_token_while_syncs_run_loses_no_record(
    local_stack: LocalStack, handlers: dict[str, ModuleType]
) -> None:
    stack, emulator = local_stack, local_stack.emulator
    pollers = [
        StreamPoller(
            stack.aws["dynamodbstreams"],
            stack.resources.tables["PartnerTable"].stream_arn,
            handlers["stream_sync"].lambda_handler,
            retry_delay_seconds=0.1,
        ),
        QueuePoller(stack.aws["sqs"], stack.queue_url("PartnerEventsQueue"), handlers["queue_sync"].lambda_handler),
    ]
    runner = Runner(pollers, idle_sleep_seconds=0.05)
    stop = threading.Event()
    summaries: list[RunSummary] = []
    crashed: list[str] = []

    def sync_until_stopped() -> None:
        try:
            summaries.append(runner.run_forever(stop))
        except Exception as exc:  # noqa: BLE001 - reported by the test below, not lost in the thread
            crashed.append(type(exc).__name__)

    syncing = threading.Thread(target=sync_until_stopped, daemon=True)
    syncing.start()
    try:
        # Changes arrive before, during and after the rotation.
        for n in range(6):
            put_item(stack, record(f"before_{n}"))
            send(stack, record(f"queued_before_{n}"), group=f"g{n}")
        wait_until(lambda: emulator.held_resource(INSTALLATION_ID, "before_0") is not None)  # the token is cached

        lines: list[str] = []
        with httpx.Client(timeout=5) as http:
            rotate_installation_token(
                INSTALLATION_ID,
                settings=Settings(vercel_api_url=emulator.url),
                client_secret=CLIENT_SECRET,
                secretsmanager=stack.aws["secretsmanager"],
                http=http,
                revoke_after_seconds=0,
                out=lines.append,
            )
        assert lines[-1].startswith("5/5 revoked the old token")
        assert emulator.accepted_tokens(INSTALLATION_ID) == 1  # only the new one works now
        new_token = stack.aws["secretsmanager"].get_secret_value(
            SecretId=stack.resources.token_secret_name(INSTALLATION_ID)
        )
        register_secret(new_token["SecretString"], label="the rotated installation token")

        for n in range(6):
            put_item(stack, record(f"after_{n}"))
            send(stack, record(f"queued_after_{n}"), group=f"h{n}")
        expected = [f"{kind}_{n}" for kind in ("before", "after", "queued_before", "queued_after") for n in range(6)]
        wait_until(lambda: all(emulator.held_resource(INSTALLATION_ID, rid) for rid in expected))
    finally:
        stop.set()
        syncing.join(timeout=30)
    assert not syncing.is_alive(), "the runner did not stop within 30 s of being told to"
    assert crashed == []
    (summary,) = summaries
    # Every record was delivered once and synced: the 401s were handled inside the invocations.
    assert summary.failed_invocations == 0, summary.describe()
    assert summary.reported_failures == 0, summary.describe()
    assert summary.records == len(expected), summary.describe()
    assert {result.outcome for result in summary} == {"ok"}, summary.describe()

    calls = emulator.calls()
    imports = [row for row in calls["calls"] if (row["route"], row["method"]) == ("resource", "PUT")]
    assert sorted(row["resourceId"] for row in imports) == sorted(expected)
    outcomes = [row["byStatus"] for row in imports]
    assert sum(outcome.get("401", 0) for outcome in outcomes) >= 1  # the old token met its revocation ...
    assert all(outcome.get("200") == 1 and set(outcome) <= {"200", "401"} for outcome in outcomes)  # ... no harm
    assert calls["byRoute"]["credentials/rotate"] == 1
    assert calls["byRoute"]["credentials/revoke"] == 1
    assert drain_json_messages(stack.aws["sqs"], stack.queue_url("FailedRecordsQueue")) == []
    assert drain_json_messages(stack.aws["sqs"], stack.queue_url("PartnerEventsDeadLetterQueue")) == []
