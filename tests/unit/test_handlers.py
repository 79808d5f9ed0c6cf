"""The handlers on every events/ file, with fake adapters: for the two sync handlers which records fail
and what is parked; for the rotation handler its answer, and a retry when it must."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from tests.conftest import LogCapture
from tests.fakes import (
    ALL_SECRET_VALUES,
    DB_PASSWORD,
    DB_URL,
    EVENTS,
    PREVIEW_PASSWORD,
    ROTATED_SECRET_NAME,
    ROTATED_TOKEN,
    ROTATION_SETTINGS,
    TOKEN,
    FakeFailedRecords,
    FakeIndex,
    FakeRotationSecrets,
    FakeSecrets,
    FakeSecretsApi,
    FakeVercel,
    LambdaContext,
    load_event,
    load_handler,
    make_sync_service,
    vercel_rejects,
    vercel_unavailable,
)
from vercel_sync import wiring
from vercel_sync.calls import Clock
from vercel_sync.deadline import TimeBudget
from vercel_sync.errors import TransientSyncError
from vercel_sync.observability import handle_rotation_event
from vercel_sync.payload import ImportResourcePayload
from vercel_sync.rotation.events import RotationTarget
from vercel_sync.rotation.service import RotationAdapters, RotationService
from vercel_sync.sync.service import SyncService

stream_app = load_handler("stream_sync")
queue_app = load_handler("queue_sync")


def invoke(app: Any, event: dict[str, Any], *, remaining_ms: int = 60_000) -> dict[str, Any]:
    return app.lambda_handler(event, LambdaContext(remaining_ms=remaining_ms))


def failures(response: dict[str, Any]) -> list[str]:
    return [item["itemIdentifier"] for item in response["batchItemFailures"]]


def ids(event: dict[str, Any]) -> list[str]:
    return [r["dynamodb"]["SequenceNumber"] if "dynamodb" in r else r["messageId"] for r in event["Records"]]


# Every events/ file: the handler, the resources Vercel receives, the reasons parked.
EXPECTED = {
    # Changes to one resource in a batch are coalesced: only the newest is sent.
    "stream_insert_modify_remove.json": (stream_app, ["db_primary", "cache/eu west#1"], []),
    "sqs_standard_raw_sns_eventbridge.json": (queue_app, ["auth_tenant_42", "db_replica", "cache/eu west#1"], []),
    "sqs_fifo.json": (queue_app, ["auth_tenant_42", "db_replica"], []),
    "stream_mixed_valid_invalid.json": (stream_app, ["queue_jobs"], ["invalid_record"] * 2),
    "sqs_mixed_valid_invalid.json": (
        queue_app,
        ["auth_tenant_42", "db_ok_2"],
        ["invalid_record"] * 4,
    ),
}


def test_every_event_file_is_covered() -> None:
    assert sorted(p.name for p in EVENTS.glob("*.json") if not p.name.startswith("env.")) == sorted(EXPECTED)


@pytest.mark.parametrize("event_file", sorted(EXPECTED))
def test_event_file_through_its_handler(
    event_file: str, service: SyncService, fake_vercel: FakeVercel, failed_records: FakeFailedRecords
) -> None:
    app, resources, reasons = EXPECTED[event_file]
    response = invoke(app, load_event(event_file))

    assert response == {"batchItemFailures": []}
    assert fake_vercel.resources_called() == resources
    assert failed_records.reasons() == reasons
    for call in fake_vercel.calls:
        # What was sent is exactly what the published model accepts.
        assert ImportResourcePayload.model_validate(call.body).to_body() == call.body
        assert call.token == TOKEN
        assert call.installation_id == "icfg_demo01"


def test_stream_payloads_follow_insert_modify_remove(service: SyncService, fake_vercel: FakeVercel) -> None:
    # One record per invocation, so each is sent (in one batch they would be coalesced).
    for record in load_event("stream_insert_modify_remove.json")["Records"]:
        invoke(stream_app, {"Records": [record]})
    insert, modify, remove = (c.body for c in fake_vercel.calls)

    assert insert["status"] == "pending"  # partner "provisioning"
    assert modify["status"] == "ready"  # partner "active"
    assert modify["notification"]["href"] == "https://console.example.com/db/db_primary"
    assert remove == {
        "productId": "redis",
        "name": "session-cache",
        "status": "uninstalled",
        "extras": {"engine": "redis", "tier": 1},
    }
    # DynamoDB numbers arrive as Decimal and leave as JSON numbers of the right kind.
    assert insert["metadata"] == {
        "region": "iad1",
        "storageGb": 20,
        "replicas": 2,
        "highAvailability": True,
        "versions": ["16.4"],
    }
    assert insert["secrets"] == [
        {"name": "DATABASE_URL", "value": DB_URL, "prefix": "ORDERS"},
        {
            "name": "PGPASSWORD",
            "value": DB_PASSWORD,
            "prefix": "ORDERS",
            "environmentOverrides": {"preview": PREVIEW_PASSWORD},
        },
    ]
    assert "secretsArn" not in insert
    assert "version" not in insert


def test_mixed_batch_parks_only_invalid_records_each_with_a_readable_reason(
    service: SyncService, failed_records: FakeFailedRecords
) -> None:
    event = load_event("sqs_mixed_valid_invalid.json")
    response = invoke(queue_app, event)

    assert response == {"batchItemFailures": []}
    details = {m["source"]["messageId"]: m["detail"] for m in failed_records.messages}
    message_ids = ids(event)
    assert details == {
        message_ids[1]: "invalid partner record: productId: Field required",
        message_ids[2]: details[message_ids[2]],
        message_ids[3]: "message body is not valid JSON",
        message_ids[4]: "invalid import payload: ownership: Input should be 'owned', 'linked' or 'sandbox'",
    }
    assert details[message_ids[2]].startswith(
        "invalid partner record: status: Value error, unknown partner status 'melting'"
    )
    for message in failed_records.messages:
        assert message["schemaVersion"] == 1
        assert message["httpStatus"] is None
        assert message["source"]["kind"] == "sqs"
        assert message["source"]["eventSourceARN"].endswith(":partner-events")
        assert message["attempts"] == 1
    parked_record = next(m for m in failed_records.messages if m["source"]["messageId"] == message_ids[4])
    assert parked_record["record"]["ownership"] == "borrowed"
    assert parked_record["resourceId"] == "bad_ownership"


def test_stream_batch_reports_the_earliest_record_of_a_resource_that_keeps_failing(
    service: SyncService, fake_vercel: FakeVercel, failed_records: FakeFailedRecords
) -> None:
    event = load_event("stream_insert_modify_remove.json")
    fake_vercel.failing["db_primary"] = vercel_unavailable(503)

    response = invoke(stream_app, event)

    # INSERT and MODIFY were coalesced into one call (the MODIFY's payload), retried within the
    # invocation and still failing: both are failed, and the earlier one bounds the checkpoint.
    assert failures(response) == [ids(event)[0]]
    assert fake_vercel.resources_called().count("db_primary") == service.tuning.retry.max_calls
    assert {c.body["status"] for c in fake_vercel.calls if c.resource_id == "db_primary"} == {"ready"}
    assert failed_records.messages == []


def test_a_transient_failure_is_retried_within_the_invocation(
    service: SyncService, fake_vercel: FakeVercel, failed_records: FakeFailedRecords
) -> None:
    event = load_event("stream_insert_modify_remove.json")
    fake_vercel.script["db_primary"] = [vercel_unavailable(503), vercel_unavailable(429)]

    response = invoke(stream_app, event)

    assert response == {"batchItemFailures": []}
    assert fake_vercel.resources_called() == ["db_primary"] * 3 + ["cache/eu west#1"]


def test_stream_batch_reports_the_first_record_when_everything_fails(
    service: SyncService, fake_vercel: FakeVercel
) -> None:
    event = load_event("stream_insert_modify_remove.json")
    fake_vercel.failing["db_primary"] = vercel_unavailable(500)
    fake_vercel.failing["cache/eu west#1"] = vercel_unavailable(500)

    response = invoke(stream_app, event)

    assert failures(response) == [ids(event)[0]]
    assert len(fake_vercel.calls) == 2 * service.tuning.retry.max_calls


def test_stream_permanent_failure_is_parked_and_the_batch_goes_on(
    service: SyncService, fake_vercel: FakeVercel, failed_records: FakeFailedRecords
) -> None:
    event = load_event("stream_insert_modify_remove.json")
    fake_vercel.script["db_primary"] = [vercel_rejects(422)]

    response = invoke(stream_app, event)

    assert response == {"batchItemFailures": []}
    assert len(fake_vercel.calls) == 2  # db_primary once (INSERT coalesced into MODIFY), the REMOVE
    # The newest change is parked, with the record that would replay the resource's latest state;
    # the older one it superseded is not parked separately.
    (message,) = failed_records.messages
    assert message["reason"] == "vercel_rejected"
    assert message["httpStatus"] == 422
    assert message["attempts"] == 1
    assert message["vercelCalls"] == 1
    assert json.loads(message["vercelError"])["error"]["code"] == "bad_request"
    assert message["source"] == {
        "kind": "dynamodb-stream",
        "eventSourceARN": event["Records"][1]["eventSourceARN"],
        "sequenceNumber": ids(event)[1],
        "eventName": "MODIFY",
        "approximateCreationDateTime": "2026-11-26T00:00:02+00:00",
    }


@pytest.mark.parametrize("status", [400, 409, 422])
def test_permanent_vercel_statuses_are_parked_not_retried(
    status: int, service: SyncService, fake_vercel: FakeVercel, failed_records: FakeFailedRecords
) -> None:
    fake_vercel.script["auth_tenant_42"] = [vercel_rejects(status)]
    response = invoke(queue_app, load_event("sqs_standard_raw_sns_eventbridge.json"))

    assert response == {"batchItemFailures": []}
    assert [m["httpStatus"] for m in failed_records.messages] == [status]
    assert fake_vercel.resources_called() == ["auth_tenant_42", "db_replica", "cache/eu west#1"]


@pytest.mark.parametrize("status", [403, 404, 410])
def test_an_installation_refused_is_not_called_again_in_the_batch(
    status: int, service: SyncService, fake_vercel: FakeVercel, failed_records: FakeFailedRecords
) -> None:
    fake_vercel.script["auth_tenant_42"] = [vercel_rejects(status)]
    response = invoke(queue_app, load_event("sqs_standard_raw_sns_eventbridge.json"))

    assert response == {"batchItemFailures": []}
    # The first resource's answer stops the installation: its other records are parked unsent.
    assert fake_vercel.resources_called() == ["auth_tenant_42"]
    assert [(m["reason"], m["httpStatus"], m["vercelCalls"]) for m in failed_records.messages] == [
        ("installation_unavailable", status, 1),
        ("installation_unavailable", status, 0),
        ("installation_unavailable", status, 0),
    ]
    assert "another resource of this installation" in failed_records.messages[1]["detail"]


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
def test_transient_failures_in_a_standard_queue_report_just_that_message(
    status: int, service: SyncService, fake_vercel: FakeVercel, failed_records: FakeFailedRecords
) -> None:
    event = load_event("sqs_standard_raw_sns_eventbridge.json")
    fake_vercel.failing["db_replica"] = vercel_unavailable(status)

    response = invoke(queue_app, event)

    assert failures(response) == [ids(event)[1]]
    assert fake_vercel.resources_called() == ["auth_tenant_42"] + ["db_replica"] * 6 + ["cache/eu west#1"]
    assert failed_records.messages == []


def test_a_standard_batch_that_fails_whole_is_reported_whole_not_raised(
    service: SyncService, fake_secrets: FakeSecrets, fake_vercel: FakeVercel
) -> None:
    event = load_event("sqs_standard_raw_sns_eventbridge.json")
    for resource in ("auth_tenant_42", "db_replica", "cache/eu west#1"):
        fake_vercel.failing[resource] = vercel_unavailable(503)

    response = invoke(queue_app, event)

    assert failures(response) == ids(event)


def test_fifo_failure_stops_its_message_group_only(
    service: SyncService, fake_vercel: FakeVercel, failed_records: FakeFailedRecords
) -> None:
    event = load_event("sqs_fifo.json")
    fake_vercel.failing["auth_tenant_42"] = vercel_unavailable(503)

    response = invoke(queue_app, event)

    first_auth, _replica, second_auth = ids(event)
    assert failures(response) == [first_auth, second_auth]
    # Coalesced: only the newer change of auth_tenant_42 is sent (and retried).
    assert {c.body["status"] for c in fake_vercel.calls if c.resource_id == "auth_tenant_42"} == {"ready"}
    replica = [c for c in fake_vercel.calls if c.resource_id == "db_replica"]
    assert [c.body["status"] for c in replica] == ["uninstalled"]  # deleted: true


def test_fifo_permanent_failure_does_not_stop_its_group(
    service: SyncService, fake_vercel: FakeVercel, failed_records: FakeFailedRecords
) -> None:
    fake_vercel.script["auth_tenant_42"] = [vercel_rejects(400)]

    response = invoke(queue_app, load_event("sqs_fifo.json"))

    assert response == {"batchItemFailures": []}
    assert fake_vercel.resources_called() == ["auth_tenant_42", "db_replica"]
    assert failed_records.reasons() == ["vercel_rejected"]


def test_401_rereads_the_token_past_the_cache_once_and_succeeds(
    service: SyncService, fake_vercel: FakeVercel, fake_secrets: FakeSecrets
) -> None:
    # The token was rotated: Vercel now accepts only the new one, and the cache still has the old.
    fake_vercel.valid_tokens = {ROTATED_TOKEN}
    reads = iter([TOKEN, ROTATED_TOKEN])

    def rotating_token(installation_id: str, *, force_fetch: bool = False) -> str:
        fake_secrets.token_reads.append((installation_id, force_fetch))
        return next(reads) if force_fetch or not fake_secrets.token_reads[:-1] else TOKEN

    fake_secrets.installation_token = rotating_token  # type: ignore[method-assign]
    event = {"Records": load_event("sqs_standard_raw_sns_eventbridge.json")["Records"][:1]}

    response = invoke(queue_app, event)

    assert response == {"batchItemFailures": []}
    assert [c.token for c in fake_vercel.calls] == [TOKEN, ROTATED_TOKEN]
    assert fake_secrets.token_reads == [("icfg_demo01", False), ("icfg_demo01", True)]


def test_401_after_the_reread_goes_back_to_the_source(
    service: SyncService, fake_vercel: FakeVercel, fake_secrets: FakeSecrets, failed_records: FakeFailedRecords
) -> None:
    fake_vercel.valid_tokens = set()
    event = {"Records": load_event("sqs_standard_raw_sns_eventbridge.json")["Records"][:1]}

    response = invoke(queue_app, event)

    assert failures(response) == ids(event)
    assert len(fake_vercel.calls) == 2  # the first try and one after the re-read: no more
    assert fake_secrets.token_reads == [("icfg_demo01", False), ("icfg_demo01", True)]
    assert failed_records.messages == []


def test_missing_resource_secret_is_parked_with_its_reason(
    service: SyncService, fake_secrets: FakeSecrets, failed_records: FakeFailedRecords, fake_vercel: FakeVercel
) -> None:
    fake_secrets.documents.clear()
    response = invoke(stream_app, load_event("stream_insert_modify_remove.json"))

    assert response == {"batchItemFailures": []}
    # INSERT and MODIFY of db_primary are coalesced: the newest is parked, once.
    assert failed_records.reasons() == ["resource_secret_unavailable"]
    assert "ResourceNotFoundException" in failed_records.messages[0]["detail"]
    assert fake_vercel.resources_called() == ["cache/eu west#1"]  # a REMOVE reads no secret


def test_removed_resource_reads_no_secret(service: SyncService, fake_secrets: FakeSecrets) -> None:
    read: list[str] = []
    fake_secrets.on_resource_read = read.append
    event = {"Records": load_event("stream_insert_modify_remove.json")["Records"][2:]}

    invoke(stream_app, event)

    assert read == []


def test_a_failed_records_queue_that_refuses_sends_the_record_back_to_its_source(
    service: SyncService, failed_records: FakeFailedRecords
) -> None:
    failed_records.broken = True
    event = load_event("sqs_mixed_valid_invalid.json")

    response = invoke(queue_app, event)

    assert failures(response) == [ids(event)[i] for i in (1, 2, 3, 4)]


def test_without_a_failed_records_queue_permanent_failures_go_back_to_the_source(
    fake_vercel: FakeVercel, fake_secrets: FakeSecrets
) -> None:
    wiring.sync_service.set(make_sync_service(vercel=fake_vercel, secrets=fake_secrets, failed_records=None))
    try:
        event = load_event("sqs_mixed_valid_invalid.json")
        response = invoke(queue_app, event)
    finally:
        wiring.sync_service.set(None)

    assert failures(response) == [ids(event)[i] for i in (1, 2, 3, 4)]


def test_stream_remove_without_old_image_is_parked_with_the_fix(
    service: SyncService, failed_records: FakeFailedRecords
) -> None:
    event = load_event("stream_insert_modify_remove.json")
    record = event["Records"][2]
    del record["dynamodb"]["OldImage"]
    record["dynamodb"]["StreamViewType"] = "KEYS_ONLY"

    response = invoke(stream_app, {"Records": [record]})

    assert response == {"batchItemFailures": []}
    (message,) = failed_records.messages
    assert "NEW_AND_OLD_IMAGES" in message["detail"]
    assert message["removed"] is True


def test_empty_batch_is_an_empty_response(service: SyncService) -> None:
    assert invoke(queue_app, {"Records": []}) == {"batchItemFailures": []}
    assert invoke(stream_app, {"Records": []}) == {"batchItemFailures": []}


def test_no_token_or_secret_value_in_logs_metrics_or_failed_records(
    service: SyncService,
    fake_vercel: FakeVercel,
    failed_records: FakeFailedRecords,
    captured_logs: LogCapture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Vercel echoes the secrets back in its error body, the worst case for a leak.
    echo = json.dumps({"error": {"code": "invalid", "message": f"bad secret {DB_PASSWORD} / {DB_URL} / {TOKEN}"}})
    fake_vercel.script["db_primary"] = [vercel_rejects(400, echo), vercel_unavailable(503)]

    invoke(stream_app, load_event("stream_insert_modify_remove.json"))
    for name in sorted(EXPECTED):
        invoke(EXPECTED[name][0], load_event(name))
    output = capsys.readouterr()

    emitted = "\n".join([*captured_logs.lines, output.out, output.err, json.dumps(failed_records.messages)])
    assert captured_logs.lines, "the handlers logged nothing; the check would prove nothing"
    assert "vercel_rejected" in failed_records.reasons()
    for value in ALL_SECRET_VALUES:
        assert value not in emitted
    assert "[redacted]" in json.dumps(failed_records.messages)


def test_log_lines_carry_installation_and_resource_ids(service: SyncService, captured_logs: LogCapture) -> None:
    from vercel_sync.observability import logger

    level = logger.log_level
    logger.setLevel("DEBUG")  # a line per import is logged at DEBUG
    try:
        invoke(queue_app, load_event("sqs_mixed_valid_invalid.json"))
    finally:
        logger.setLevel(level)

    records = [json.loads(line) for line in captured_logs.lines]
    imported = [r for r in records if r["message"] == "imported resource into Vercel"]
    parked = [r for r in records if r["message"].startswith("record cannot succeed")]
    assert {r["resourceId"] for r in imported} == {"auth_tenant_42", "db_ok_2"}
    assert all(r["integrationConfigurationId"] == "icfg_demo01" for r in imported)
    assert {r["reason"] for r in parked} == {"invalid_record"}
    assert all("function_request_id" in r for r in records)
    (summary,) = [r for r in records if r["message"] == "batch synced"]
    assert (summary["records"], summary["resourcesImported"], summary["recordsFailedPermanently"]) == (6, 2, 4)


def test_metrics_are_counted_per_batch(service: SyncService, capsys: pytest.CaptureFixture[str]) -> None:
    import os

    os.environ["POWERTOOLS_METRICS_DISABLED"] = "false"
    try:
        invoke(queue_app, load_event("sqs_mixed_valid_invalid.json"))
    finally:
        os.environ.pop("POWERTOOLS_METRICS_DISABLED")
    documents = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"_aws"')]
    emf = next(d for d in documents if "ResourcesImported" in d)
    # One value per batch (a count), not one per record.
    assert emf["ResourcesImported"] in (2.0, [2.0])
    assert emf["RecordsFailedPermanently"] in (4.0, [4.0])
    assert len(emf["VercelCallLatency"]) == 2  # one value per call


def test_an_unexpected_error_goes_back_to_the_source_and_is_logged_without_its_message(
    service: SyncService, fake_vercel: FakeVercel, captured_logs: LogCapture
) -> None:
    event = load_event("sqs_standard_raw_sns_eventbridge.json")
    fake_vercel.script["db_replica"] = [KeyError(f"bug quoting {DB_PASSWORD}")]

    response = invoke(queue_app, event)

    assert failures(response) == [ids(event)[1]]
    (line,) = [json.loads(x) for x in captured_logs.lines if "unexpected error" in x]
    assert line["errorType"] == "KeyError"
    assert line["resourceId"] == "db_replica"
    assert any("import_resource" in frame for frame in line["raisedAt"])
    assert DB_PASSWORD not in "\n".join(captured_logs.lines)


def test_records_that_cannot_finish_in_time_go_back_to_the_source(
    service: SyncService, fake_vercel: FakeVercel, failed_records: FakeFailedRecords
) -> None:
    # A record starts with time for its slowest kind of step at its shortest (an AWS call, 15 s),
    # parking it after (15 s) and the 1 s margin: 31 s.
    service.tuning = replace(
        service.tuning, time_budget=TimeBudget(aws_call_ms=15_000, vercel_call_ms=9_000, margin_ms=1_000)
    )
    stream_event = load_event("stream_insert_modify_remove.json")
    queue_event = load_event("sqs_standard_raw_sns_eventbridge.json")

    assert failures(invoke(stream_app, stream_event, remaining_ms=30_990)) == [ids(stream_event)[0]]
    assert failures(invoke(queue_app, queue_event, remaining_ms=30_990)) == ids(queue_event)
    assert fake_vercel.calls == []
    assert failed_records.messages == []
    assert failures(invoke(queue_app, queue_event, remaining_ms=31_500)) == []


# -- the rotation handler ---------------------------------------------------------------------------


ROTATION_EVENTS = sorted((EVENTS / "rotation").glob("*.json"))


@pytest.fixture
def rotation_app() -> Any:
    return load_handler("rotation_sync")


@pytest.fixture
def fakes() -> Iterator[tuple[FakeSecretsApi, FakeFailedRecords]]:
    vercel, failed = FakeSecretsApi(), FakeFailedRecords()
    index = FakeIndex({ROTATED_SECRET_NAME: [RotationTarget("icfg_demo01", "db_primary", "ORDERS")]})
    adapters = RotationAdapters(index=index, secrets=FakeRotationSecrets(), vercel=vercel, failed_records=failed)
    service = RotationService(ROTATION_SETTINGS, adapters, clock=Clock(sleep=lambda _seconds: None))
    wiring.rotation_service.set(service)
    yield vercel, failed
    wiring.rotation_service.set(None)


@pytest.mark.parametrize("event_file", ROTATION_EVENTS, ids=lambda p: p.name)
def test_the_handler_on_each_sample_event(
    event_file: Any, rotation_app: Any, fakes: tuple[FakeSecretsApi, FakeFailedRecords]
) -> None:
    vercel, failed = fakes
    answer = rotation_app.lambda_handler(json.loads(event_file.read_text()), LambdaContext())
    assert answer == {
        "outcome": "done",
        "secretName": ROTATED_SECRET_NAME,
        "resourcesUpdated": 1,
        "resourcesParked": 0,
        "vercelCalls": 1,
    }
    assert [(call.installation_id, call.resource_id) for call in vercel.calls] == [("icfg_demo01", "db_primary")]
    assert failed.messages == []


def test_the_handler_raises_so_lambda_retries(
    rotation_app: Any, fakes: tuple[FakeSecretsApi, FakeFailedRecords]
) -> None:
    vercel, _ = fakes
    vercel.script["db_primary"] = [TransientSyncError("Vercel answered 503", http_status=503)] * 10
    event = json.loads(ROTATION_EVENTS[0].read_text())
    with pytest.raises(TransientSyncError, match="will be retried"):
        rotation_app.lambda_handler(event, LambdaContext(remaining_ms=60_000))


def test_a_bug_is_retried_without_its_message() -> None:
    class Broken:
        def handle(self, event: Any, *, time_left_ms: int | None = None) -> Any:
            raise KeyError(f"quoting {TOKEN}")

    with pytest.raises(TransientSyncError) as caught:
        handle_rotation_event({}, LambdaContext(), Broken())  # type: ignore[arg-type]
    assert "KeyError" in str(caught.value)
    assert TOKEN not in str(caught.value)
    assert caught.value.__cause__ is None
    assert caught.value.__context__ is None
