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


@pytest.mark.parametrize("role", ["StreamSyncRole", "QueueSyncRole", "RotationSyncRole"])
def test_sync_roles_may_read_the_tags_of_resource_secrets_only(role: str) -> None:
    # A secret outside an installation's folder belongs to it by its tag: DescribeSecret, no value.
    (describe,) = [s for s in statements(role) if "secretsmanager:DescribeSecret" in actions(s)]
    assert actions(describe) == ["secretsmanager:DescribeSecret"]
    resources = describe["Resource"] if isinstance(describe["Resource"], list) else [describe["Resource"]]
    prefix_arn = "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:${ResourceSecretPrefix}*"
    assert resources == [{"Fn::Sub": prefix_arn}]


def test_the_functions_know_their_account() -> None:
    # A secretsArn of another account is refused unread (AWS_REGION is Lambda's own).
    assert GLOBALS["Environment"]["Variables"]["FUNCTION_ACCOUNT_ID"] == {"Ref": "AWS::AccountId"}
    assert TEMPLATE["Parameters"]["ResourceSecretPrefix"]["AllowedPattern"].endswith("/$")


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
    from vercel_sync.settings import Settings
    from vercel_sync.wiring import time_budget

    parameter = TEMPLATE["Parameters"]["FunctionTimeoutSeconds"]
    least_ms = time_budget(Settings()).least_function_timeout_ms
    assert parameter["MinValue"] * 1000 == least_ms
    assert parameter["MinValue"] <= parameter["Default"] <= parameter["MaxValue"]
    # Whatever HttpTimeoutSeconds is: a call is cut to the time left, not reserved whole.
    largest = TEMPLATE["Parameters"]["HttpTimeoutSeconds"]["MaxValue"]
    assert time_budget(Settings(http_timeout_seconds=largest)).least_function_timeout_ms == least_ms


def via(*services: str) -> dict[str, Any]:
    return {
        "StringEquals": {
            "kms:ViaService": [{"Fn::Sub": f"{service}.${{AWS::Region}}.${{AWS::URLSuffix}}"} for service in services]
        }
    }


@pytest.mark.parametrize(
    ("role", "services"),
    [
        ("StreamSyncRole", ("secretsmanager", "dynamodb")),  # resource secrets and tokens; the partner stream
        ("QueueSyncRole", ("secretsmanager", "sqs")),  # ...; the partner queue
        ("RotationSyncRole", ("secretsmanager",)),
    ],
)
def test_customer_managed_key_is_optional_and_used_only_through_the_services_that_need_it(
    role: str, services: tuple[str, ...]
) -> None:
    # The queue function also sends a message waiting for the rate limit again to the partner queue.
    action: str | list[str] = ["kms:Decrypt", "kms:GenerateDataKey"] if role == "QueueSyncRole" else "kms:Decrypt"
    assert TEMPLATE["Parameters"]["CustomerManagedKeyArn"]["Default"] == ""
    kms = [s for s in statements(role) if any(a.startswith("kms:") for a in actions(s))]
    assert kms == [
        {
            "Effect": "Allow",
            "Action": action,
            "Resource": {"Ref": "CustomerManagedKeyArn"},
            "Condition": via(*services),
        }
    ]


def test_every_kms_statement_names_the_services_it_goes_through() -> None:
    for role in of_type("AWS::IAM::Role"):
        for statement in statements(role):
            if any(a.startswith("kms:") for a in actions(statement)):
                allowed = statement["Condition"]["StringEquals"]["kms:ViaService"]
                assert allowed, role
                assert set(statement["Condition"]) == {"StringEquals"}, role


def test_rotation_writes_only_its_own_rate_limit_buckets() -> None:
    """The rotation role may update only the secrets-update buckets (dynamodb:LeadingKeys): the keys
    wiring's secrets-update buckets take in the rate limiter, never a resource's state or an import bucket."""
    from fnmatch import fnmatchcase

    from vercel_sync.adapters.bucket_table import PK_PREFIX
    from vercel_sync.wiring import SecretsUpdateBuckets

    class Recorder:
        def __init__(self) -> None:
            self.buckets: list[str] = []

        def acquire(self, installation_id: str, *, max_wait_seconds: float) -> bool:
            self.buckets.append(installation_id)
            return True

        def pause(self, installation_id: str, seconds: float) -> None:
            self.buckets.append(installation_id)

    recorder = Recorder()
    buckets = SecretsUpdateBuckets(recorder)  # type: ignore[arg-type]
    buckets.acquire("icfg_1", max_wait_seconds=1)
    buckets.pause("icfg_2", 1)
    written = [PK_PREFIX + bucket for bucket in recorder.buckets]

    writes = [
        s
        for s in statements("RotationSyncRole")
        if any(a.startswith("dynamodb:") and a != "dynamodb:Query" for a in actions(s))
    ]
    assert [actions(s) for s in writes] == [["dynamodb:UpdateItem"]]
    (update,) = writes
    assert update["Resource"] == {"Fn::GetAtt": ["SyncStateTable", "Arn"]}
    (patterns,) = update["Condition"]["ForAllValues:StringLike"].values()
    assert list(update["Condition"]["ForAllValues:StringLike"]) == ["dynamodb:LeadingKeys"]
    for key in written:
        assert any(fnmatchcase(key, pattern) for pattern in patterns), key
    # Keys the rotation role must not touch: an import bucket, a resource's state, a backfill run.
    for key in (PK_PREFIX + "icfg_1", PK_PREFIX + "icfg_secrets-update/x", "icfg_1#db", "backfill#run"):
        assert not any(fnmatchcase(key, pattern) for pattern in patterns), key


@pytest.mark.parametrize("role", ["StreamSyncRole", "QueueSyncRole", "RotationSyncRole"])
def test_short_lived_tokens_read_the_one_credentials_secret_when_it_is_named(role: str) -> None:
    (conditional,) = [
        s["Fn::If"]
        for policy in props(role)["Policies"]
        for s in policy["PolicyDocument"]["Statement"]
        if "Fn::If" in s and s["Fn::If"][0] == "HasIntegrationCredentials"
    ]
    statement = conditional[1]
    assert actions(statement) == ["secretsmanager:GetSecretValue"]
    credentials = "${IntegrationCredentialsSecretName}-??????"
    assert statement["Resource"] == {
        "Fn::Sub": f"arn:${{AWS::Partition}}:secretsmanager:${{AWS::Region}}:${{AWS::AccountId}}:secret:{credentials}"
    }
    assert conditional[2] == {"Ref": "AWS::NoValue"}
    variables = GLOBALS["Environment"]["Variables"]
    assert variables["TOKEN_MODE"] == {"Ref": "TokenMode"}
    assert variables["INTEGRATION_CREDENTIALS_SECRET_ID"] == {"Ref": "IntegrationCredentialsSecretName"}
    assert variables["VERCEL_TOKEN_URL"] == {"Ref": "VercelTokenUrl"}
    assert TEMPLATE["Parameters"]["TokenMode"]["Default"] == "long-lived"
