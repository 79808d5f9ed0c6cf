"""Edges a review found: time per step, escaped and cut secrets, odd ids and text, odd answers."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import respx

from tests.fakes import (
    DB_PASSWORD,
    TOKEN,
    FakeFailedRecords,
    FakeSecrets,
    FakeVercel,
    make_sync_service,
    sync_one,
    vercel_rejects,
)
from vercel_sync.adapters.secrets import SecretsManagerReader
from vercel_sync.adapters.vercel import (
    MAX_RETRY_AFTER_SECONDS,
    VercelClient,
    retry_after_seconds,
)
from vercel_sync.changes import SourceChange, SourcePosition
from vercel_sync.deadline import TimeBudget
from vercel_sync.errors import InvalidRecordError, PermanentSyncError, TransientSyncError
from vercel_sync.failed_record import build_failed_record_message
from vercel_sync.redaction import REDACTED, scrub_text
from vercel_sync.settings import Settings, secret_name

BASE = "https://api.vercel.test"


def record(**overrides: Any) -> dict[str, Any]:
    item: dict[str, Any] = {
        "integrationConfigurationId": "icfg_1",
        "resourceId": "db_primary",
        "productId": "prod_pg",
        "name": "orders",
        "status": "active",
        "secretsArn": "partner/resources/icfg_1/db_primary",
    }
    item.update(overrides)
    return {k: v for k, v in item.items() if v is not None}


def change(item: dict[str, Any] | None) -> SourceChange:
    position = SourcePosition(kind="sqs", event_source_arn="arn:aws:sqs:us-east-1:1:q", item_identifier="m-1")
    return SourceChange(position, item)


class SteppingClock:
    """A monotonic clock that each adapter call moves forward by a fixed step."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_step_that_could_outlast_the_invocation_is_not_started() -> None:
    clock = SteppingClock()
    vercel = FakeVercel()
    secrets = FakeSecrets(on_resource_read=lambda _: setattr(clock, "now", clock.now + 20))
    service = make_sync_service(
        vercel=vercel,
        secrets=secrets,
        failed_records=FakeFailedRecords(),
        time_budget=TimeBudget(aws_call_ms=10_000, vercel_call_ms=10_000, margin_ms=1_000),
        monotonic=clock,
    )
    # 30 s is enough to start (21 s), but the slow secret read leaves 10 s: too little for the
    # token read and the call. The record goes back; Vercel is never called.
    with pytest.raises(TransientSyncError, match="ms left in this invocation"):
        sync_one(service, change(record()), time_left_ms=30_000)
    assert vercel.calls == []


def test_a_bug_goes_back_to_the_source_without_its_message() -> None:
    vercel = FakeVercel(script={"db_primary": [KeyError(f"quoting {DB_PASSWORD}")]})
    service = make_sync_service(vercel=vercel, secrets=FakeSecrets(), failed_records=FakeFailedRecords())

    with pytest.raises(TransientSyncError) as caught:
        sync_one(service, change(record()))

    assert "KeyError" in str(caught.value)
    assert DB_PASSWORD not in str(caught.value)
    # Neither chained nor attached as context: nothing that walks the chain can reach it.
    assert caught.value.__cause__ is None
    assert caught.value.__context__ is None


@pytest.mark.parametrize("resource_id", [".", ".."])
def test_dot_segment_ids_are_invalid_records(resource_id: str) -> None:
    failed = FakeFailedRecords()
    vercel = FakeVercel()
    service = make_sync_service(vercel=vercel, secrets=FakeSecrets(), failed_records=failed)

    assert sync_one(service, change(record(resourceId=resource_id))) == "parked"
    assert failed.reasons() == ["invalid_record"]
    assert vercel.calls == []


def test_client_refuses_dot_segment_ids() -> None:
    client = VercelClient(BASE)
    with pytest.raises(PermanentSyncError) as caught:
        client.resource_url("icfg_1", "..")
    assert caught.value.reason == "invalid_record"


@pytest.mark.parametrize(
    ("where", "item"),
    [
        ("name", record(name="orders \ud800")),
        ("metadata", record(metadata={"region": "eu-\udfff"})),
    ],
)
def test_text_json_cannot_carry_is_an_invalid_record(where: str, item: dict[str, Any]) -> None:
    failed = FakeFailedRecords()
    service = make_sync_service(vercel=FakeVercel(), secrets=FakeSecrets(), failed_records=failed)

    assert sync_one(service, change(item)) == "parked"
    (message,) = failed.messages
    assert message["reason"] == "invalid_record"
    assert where in message["detail"]
    assert "unicode" in message["detail"].lower()


def test_a_secret_value_with_a_lone_surrogate_is_an_invalid_record() -> None:
    secrets = FakeSecrets(documents={"partner/resources/icfg_1/db_primary": {"PGPASSWORD": "pw-\ud800-x"}})
    failed = FakeFailedRecords()
    service = make_sync_service(vercel=FakeVercel(), secrets=secrets, failed_records=failed)

    assert sync_one(service, change(record())) == "parked"
    assert failed.reasons() == ["invalid_record"]


@pytest.mark.parametrize(
    "secret",
    ['pw-with-"quote"-and-\\back', "pässwörd-ünïcode-1", "line\nbreak-secret"],
)
def test_secrets_echoed_json_escaped_by_vercel_are_scrubbed(secret: str) -> None:
    body = json.dumps({"error": {"code": "bad_request", "message": f"bad value {secret}"}})
    assert secret not in body or secret.isascii()  # the body holds the escaped form
    scrubbed = scrub_text(body, [secret])
    assert json.dumps(secret)[1:-1] not in scrubbed
    assert REDACTED in scrubbed


def test_a_secret_straddling_the_cut_of_a_long_error_body_is_not_left_in_part() -> None:
    # The secret sits right where the kept part of the body ends.
    body = "x" * (2048 - 10) + DB_PASSWORD + "y" * 5000
    vercel = FakeVercel(script={"db_primary": [vercel_rejects(400, body)]})
    failed = FakeFailedRecords()
    service = make_sync_service(vercel=vercel, secrets=FakeSecrets(), failed_records=failed)

    assert sync_one(service, change(record())) == "parked"
    (message,) = failed.messages
    text = json.dumps(message)
    for size in range(6, len(DB_PASSWORD) + 1):
        assert DB_PASSWORD[:size] not in text
    assert len(message["vercelError"]) < 2200


def test_failed_records_keep_only_partner_record_fields() -> None:
    item = record(internalNotes="do not copy", customerEmail="someone@example.com")
    message = build_failed_record_message(
        change(item), InvalidRecordError("nope"), failed_at=datetime(2026, 1, 1, tzinfo=UTC)
    )
    assert set(message["record"]) == set(record())
    assert "customerEmail" not in json.dumps(message)


def test_failed_record_detail_and_ids_are_bounded() -> None:
    item = record(resourceId="r" * 100_000)
    message = build_failed_record_message(
        change(item), InvalidRecordError("d" * 100_000), failed_at=datetime(2026, 1, 1, tzinfo=UTC)
    )
    assert len(message["detail"]) < 2200
    assert len(message["resourceId"]) < 1100


class TestResourceSecretScope:
    settings = Settings(resource_secret_prefix="partner/resources/")

    @pytest.mark.parametrize(
        "secret_id",
        [
            "partner/resources/icfg_1/db_primary",
            "arn:aws:secretsmanager:us-east-1:123456789012:secret:partner/resources/icfg_1/db_primary-AbCdEf",
        ],
    )
    def test_secrets_under_the_prefix_are_allowed(self, secret_id: str) -> None:
        assert self.settings.is_resource_secret(secret_id)

    @pytest.mark.parametrize(
        "secret_id",
        [
            "vercel/installations/icfg_other",
            "arn:aws:secretsmanager:us-east-1:123456789012:secret:vercel/installations/icfg_other-AbCdEf",
            "partner/other/db",
            "arn:aws:secretsmanager:us-east-1:123456789012:secret",
        ],
    )
    def test_other_secrets_are_refused(self, secret_id: str) -> None:
        assert not self.settings.is_resource_secret(secret_id)

    def test_without_a_prefix_no_secret_may_be_named(self) -> None:
        settings = Settings()
        assert not settings.is_resource_secret("anything/else")
        with pytest.raises(TransientSyncError, match="RESOURCE_SECRET_PREFIX"):
            SecretsManagerReader(settings, provider=object()).resource_secrets(
                "anything/else", installation_id="icfg_1"
            )

    @pytest.mark.parametrize(
        "token_secret_id",
        [
            # The token and resource prefixes overlap, so only the token id's shape tells them apart.
            "arn:aws:secretsmanager:us-east-1:123456789012:secret:shared/{integrationConfigurationId}-vercel-token",
            "shared/{integrationConfigurationId}-vercel-token",
        ],
    )
    def test_tokens_are_refused_whatever_the_shape_of_their_id(self, token_secret_id: str) -> None:
        settings = Settings(resource_secret_prefix="shared/", token_secret_id=token_secret_id)
        token_name = secret_name(token_secret_id).replace("{integrationConfigurationId}", "icfg_other")
        assert not settings.is_resource_secret(token_name)
        assert not settings.is_resource_secret(
            f"arn:aws:secretsmanager:us-east-1:123456789012:secret:{token_name}-AbC123"
        )
        assert settings.is_resource_secret("shared/icfg_1/db_primary")

    def test_reader_refuses_before_reading(self) -> None:
        class Provider:
            def get(self, *args: Any, **kwargs: Any) -> str:
                raise AssertionError("must not read")

        reader = SecretsManagerReader(self.settings, provider=Provider())
        with pytest.raises(InvalidRecordError, match="outside the resource-secret prefix"):
            reader.resource_secrets("vercel/installations/icfg_other", installation_id="icfg_other")


@pytest.mark.parametrize("token", ["tök-non-ascii-1234", "has space 12345", "tab\tseparated"])
def test_tokens_a_header_cannot_carry_are_unavailable(token: str) -> None:
    class Provider:
        def get(self, *args: Any, **kwargs: Any) -> str:
            return json.dumps({"access_token": token})

    reader = SecretsManagerReader(Settings(), provider=Provider())
    with pytest.raises(PermanentSyncError) as caught:
        reader.installation_token("icfg_1")
    assert caught.value.reason == "token_unavailable"
    assert token not in str(caught.value)


@respx.mock
@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_redirects_go_back_to_the_source(status: int) -> None:
    respx.put(url__startswith=BASE).mock(
        return_value=httpx.Response(status, headers={"Location": "https://elsewhere.test/"})
    )
    with pytest.raises(TransientSyncError, match="VERCEL_API_URL"):
        VercelClient(BASE).import_resource("icfg_1", "r1", {"name": "x"}, token=TOKEN)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after": "inf"}, None),
        ({"retry-after": "nan"}, None),
        ({"retry-after": "1e12"}, MAX_RETRY_AFTER_SECONDS),
        ({"retry-after-ms": "-5"}, 0.0),
        ({"retry-after": "7"}, 7.0),
    ],
)
def test_retry_after_is_bounded(headers: dict[str, str], expected: float | None) -> None:
    assert retry_after_seconds(headers) == expected


@respx.mock
def test_a_long_secret_cut_where_the_error_body_was_read_leaves_no_part_behind() -> None:
    # Echoed four times, the body passes the 16 KiB read limit, which cuts through the last echo;
    # the scrub then shortens the text, so that cut part would move inside what is kept.
    import secrets as random_text

    secret = random_text.token_urlsafe(3750)  # 5,000 characters
    body = json.dumps({"error": {"code": "bad_request", "message": "bad " + secret * 4}})
    respx.put(url__startswith=BASE).mock(return_value=httpx.Response(400, content=body.encode()))
    document = {"BIG": {"value": secret, "preview": secret, "production": secret}}
    failed = FakeFailedRecords()
    service = make_sync_service(
        vercel=VercelClient(BASE),
        secrets=FakeSecrets(documents={"partner/resources/icfg_1/db_primary": document}),
        failed_records=failed,
    )

    assert sync_one(service, change(record())) == "parked"
    text = json.dumps(failed.messages)
    assert not any(secret[i : i + 12] in text for i in range(len(secret) - 12))


def stream_change(item: dict[str, Any], created_at: datetime) -> SourceChange:
    position = SourcePosition(
        kind="dynamodb-stream", event_source_arn="arn:stream", item_identifier="100", created_at=created_at
    )
    return SourceChange(position, item)


def test_a_stream_record_still_failing_near_the_end_of_its_retention_is_parked_whole() -> None:
    now = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
    failed = FakeFailedRecords()
    vercel = FakeVercel(failing={"db_primary": TransientSyncError("Vercel answered 503", http_status=503)})
    service = make_sync_service(
        vercel=vercel,
        secrets=FakeSecrets(),
        failed_records=failed,
        sleep=lambda _seconds: None,
        clock=lambda: now,
        park_stream_records_after_seconds=20 * 3600,
    )
    young = stream_change(record(), now - timedelta(hours=19, minutes=59))
    old = stream_change(record(), now - timedelta(hours=20))

    with pytest.raises(TransientSyncError):
        sync_one(service, young)
    assert sync_one(service, old) == "parked"

    (message,) = failed.messages
    assert message["reason"] == "retries_exhausted"
    assert message["httpStatus"] == 503
    assert message["record"] == record()
    assert message["source"]["approximateCreationDateTime"] == "2026-11-26T16:00:00+00:00"


def test_an_old_record_whose_parking_hits_a_bug_too_goes_back_to_its_source() -> None:
    from vercel_sync.ports import NullObserver

    now = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)

    class BrokenVercel:
        def import_resource(self, *_: Any, **__: Any) -> dict[str, Any]:
            raise RuntimeError("a bug in the call")

    class BrokenObserver(NullObserver):
        def parked(self, *_: Any, **__: Any) -> None:
            raise KeyError("a bug in reporting the parking")

    service = make_sync_service(
        vercel=BrokenVercel(),
        secrets=FakeSecrets(),
        failed_records=FakeFailedRecords(),
        observer=BrokenObserver(),
        clock=lambda: now,
        park_stream_records_after_seconds=20 * 3600,
    )

    (result,) = service.sync_batch([stream_change(record(), now - timedelta(hours=21))])

    assert result.failed
    assert result.error is not None
    assert "unexpected RuntimeError" in result.error.message


def test_parking_needs_time_too() -> None:
    clock = SteppingClock()

    class SlowRejectingVercel(FakeVercel):
        def import_resource(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
            clock.now += 35  # the call takes 35 s, then Vercel refuses the record for good
            raise vercel_rejects(400)

    failed = FakeFailedRecords()
    service = make_sync_service(
        vercel=SlowRejectingVercel(),
        secrets=FakeSecrets(),
        failed_records=failed,
        time_budget=TimeBudget(aws_call_ms=10_000, vercel_call_ms=10_000, margin_ms=1_000),
        monotonic=clock,
    )

    # 40 s: enough to start (31 s); after the call 5 s are left, too little to park (11 s).
    with pytest.raises(TransientSyncError, match="failed-records queue"):
        sync_one(service, change(record()), time_left_ms=40_000)
    assert failed.messages == []


class DrippingStream(httpx.SyncByteStream):
    def __iter__(self) -> Any:
        import time

        for _ in range(20):
            time.sleep(0.1)
            yield b" "


@respx.mock
def test_an_answer_that_drips_in_is_cut_off_at_the_read_timeout() -> None:
    respx.put(url__startswith=BASE).mock(return_value=httpx.Response(200, stream=DrippingStream()))
    with pytest.raises(TransientSyncError, match="longer than the call's timeout"):
        VercelClient(BASE, timeout_seconds=0.5).import_resource("icfg_1", "r1", {"name": "x"}, token=TOKEN)
