"""Rotation sync's rules (``vercel_sync.rotation``) with in-process fakes: events, targets, calls, failures."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.builders import ROTATION_TARGETS, Rig, put_secret_value_event
from tests.fakes import (
    DB_PASSWORD,
    DB_URL,
    PREVIEW_PASSWORD,
    ROTATED_SECRET_ARN,
    ROTATED_SECRET_NAME,
    ROTATED_TOKEN,
    TOKEN,
    FakeIndex,
    FakeSecretsApi,
    vercel_rejects,
)
from vercel_sync.calls import RetryPolicy
from vercel_sync.deadline import TimeBudget
from vercel_sync.errors import PermanentSyncError, TransientSyncError
from vercel_sync.rotation.events import (
    FAILURE_KIND,
    InvalidEventError,
    RotationIncompleteError,
    RotationTarget,
    SecretChange,
    parse_secret_change,
    target_from_item,
)
from vercel_sync.settings import normalized_secret_name


def rotation_succeeded_event(secret_arn: str = ROTATED_SECRET_ARN) -> dict[str, Any]:
    """A Secrets Manager service event: the rotation's last step made the new version current."""
    return {
        "version": "0",
        "id": "dd5fd657-7361-f5d2-0c0f-0fe27390611b",
        "detail-type": "AWS Service Event via CloudTrail",
        "source": "aws.secretsmanager",
        "time": "2026-11-27T10:00:00Z",
        "resources": [],
        "detail": {
            "eventSource": "secretsmanager.amazonaws.com",
            "eventName": "RotationSucceeded",
            "requestParameters": None,
            "responseElements": None,
            "additionalEventData": {"SecretId": secret_arn},
            "eventID": "e-2",
            "eventType": "AwsServiceEvent",
        },
    }


# -- events -----------------------------------------------------------------------------------------


def test_put_secret_value_names_the_secret_by_its_arn() -> None:
    change = parse_secret_change(put_secret_value_event())
    assert change is not None
    assert change.event_name == "PutSecretValue"
    assert change.secret_id == ROTATED_SECRET_ARN
    assert change.secret_name == ROTATED_SECRET_NAME
    assert change.source() == {
        "kind": "eventbridge",
        "eventId": "e-1",
        "eventName": "PutSecretValue",
        "eventTime": "2026-11-27T10:00:00Z",
        "secretName": ROTATED_SECRET_NAME,
    }


def test_rotation_succeeded_names_the_secret_in_additional_event_data() -> None:
    change = parse_secret_change(rotation_succeeded_event())
    assert change is not None
    assert (change.event_name, change.secret_name) == ("RotationSucceeded", ROTATED_SECRET_NAME)


def test_older_events_spell_the_arn_arn() -> None:
    event = put_secret_value_event()
    event["detail"]["responseElements"] = {"aRN": ROTATED_SECRET_ARN}
    change = parse_secret_change(event)
    assert change is not None
    assert change.secret_id == ROTATED_SECRET_ARN


@pytest.mark.parametrize(
    "event",
    [
        put_secret_value_event(versionStages=["AWSPENDING"]),  # a rotation's pending step
        {**put_secret_value_event(), "detail": {**put_secret_value_event()["detail"], "errorCode": "AccessDenied"}},
        {**put_secret_value_event(), "detail": {**put_secret_value_event()["detail"], "eventName": "GetSecretValue"}},
    ],
)
def test_events_that_change_no_current_value_are_ignored(event: dict[str, Any]) -> None:
    assert parse_secret_change(event) is None


@pytest.mark.parametrize("stages", [["AWSCURRENT"], ["AWSPENDING", "AWSCURRENT"]])
def test_a_staged_current_version_counts(stages: list[str]) -> None:
    change = parse_secret_change(put_secret_value_event(versionStages=stages))
    assert change == SecretChange(
        event_name="PutSecretValue", secret_id=ROTATED_SECRET_ARN, event_id="e-1", event_time="2026-11-27T10:00:00Z"
    )
    assert change.secret_name == ROTATED_SECRET_NAME


@pytest.mark.parametrize("event", [None, {"detail": "x"}, {"detail": {"eventName": "PutSecretValue"}}])
def test_unreadable_events_are_invalid(event: Any) -> None:
    with pytest.raises(InvalidEventError):
        parse_secret_change(event)


@pytest.mark.parametrize(
    ("secret_id", "name"),
    [
        (ROTATED_SECRET_ARN, ROTATED_SECRET_NAME),
        (ROTATED_SECRET_NAME, ROTATED_SECRET_NAME),
        ("arn:aws:secretsmanager:us-east-1:1:secret:partner/resources/a-b-c-XyZ123", "partner/resources/a-b-c"),
        ("partner/resources/ends-AbC123", "partner/resources/ends-AbC123"),  # a name keeps its end
    ],
)
def test_names_are_normalized_as_the_state_table_keeps_them(secret_id: str, name: str) -> None:
    assert normalized_secret_name(secret_id) == name


def test_state_items_become_targets() -> None:
    item = {"kind": "resource", "installationId": "i", "resourceId": "r", "secretsPrefix": "ORDERS", "status": "ready"}
    assert target_from_item(item) == RotationTarget("i", "r", "ORDERS")
    assert target_from_item({**item, "secretsPrefix": None}) == RotationTarget("i", "r", None)
    assert target_from_item({**item, "status": "uninstalled"}) is None
    assert target_from_item({**item, "kind": "ratelimit"}) is None
    assert target_from_item({"kind": "resource", "installationId": "i"}) is None


def test_a_resource_deleted_at_vercel_is_no_target_as_an_uninstalled_one_is() -> None:
    item = {"kind": "resource", "installationId": "i", "resourceId": "r", "status": "deleted"}
    assert target_from_item(item) is None


# -- the service ------------------------------------------------------------------------------------


@dataclass
class FakeLimiter:
    allow: bool = True
    acquired: list[tuple[str, float]] = field(default_factory=list)
    paused: list[tuple[str, float]] = field(default_factory=list)

    def acquire(self, installation_id: str, *, max_wait_seconds: float) -> bool:
        self.acquired.append((installation_id, max_wait_seconds))
        return self.allow

    def pause(self, installation_id: str, seconds: float) -> None:
        self.paused.append((installation_id, seconds))


@pytest.fixture
def rig() -> Rig:
    return Rig(index=FakeIndex({ROTATED_SECRET_NAME: list(ROTATION_TARGETS)}))


def test_each_affected_resource_gets_one_call_with_its_own_prefix(rig: Rig) -> None:
    result = rig.service().handle(put_secret_value_event())

    # Under the name part an import given the whole ARN keeps, and without the suffix (a name or a partial ARN).
    assert rig.index.queries == [ROTATED_SECRET_NAME + "-AbC123", ROTATED_SECRET_NAME]
    assert rig.secrets.reads == [(ROTATED_SECRET_ARN, True)]  # once, past the cache
    assert rig.vercel.per_resource() == {"db_primary": 1, "db_replica": 1, "db_other": 1}
    assert rig.secrets.token_reads == [("icfg_demo01", False)]  # once per installation
    bodies = {call.resource_id: call.body for call in rig.vercel.calls}
    assert bodies["db_primary"] == {
        "secrets": [
            {"name": "DATABASE_URL", "value": DB_URL, "prefix": "ORDERS"},
            {
                "name": "PGPASSWORD",
                "value": DB_PASSWORD,
                "prefix": "ORDERS",
                "environmentOverrides": {"preview": PREVIEW_PASSWORD},
            },
        ]
    }
    assert all("prefix" not in secret for secret in bodies["db_replica"]["secrets"])
    assert result.summary() == {
        "outcome": "done",
        "secretName": ROTATED_SECRET_NAME,
        "resourcesUpdated": 3,
        "resourcesParked": 0,
        "vercelCalls": 3,
    }
    assert rig.failed.messages == []


@pytest.mark.parametrize(
    "secret_id",
    [
        "vercel/installations/icfg_1",  # a token: never read, never sent
        "arn:aws:secretsmanager:us-east-1:123456789012:secret:vercel/installations/icfg_1-AbC123",
        "partner/other/db",  # outside the resource-secret prefix
    ],
)
def test_secrets_no_record_may_name_are_ignored_unread(rig: Rig, secret_id: str) -> None:
    rig.index.targets[normalized_secret_name(secret_id)] = list(ROTATION_TARGETS)
    result = rig.service().handle(put_secret_value_event(secret_id))
    assert result.outcome == "ignored"
    assert rig.index.queries == []
    assert rig.secrets.reads == []
    assert rig.vercel.calls == []


def test_a_secret_no_resource_uses_is_not_read(rig: Rig) -> None:
    rig.index.targets.clear()
    assert rig.service().handle(rotation_succeeded_event()).outcome == "no_resources"
    assert rig.secrets.reads == []


def test_without_the_state_table_the_event_is_retried(rig: Rig) -> None:
    with pytest.raises(TransientSyncError, match="SYNC_STATE_TABLE"):
        rig.service(index=None).handle(put_secret_value_event())


def test_transient_failures_are_retried_with_backoff_honouring_retry_after(rig: Rig) -> None:
    throttled = TransientSyncError("Vercel answered 429", http_status=429, retry_after_seconds=3.0)
    rig.vercel.script["db_primary"] = [TransientSyncError("Vercel answered 503", http_status=503), throttled]
    limiter = FakeLimiter()

    retry = RetryPolicy(max_calls=5, base_delay_seconds=0.5)
    result = rig.service(rate_limiter=limiter, retry=retry).handle(put_secret_value_event())

    assert rig.vercel.per_resource()["db_primary"] == 3
    assert rig.sleeps == [0.5, 3.0]  # full jitter drawn at its ceiling here; never sooner than Retry-After
    assert limiter.paused == [("icfg_demo01", 3.0)]
    assert len(limiter.acquired) == 5  # one token per call
    assert result.calls == 5
    assert len(result.pushed) == 3


def test_a_401_rereads_the_token_once(rig: Rig) -> None:
    rig.vercel.valid_tokens = {ROTATED_TOKEN}
    rig.secrets.token = TOKEN  # cached copy is the old one ...

    def rotated(installation: str, *, force_fetch: bool = False) -> str:
        rig.secrets.token_reads.append((installation, force_fetch))
        return ROTATED_TOKEN if force_fetch else TOKEN

    rig.secrets.installation_token = rotated  # type: ignore[method-assign]
    rig.index.targets[ROTATED_SECRET_NAME] = ROTATION_TARGETS[:2]

    result = rig.service().handle(put_secret_value_event())

    assert [call.token for call in rig.vercel.calls] == [TOKEN, ROTATED_TOKEN, ROTATED_TOKEN]
    assert rig.secrets.token_reads == [("icfg_demo01", False), ("icfg_demo01", True)]
    assert len(result.pushed) == 2


def test_a_token_refused_after_its_reread_leaves_the_event_for_a_retry(rig: Rig) -> None:
    rig.vercel.valid_tokens = set()
    with pytest.raises(RotationIncompleteError, match="3 of 3 resources"):
        rig.service().handle(put_secret_value_event())
    # The first 401 re-reads the installation's token once; the others are not retried now.
    assert rig.vercel.per_resource() == {"db_other": 2, "db_primary": 1, "db_replica": 1}  # in sorted order
    assert rig.failed.messages == []


def test_a_rejected_resource_is_parked_scrubbed_and_the_others_go_on(rig: Rig) -> None:
    echo = json.dumps({"error": {"code": "bad_request", "message": f"bad {DB_PASSWORD} with {TOKEN}"}})
    rig.vercel.script["db_replica"] = [vercel_rejects(400, echo)]

    result = rig.service().handle(put_secret_value_event())

    assert [t.resource_id for t in result.parked] == ["db_replica"]
    assert len(result.pushed) == 2
    (message,) = rig.failed.messages
    assert message["kind"] == FAILURE_KIND
    assert message["reason"] == "vercel_rejected"
    assert message["httpStatus"] == 400
    assert (message["integrationConfigurationId"], message["resourceId"]) == ("icfg_demo01", "db_replica")
    assert message["source"]["eventName"] == "PutSecretValue"
    assert message["rotation"] == {"secretName": ROTATED_SECRET_NAME, "secretsPrefix": None}
    assert message["record"] is None
    assert message["vercelCalls"] == 1
    text = json.dumps(message)
    for value in (DB_PASSWORD, TOKEN, DB_URL):
        assert value not in text
    assert "[redacted]" in message["vercelError"]


def test_transient_failures_that_outlast_the_retries_raise_after_the_others(rig: Rig) -> None:
    rig.vercel.script["db_primary"] = [TransientSyncError("Vercel answered 503", http_status=503)] * 5

    with pytest.raises(RotationIncompleteError, match="1 of 3"):
        rig.service(retry=RetryPolicy(max_calls=3)).handle(put_secret_value_event())

    assert rig.vercel.per_resource() == {"db_primary": 3, "db_replica": 1, "db_other": 1}
    assert rig.failed.messages == []


def test_an_unreadable_secret_parks_every_resource_that_uses_it(rig: Rig) -> None:
    rig.secrets.documents.clear()
    result = rig.service().handle(rotation_succeeded_event())
    assert len(result.parked) == 3
    assert rig.failed.reasons() == ["resource_secret_unavailable"] * 3
    assert rig.vercel.calls == []


def test_a_secret_document_the_import_rules_refuse_is_an_invalid_record(rig: Rig) -> None:
    rig.secrets.documents[ROTATED_SECRET_ARN] = {"DATABASE_URL": {"value": DB_PASSWORD, "staging": "nope"}}
    rig.index.targets[ROTATED_SECRET_NAME] = ROTATION_TARGETS[:1]
    rig.service().handle(put_secret_value_event())
    (message,) = rig.failed.messages
    assert message["reason"] == "invalid_record"
    assert "staging" in message["detail"]
    assert DB_PASSWORD not in json.dumps(message)
    assert rig.vercel.calls == []


def test_an_unreadable_token_parks_the_installations_resources_after_one_read(rig: Rig) -> None:
    rig.secrets.token_error = PermanentSyncError("cannot read secret x: AccessDenied", reason="token_unavailable")
    rig.service().handle(put_secret_value_event())
    assert rig.failed.reasons() == ["token_unavailable"] * 3
    assert len(rig.secrets.token_reads) == 1  # read once per installation, not per resource


def test_without_a_failed_records_queue_a_permanent_failure_is_retried(rig: Rig) -> None:
    rig.vercel.script["db_replica"] = [vercel_rejects(422)]
    with pytest.raises(RotationIncompleteError):
        rig.service(failed_records=None).handle(put_secret_value_event())


def test_no_call_starts_without_the_time_for_it(rig: Rig) -> None:
    budget = TimeBudget(aws_call_ms=9_000, vercel_call_ms=16_000, margin_ms=1_000)
    # 20 s: enough to find the resources and read the secret (19 s with parking and the margin),
    # too little for a call (26 s).
    with pytest.raises(RotationIncompleteError, match="3 of 3"):
        rig.service(time_budget=budget).handle(put_secret_value_event(), time_left_ms=20_000)
    assert rig.vercel.calls == []


def test_a_429_is_shared_with_the_rate_limiter_only_while_there_is_time_for_it(rig: Rig) -> None:
    budget = TimeBudget(aws_call_ms=2_000, vercel_call_ms=1_000, margin_ms=1_000)  # an AWS call needs 5 s
    clock = {"now": 0.0}
    throttled = TransientSyncError("Vercel answered 429", http_status=429, retry_after_seconds=3.0)

    class SlowSecretsApi(FakeSecretsApi):
        def update_resource_secrets(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
            clock["now"] += 5.5  # each call takes 5.5 s, then Vercel answers 429
            raise throttled

    for time_left_ms, shared in ((16_000, True), (10_000, False)):
        limiter = FakeLimiter()
        rig.vercel = SlowSecretsApi()
        clock["now"] = 0.0
        service = rig.service(
            time_budget=budget, rate_limiter=limiter, monotonic=lambda: clock["now"], retry=RetryPolicy(max_calls=1)
        )
        with pytest.raises(RotationIncompleteError):
            service.handle(put_secret_value_event(), time_left_ms=time_left_ms)
        # After the first call 10.5 s or 4.5 s are left: the write sharing the pause fits only in the first.
        assert bool(limiter.paused) is shared, time_left_ms
        assert limiter.paused[:1] == ([("icfg_demo01", 3.0)] if shared else [])


def test_no_rate_limit_token_in_time_leaves_the_event_for_a_retry(rig: Rig) -> None:
    with pytest.raises(RotationIncompleteError):
        rig.service(rate_limiter=FakeLimiter(allow=False)).handle(put_secret_value_event())
    assert rig.vercel.calls == []


def test_an_unreadable_event_is_parked(rig: Rig) -> None:
    assert rig.service().handle({"detail": {"eventName": "PutSecretValue"}}).outcome == "ignored"
    (message,) = rig.failed.messages
    assert message["reason"] == "invalid_record"
    assert message["kind"] == FAILURE_KIND
    assert message["resourceId"] is None


def test_the_rotation_rules_import_no_aws_or_http_library() -> None:
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    code = (
        "import sys, vercel_sync.rotation.events, vercel_sync.rotation.service; "
        "print(','.join(m for m in ('boto3', 'botocore', 'httpx', 'aws_lambda_powertools') if m in sys.modules))"
    )
    result = subprocess.run(  # noqa: S603 - our own interpreter
        [sys.executable, "-c", code],
        env={**os.environ, "PYTHONPATH": str(root / "layers" / "sync_core")},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""


def test_a_long_failure_of_the_secret_is_cut_once_for_every_resource(rig: Rig) -> None:
    from tests.fakes import FakeRotationSecrets
    from vercel_sync.redaction import MAX_ERROR_TEXT

    detail = "cannot read secret: " + "x" * (MAX_ERROR_TEXT + 100)

    class LongFailure(FakeRotationSecrets):
        def resource_secrets(self, secret_id: str, *, installation_id: str, force_fetch: bool = False) -> Any:
            raise PermanentSyncError(detail, reason="resource_secret_unavailable")

    rig.secrets = LongFailure()
    rig.service().handle(put_secret_value_event())

    expected = detail[:MAX_ERROR_TEXT] + f"... [{len(detail) - MAX_ERROR_TEXT} more characters]"
    assert [message["detail"] for message in rig.failed.messages] == [expected] * 3


def test_a_resource_keeps_failing_gets_five_calls_by_default(rig: Rig) -> None:
    rig.vercel.script["db_primary"] = [TransientSyncError("Vercel answered 503", http_status=503)] * 10

    with pytest.raises(RotationIncompleteError, match="1 of 3"):
        rig.service().handle(put_secret_value_event())

    assert rig.vercel.per_resource()["db_primary"] == 5


def test_the_parking_observed_is_scrubbed_of_the_secrets_values(rig: Rig) -> None:
    from vercel_sync.ports import NullObserver

    seen: list[str] = []

    class Parkings(NullObserver):
        def parked(self, change: Any, target: Any, error: PermanentSyncError) -> None:
            seen.append(error.message)

    rejected = PermanentSyncError(f"Vercel refused {DB_PASSWORD}", reason="vercel_rejected", http_status=400)
    rig.vercel.script["db_replica"] = [rejected]

    rig.service(observer=Parkings()).handle(put_secret_value_event())

    assert seen == ["Vercel refused [redacted]"]


def test_without_a_failed_records_queue_a_long_failure_of_the_secret_is_retried_with_its_message_cut(rig: Rig) -> None:
    from tests.fakes import FakeRotationSecrets
    from vercel_sync.redaction import MAX_ERROR_TEXT

    detail = "cannot read secret: " + "x" * (MAX_ERROR_TEXT + 100)

    class LongFailure(FakeRotationSecrets):
        def resource_secrets(self, secret_id: str, *, installation_id: str, force_fetch: bool = False) -> Any:
            raise PermanentSyncError(detail, reason="resource_secret_unavailable")

    rig.secrets = LongFailure()
    with pytest.raises(TransientSyncError) as caught:
        rig.service(failed_records=None).handle(put_secret_value_event())

    assert f"... [{len(detail) - MAX_ERROR_TEXT} more characters]" in caught.value.message
    assert len(caught.value.message) < MAX_ERROR_TEXT + 200


def test_an_update_secret_call_is_a_change_of_the_current_value() -> None:
    event = put_secret_value_event()
    event["detail"]["eventName"] = "UpdateSecret"
    change = parse_secret_change(event)
    assert change is not None
    assert change.event_name == "UpdateSecret"


def test_a_secret_id_as_long_as_an_arn_may_be_is_taken_and_a_longer_one_is_not() -> None:
    for length, expected in ((2048, True), (2049, False)):
        secret_id = "partner/resources/icfg_demo01/" + "x" * (length - len("partner/resources/icfg_demo01/"))
        event = put_secret_value_event(secret_id)
        event["detail"]["responseElements"] = None
        if expected:
            change = parse_secret_change(event)
            assert change is not None
            assert change.secret_id == secret_id
        else:
            with pytest.raises(InvalidEventError):
                parse_secret_change(event)


def test_a_failure_before_any_call_counts_one_attempt() -> None:
    from datetime import UTC, datetime

    from vercel_sync.rotation.events import build_rotation_failure_message

    error = PermanentSyncError("cannot read secret x", reason="resource_secret_unavailable")
    message = build_rotation_failure_message(None, None, error, failed_at=datetime(2026, 11, 27, tzinfo=UTC))

    assert (message["attempts"], message["vercelCalls"]) == (1, 0)


def test_a_rotation_failure_message_is_scrubbed_in_every_field() -> None:
    from datetime import UTC, datetime

    from vercel_sync.rotation.events import build_rotation_failure_message

    target = RotationTarget("icfg_demo01", f"db-{DB_PASSWORD}", f"P_{DB_PASSWORD}")
    error = PermanentSyncError("refused", reason="vercel_rejected")
    message = build_rotation_failure_message(
        None, target, error, failed_at=datetime(2026, 11, 27, tzinfo=UTC), secret_values=[DB_PASSWORD]
    )

    assert DB_PASSWORD not in json.dumps(message)
    assert message["resourceId"] == "db-[redacted]"
