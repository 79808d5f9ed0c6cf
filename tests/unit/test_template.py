"""The SAM template, parsed: the properties the design depends on, asserted where they live."""

from __future__ import annotations

import json
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
        ("RotationSyncFunction", "functions/rotation_sync/"),
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
    assert "Timeout" not in props("QueueSyncFunction")
    assert GLOBALS["Timeout"] == {"Ref": "FunctionTimeoutSeconds"}
    assert queue["VisibilityTimeout"] >= 6 * TEMPLATE["Parameters"]["FunctionTimeoutSeconds"]["MaxValue"]
    assert queue["RedrivePolicy"]["maxReceiveCount"] >= 1
    assert "deadLetterTargetArn" in queue["RedrivePolicy"]


def of_type(resource_type: str) -> list[str]:
    return [name for name, resource in RESOURCES.items() if resource["Type"] == resource_type]


def test_every_queue_is_encrypted() -> None:
    queues = of_type("AWS::SQS::Queue")
    assert {"FailedRecordsQueue", "StreamFailureQueue", "RotationFailureQueue", "PartnerEventsQueue"} <= set(queues)
    for name in queues:
        assert props(name).get("SqsManagedSseEnabled") is True or "KmsMasterKeyId" in props(name), name


def test_every_table_is_encrypted() -> None:
    tables = of_type("AWS::DynamoDB::Table")
    assert set(tables) == {"SyncStateTable", "PartnerTable"}
    for name in tables:
        assert props(name)["SSESpecification"]["SSEEnabled"] is True, name


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


@pytest.mark.parametrize("role", ["StreamSyncRole", "QueueSyncRole", "RotationSyncRole"])
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


def test_functions_use_their_own_roles_and_log_groups() -> None:
    for function, role, log_group in (
        ("StreamSyncFunction", "StreamSyncRole", "StreamSyncLogGroup"),
        ("QueueSyncFunction", "QueueSyncRole", "QueueSyncLogGroup"),
        ("RotationSyncFunction", "RotationSyncRole", "RotationSyncLogGroup"),
    ):
        assert props(function)["Role"] == {"Fn::GetAtt": [role, "Arn"]}
        assert props(function)["LoggingConfig"] == {"LogGroup": {"Ref": log_group}}
        logs = next(s for s in statements(role) if "logs:PutLogEvents" in actions(s))
        assert logs["Resource"] == {"Fn::GetAtt": [log_group, "Arn"]}


SCOPED_SERVICES = ("secretsmanager", "sqs", "dynamodb", "kms")


def resources_of(statement: dict[str, Any]) -> list[Any]:
    resource = statement["Resource"]
    return resource if isinstance(resource, list) else [resource]


def resource_texts(resource: Any) -> list[str]:
    """A Resource as written, each way it can resolve: a literal, a !Sub's text, both branches of
    an !If, a !Join's parts joined; a !Ref or !GetAtt is an exact ARN ("<exact>")."""
    if isinstance(resource, str):
        return [resource]
    ((function, argument),) = resource.items()
    if function == "Fn::Sub":
        return [str(argument)]
    if function == "Fn::If":
        return [text for branch in argument[1:] for text in resource_texts(branch)]
    if function == "Fn::Join":
        separator, parts = argument
        texts = [resource_texts(part) if not isinstance(part, str) else [part] for part in parts]
        return [separator.join(choice[0] for choice in texts)]
    return ["<exact>"]


@pytest.mark.parametrize("role", of_type("AWS::IAM::Role"))
def test_no_wildcard_resource_on_secrets_queues_or_tables(role: str) -> None:
    """Every statement on Secrets Manager, SQS, DynamoDB or KMS names exact ARNs, or a prefix (a
    trailing * after a fixed, non-empty name part): never "*" nor a wildcard inside an ARN."""
    for statement in statements(role):
        if not {a.split(":")[0] for a in actions(statement)} & set(SCOPED_SERVICES):
            continue
        for text in (text for resource in resources_of(statement) for text in resource_texts(resource)):
            assert text != "*", (role, statement)
            assert "*" not in text[:-1], (role, text)  # a wildcard only at the very end
            if text.endswith("*"):
                # The prefix is a parameter's value ending in "/", or a stream's ".../stream/".
                assert text.endswith(("Prefix}*", "/stream/*")), (role, text)


def test_the_state_table_has_the_sparse_secret_name_index() -> None:
    table = props("SyncStateTable")
    assert {"AttributeName": "secretName", "AttributeType": "S"} in table["AttributeDefinitions"]
    (index,) = table["GlobalSecondaryIndexes"]
    assert index == {
        "IndexName": "bySecretName",
        "KeySchema": [{"AttributeName": "secretName", "KeyType": "HASH"}],
        "Projection": {"ProjectionType": "ALL"},
    }
    query = next(s for s in statements("RotationSyncRole") if "dynamodb:Query" in actions(s))
    assert actions(query) == ["dynamodb:Query"]
    assert query["Resource"] == {"Fn::Sub": "${SyncStateTable.Arn}/index/bySecretName"}


def test_rotation_failures_end_in_an_encrypted_queue() -> None:
    on_failure = props("RotationSyncFunction")["EventInvokeConfig"]
    assert 0 <= on_failure["MaximumRetryAttempts"] <= 2
    destination = on_failure["DestinationConfig"]["OnFailure"]
    assert destination == {"Type": "SQS", "Destination": {"Fn::GetAtt": ["RotationFailureQueue", "Arn"]}}
    (target,) = props("RotationEventsRule")["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": ["RotationSyncFunction", "Arn"]}
    assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": ["RotationFailureQueue", "Arn"]}}
    assert target["RetryPolicy"]["MaximumEventAgeInSeconds"] <= 86_400
    sends = next(s for s in statements("RotationSyncRole") if "sqs:SendMessage" in actions(s))
    assert {"Fn::GetAtt": ["RotationFailureQueue", "Arn"]} in sends["Resource"]
    # Only EventBridge, and only for this rule, may send its dead letters to the queue.
    (statement,) = props("RotationFailureQueuePolicy")["PolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": "events.amazonaws.com"}
    assert statement["Condition"] == {"ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": ["RotationEventsRule", "Arn"]}}}
    permission = props("RotationSyncInvokePermission")
    assert permission["Principal"] == "events.amazonaws.com"
    assert permission["SourceArn"] == {"Fn::GetAtt": ["RotationEventsRule", "Arn"]}


def rule_pattern() -> Any:
    from local_aws.template import Template

    template = Template.load()
    pseudo = {"AWS::Partition": "aws", "AWS::Region": "us-east-1", "AWS::AccountId": "123456789012"}
    return template.resolve(props("RotationEventsRule")["EventPattern"], pseudo.__getitem__)


def matches(event: dict[str, Any]) -> bool:
    from moto.events.models import EventPattern  # EventBridge's matching, as moto implements it

    return EventPattern(None, rule_pattern()).matches_event(event)


def test_the_rule_takes_the_sample_events() -> None:
    for path in sorted((ROOT / "events" / "rotation").glob("*.json")):
        assert matches(json.loads(path.read_text())), path.name


@pytest.mark.parametrize(
    "secret_id",
    [
        "vercel/installations/icfg_1",
        "arn:aws:secretsmanager:us-east-1:123456789012:secret:vercel/installations/icfg_1-AbC123",
        "other/partner/resources/x",
        "arn:aws:secretsmanager:us-east-1:999999999999:secret:partner/resources/x-AbC123",  # another account
    ],
)
def test_the_rule_leaves_out_secrets_outside_the_resource_prefix(secret_id: str) -> None:
    put = json.loads((ROOT / "events" / "rotation" / "put_secret_value.json").read_text())
    put["detail"]["requestParameters"]["secretId"] = secret_id
    rotated = json.loads((ROOT / "events" / "rotation" / "rotation_succeeded.json").read_text())
    rotated["detail"]["additionalEventData"]["SecretId"] = secret_id
    assert not matches(put)
    assert not matches(rotated)


def test_a_function_timeout_too_short_for_one_record_is_refused_at_deploy_time() -> None:
    from vercel_sync.runtime import time_budget
    from vercel_sync.settings import Settings

    parameter = TEMPLATE["Parameters"]["FunctionTimeoutSeconds"]
    least_ms = time_budget(Settings()).least_function_timeout_ms
    assert parameter["MinValue"] * 1000 == least_ms
    assert parameter["MinValue"] <= parameter["Default"] <= parameter["MaxValue"]
    # Whatever HttpTimeoutSeconds is: a call is cut to the time left, not reserved whole.
    largest = TEMPLATE["Parameters"]["HttpTimeoutSeconds"]["MaxValue"]
    assert time_budget(Settings(http_timeout_seconds=largest)).least_function_timeout_ms == least_ms


def test_customer_managed_key_is_optional_and_scoped() -> None:
    assert TEMPLATE["Parameters"]["CustomerManagedKeyArn"]["Default"] == ""
    for role in ("StreamSyncRole", "QueueSyncRole", "RotationSyncRole"):
        kms = [s for s in statements(role) if "kms:Decrypt" in actions(s)]
        assert kms == [{"Effect": "Allow", "Action": "kms:Decrypt", "Resource": {"Ref": "CustomerManagedKeyArn"}}]
