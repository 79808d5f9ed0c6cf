"""The SAM template, parsed: the properties the design depends on, asserted where they live."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from cfnlint.decode.cfn_yaml import loads

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE: dict[str, Any] = loads((ROOT / "template.yaml").read_text())
RESOURCES: dict[str, Any] = TEMPLATE["Resources"]
GLOBALS = TEMPLATE["Globals"]["Function"]


def props(name: str) -> dict[str, Any]:
    return dict(RESOURCES[name]["Properties"])


def test_runtime_architecture_and_layer() -> None:
    assert GLOBALS["Runtime"] == "python3.13"
    assert GLOBALS["Architectures"] == ["arm64"]
    layer = RESOURCES["SyncCoreLayer"]
    assert layer["Metadata"]["BuildMethod"] == "python3.13"
    assert props("SyncCoreLayer")["ContentUri"] == "layers/sync_core/"
    assert (ROOT / "layers/sync_core/vercel_sync/__init__.py").exists()


def test_handlers_are_the_contract_paths() -> None:
    for name, path in (
        ("StreamSyncFunction", "functions/stream_sync/"),
        ("QueueSyncFunction", "functions/queue_sync/"),
    ):
        assert props(name)["CodeUri"] == path
        assert props(name)["Handler"] == "app.lambda_handler"
        assert (ROOT / path / "app.py").exists()


def test_environment_names_the_contract_variables() -> None:
    variables = GLOBALS["Environment"]["Variables"]
    for name in (
        "VERCEL_API_URL",
        "VERCEL_TOKEN_SECRET_ID",
        "RESOURCE_SECRET_PREFIX",
        "FAILED_RECORDS_QUEUE_URL",
        "SYNC_STATE_TABLE",
        "MAX_CONCURRENCY",
        "VERCEL_RATE_LIMIT",
        "HTTP_TIMEOUT_SECONDS",
        "POWERTOOLS_SERVICE_NAME",
        "POWERTOOLS_METRICS_NAMESPACE",
    ):
        assert name in variables
    assert variables["POWERTOOLS_LOGGER_LOG_EVENT"] == "false"


def test_stream_event_source() -> None:
    event = props("StreamSyncFunction")["Events"]["PartnerTableStream"]
    assert event["Type"] == "DynamoDB"
    source = event["Properties"]
    assert source["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert 0 < source["MaximumRetryAttempts"] <= 10_000
    assert 60 <= source["MaximumRecordAgeInSeconds"] <= 604_800
    assert source["BisectBatchOnFunctionError"] is True
    assert source["DestinationConfig"]["OnFailure"]["Type"] == "SQS"
    assert props("PartnerTable")["StreamSpecification"]["StreamViewType"] == "NEW_AND_OLD_IMAGES"


def test_queue_event_source_and_visibility_timeout() -> None:
    event = props("QueueSyncFunction")["Events"]["PartnerEvents"]
    assert event["Type"] == "SQS"
    assert event["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    queue = props("PartnerEventsQueue")
    timeout = props("QueueSyncFunction").get("Timeout", GLOBALS["Timeout"])
    assert queue["VisibilityTimeout"] >= 6 * timeout
    assert queue["RedrivePolicy"]["maxReceiveCount"] >= 1
    assert "deadLetterTargetArn" in queue["RedrivePolicy"]


@pytest.mark.parametrize(
    "name", ["FailedRecordsQueue", "StreamFailureQueue", "PartnerEventsQueue", "PartnerEventsDeadLetterQueue"]
)
def test_queues_are_encrypted(name: str) -> None:
    assert props(name)["SqsManagedSseEnabled"] is True


@pytest.mark.parametrize("name", ["SyncStateTable", "PartnerTable"])
def test_tables_are_encrypted_and_on_demand(name: str) -> None:
    assert props(name)["SSESpecification"]["SSEEnabled"] is True
    assert props(name)["BillingMode"] == "PAY_PER_REQUEST"


def test_state_table_has_ttl() -> None:
    assert props("SyncStateTable")["TimeToLiveSpecification"]["Enabled"] is True


def statements(role: str) -> list[dict[str, Any]]:
    found = []
    for policy in props(role)["Policies"]:
        for statement in policy["PolicyDocument"]["Statement"]:
            if "Fn::If" in statement:  # a statement that exists only under a condition
                statement = statement["Fn::If"][1]
            found.append(statement)
    return found


def actions(statement: dict[str, Any]) -> list[str]:
    action = statement["Action"]
    return [action] if isinstance(action, str) else list(action)


@pytest.mark.parametrize("role", ["StreamSyncRole", "QueueSyncRole"])
def test_iam_is_scoped(role: str) -> None:
    for statement in statements(role):
        assert statement["Effect"] == "Allow"
        services = {a.split(":")[0] for a in actions(statement)}
        if statement["Resource"] == "*":
            # Only X-Ray's two write actions, which have no resource-level permissions.
            assert services == {"xray"}
        assert not any(a.endswith(":*") or a == "*" for a in actions(statement))
    secret_statement = next(s for s in statements(role) if "secretsmanager:GetSecretValue" in actions(s))
    assert actions(secret_statement) == ["secretsmanager:GetSecretValue"]
    assert len(secret_statement["Resource"]) == 2  # the token prefix and the resource-secret prefix


def test_tracing_is_a_parameter_and_off_by_default() -> None:
    assert TEMPLATE["Parameters"]["EnableTracing"]["Default"] == "false"
    assert GLOBALS["Environment"]["Variables"]["POWERTOOLS_TRACE_DISABLED"] == {
        "Fn::If": ["TracingOn", "false", "true"]
    }


def test_functions_use_their_own_roles() -> None:
    assert props("StreamSyncFunction")["Role"] == {"Fn::GetAtt": ["StreamSyncRole", "Arn"]}
    assert props("QueueSyncFunction")["Role"] == {"Fn::GetAtt": ["QueueSyncRole", "Arn"]}


def test_the_largest_allowed_http_timeout_still_leaves_time_to_work() -> None:
    from vercel_sync.runtime import time_budget
    from vercel_sync.settings import Settings

    largest = TEMPLATE["Parameters"]["HttpTimeoutSeconds"]["MaxValue"]
    budget = time_budget(Settings(http_timeout_seconds=largest))
    needed = budget.record_ms + budget.park_ms + budget.margin_ms
    # At least a quarter of the function's time stays for work before records are handed back.
    assert needed <= 0.75 * GLOBALS["Timeout"] * 1000


def test_customer_managed_key_is_optional_and_scoped() -> None:
    assert TEMPLATE["Parameters"]["CustomerManagedKeyArn"]["Default"] == ""
    for role in ("StreamSyncRole", "QueueSyncRole"):
        kms = [s for s in statements(role) if "kms:Decrypt" in actions(s)]
        assert kms == [{"Effect": "Allow", "Action": "kms:Decrypt", "Resource": {"Ref": "CustomerManagedKeyArn"}}]
