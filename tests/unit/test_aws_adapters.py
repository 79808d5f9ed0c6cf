"""The Secrets Manager reader and the failed-records queue against moto's in-process AWS."""

from __future__ import annotations

import json
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from vercel_sync.adapters.failed_records import SqsFailedRecordsQueue
from vercel_sync.adapters.secrets import SecretsManagerReader
from vercel_sync.errors import InvalidRecordError, PermanentSyncError, TransientSyncError
from vercel_sync.settings import Settings, SyncSettings

TOKEN = "vrcl_tok_adapter_test_value"


@pytest.fixture
def aws() -> Iterator[None]:
    with mock_aws():
        yield


@pytest.fixture
def secretsmanager(aws: None) -> Any:
    return boto3.client("secretsmanager", region_name="us-east-1")


@pytest.fixture
def reader(aws: None) -> SecretsManagerReader:
    return SecretsManagerReader(
        Settings(
            token_cache_seconds=300, resource_secret_cache_seconds=300, resource_secret_prefix="partner/resources/"
        )
    )


@pytest.mark.parametrize(
    "stored",
    [json.dumps({"access_token": TOKEN, "token_type": "Bearer"}), TOKEN, f"  {TOKEN}\n"],
)
def test_token_as_vercel_sends_it_or_bare(stored: str, secretsmanager: Any, reader: SecretsManagerReader) -> None:
    secretsmanager.create_secret(Name="vercel/installations/icfg_1", SecretString=stored)
    assert reader.installation_token("icfg_1") == TOKEN


def test_token_is_cached_and_force_fetch_reads_past_the_cache(
    secretsmanager: Any, reader: SecretsManagerReader
) -> None:
    secretsmanager.create_secret(Name="vercel/installations/icfg_1", SecretString=json.dumps({"access_token": "old"}))
    assert reader.installation_token("icfg_1") == "old"
    secretsmanager.put_secret_value(
        SecretId="vercel/installations/icfg_1", SecretString=json.dumps({"access_token": "new"})
    )

    assert reader.installation_token("icfg_1") == "old"  # cached
    assert reader.installation_token("icfg_1", force_fetch=True) == "new"
    assert reader.installation_token("icfg_1") == "new"


def test_token_secret_id_comes_from_the_template_setting(secretsmanager: Any, aws: None) -> None:
    secretsmanager.create_secret(Name="tenants/icfg_9/vercel", SecretString=TOKEN)
    reader = SecretsManagerReader(Settings(token_secret_id="tenants/{integrationConfigurationId}/vercel"))
    assert reader.installation_token("icfg_9") == TOKEN


@pytest.mark.parametrize("stored", [json.dumps({"token": "x"}), "{not json", "   "])
def test_unusable_token_secret_is_permanent(stored: str, secretsmanager: Any, reader: SecretsManagerReader) -> None:
    secretsmanager.create_secret(Name="vercel/installations/icfg_1", SecretString=stored)
    with pytest.raises(PermanentSyncError) as caught:
        reader.installation_token("icfg_1")
    assert caught.value.reason == "token_unavailable"
    assert "x" not in caught.value.message.replace("expected", "")  # no value echoed


def test_missing_secrets_are_permanent_with_the_aws_code(reader: SecretsManagerReader) -> None:
    with pytest.raises(PermanentSyncError, match="ResourceNotFoundException") as caught:
        reader.installation_token("icfg_missing")
    assert caught.value.reason == "token_unavailable"
    with pytest.raises(PermanentSyncError, match="ResourceNotFoundException") as caught:
        reader.resource_secrets("partner/resources/icfg_1/missing", installation_id="icfg_1")
    assert caught.value.reason == "resource_secret_unavailable"
    with pytest.raises(PermanentSyncError, match="ResourceNotFoundException") as caught:
        reader.resource_secrets("partner/resources/missing", installation_id="icfg_1")  # its tags, then
    assert caught.value.reason == "resource_secret_unavailable"


def test_resource_secret_document(secretsmanager: Any, reader: SecretsManagerReader) -> None:
    document = {"URL": "postgres://x", "PW": {"value": "p", "preview": "q"}}
    secretsmanager.create_secret(Name="partner/resources/icfg_1/db", SecretString=json.dumps(document))
    assert reader.resource_secrets("partner/resources/icfg_1/db", installation_id="icfg_1") == document


def test_resource_secret_tagged_for_its_installation(secretsmanager: Any, reader: SecretsManagerReader) -> None:
    document = {"URL": "postgres://x"}
    secretsmanager.create_secret(
        Name="partner/resources/legacy-db",
        SecretString=json.dumps(document),
        Tags=[{"Key": "vercel:integrationConfigurationId", "Value": "icfg_1"}],
    )
    assert reader.resource_secrets("partner/resources/legacy-db", installation_id="icfg_1") == document
    with pytest.raises(InvalidRecordError, match="does not belong"):
        reader.resource_secrets("partner/resources/legacy-db", installation_id="icfg_2")


def test_resource_secret_that_is_not_json_is_permanent(secretsmanager: Any, reader: SecretsManagerReader) -> None:
    secretsmanager.create_secret(Name="partner/resources/icfg_1/db", SecretString="plain-password-value")
    with pytest.raises(PermanentSyncError) as caught:
        reader.resource_secrets("partner/resources/icfg_1/db", installation_id="icfg_1")
    assert "plain-password-value" not in caught.value.message


def test_resource_secret_stored_as_binary_that_is_not_utf8_is_permanent(
    secretsmanager: Any, reader: SecretsManagerReader
) -> None:
    secretsmanager.create_secret(Name="partner/resources/icfg_1/db", SecretBinary=b"\xff\xfe\x00binary")
    with pytest.raises(PermanentSyncError, match="partner/resources/icfg_1/db") as caught:
        reader.resource_secrets("partner/resources/icfg_1/db", installation_id="icfg_1")
    assert caught.value.reason == "resource_secret_unavailable"


class ThrottledClient:
    def get_secret_value(self, **_: Any) -> Any:
        raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow down"}}, "GetSecretValue")


def test_throttling_is_transient() -> None:
    from aws_lambda_powertools.utilities.parameters import SecretsProvider

    reader = SecretsManagerReader(Settings(), provider=SecretsProvider(boto3_client=ThrottledClient()))  # type: ignore[arg-type]
    with pytest.raises(TransientSyncError, match="ThrottlingException"):
        reader.installation_token("icfg_1")


def test_failed_records_queue_carries_the_message_and_reason(aws: None) -> None:
    sqs = boto3.client("sqs", region_name="us-east-1")
    url = sqs.create_queue(QueueName="failed-records")["QueueUrl"]
    message = {"schemaVersion": 1, "reason": "invalid_record", "integrationConfigurationId": "i", "resourceId": "r"}

    SqsFailedRecordsQueue(url).park(message)

    (received,) = sqs.receive_message(QueueUrl=url, MessageAttributeNames=["All"])["Messages"]
    assert json.loads(received["Body"]) == message
    assert received["MessageAttributes"]["reason"]["StringValue"] == "invalid_record"


def test_failed_records_fifo_queue_refuses_oversized_records_and_takes_odd_ids(aws: None) -> None:
    sqs = boto3.client("sqs", region_name="us-east-1")
    url = sqs.create_queue(QueueName="failed-records.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
    huge = {"schemaVersion": 1, "reason": "vercel_rejected", "record": {"blob": "x" * 300_000}}

    # Refused whole (the record then stays at its source), never sent without its record.
    with pytest.raises(ValueError, match="larger than one SQS message"):
        SqsFailedRecordsQueue(url).park(huge)
    assert "Messages" not in sqs.receive_message(QueueUrl=url)

    odd = {"schemaVersion": 1, "reason": "invalid_record", "integrationConfigurationId": "i\ud800", "resourceId": "r"}
    SqsFailedRecordsQueue(url).park(odd)
    (received,) = sqs.receive_message(QueueUrl=url)["Messages"]
    assert json.loads(received["Body"])["integrationConfigurationId"] == "i\ud800"


def test_the_service_builds_each_aws_client_once_from_one_session_when_first_used(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """One boto3 session per container (its loader's caches serve every client), no client
    before it is needed, one DynamoDB client for the state table and the rate limiter."""
    import boto3.session

    from vercel_sync.wiring import build_sync_service

    sessions: list[Any] = []

    class Session:
        def __init__(self) -> None:
            self.built: list[str] = []
            sessions.append(self)

        def client(self, service: str, config: Any = None) -> Any:
            assert config is not None  # the runtime's short timeouts and one retry
            self.built.append(service)
            return SimpleNamespace(service=service)

    monkeypatch.setattr(boto3.session, "Session", Session)
    service = build_sync_service(
        SyncSettings(sync_state_table="sync-state", failed_records_queue_url="https://sqs.example/q")
    )
    assert sessions == []
    state_client = service.adapters.state_store._dynamodb()  # type: ignore[union-attr]
    limiter_client = service.adapters.rate_limiter._dynamodb()  # type: ignore[union-attr]
    assert state_client is limiter_client
    provider = service.adapters.secrets._secrets_provider()  # type: ignore[attr-defined]
    queue_client = service.adapters.failed_records._sqs()  # type: ignore[union-attr]
    assert queue_client is service.adapters.source_queue._sqs()  # type: ignore[union-attr]
    # Each is built when an operation is first looked up on it (one per service at this tier).
    assert [c.service for c in (state_client, limiter_client, provider.client, queue_client)] == [
        "dynamodb",
        "dynamodb",
        "secretsmanager",
        "sqs",
    ]
    assert len(sessions) == 1
    assert sorted(sessions[0].built) == ["dynamodb", "secretsmanager", "sqs"]
