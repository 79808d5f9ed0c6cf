"""The template's operations side, parsed: the dashboard, the alarms, the backfill function and
its IAM, and the samconfig environments."""

from __future__ import annotations

import inspect
import json
import re
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cfnlint.decode.cfn_yaml import loads

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE: dict[str, Any] = loads((ROOT / "template.yaml").read_text())
RESOURCES: dict[str, Any] = TEMPLATE["Resources"]
PARAMETERS: dict[str, Any] = TEMPLATE["Parameters"]

CUSTOM_METRICS = {
    "ResourcesImported",
    "ResourcesSkippedUnchanged",
    "ResourcesSkippedStale",
    "RecordsCoalesced",
    "ItemsNotResources",
    "VercelCallRetries",
    "VercelThrottled",
    "RecordsReturnedForRetry",
    "RecordsFailedPermanently",
    "RecordsFailedUnexpectedly",
    "TokenRereads",
    "VercelCallLatency",
    "FunctionTimeoutTooShort",
}
FUNCTIONS = ("StreamSyncFunction", "QueueSyncFunction", "BackfillFunction", "RotationSyncFunction")
# Rotation sync's own metrics, as its observer and handler emit them (test_rotation_metrics_... reads the code).
ROTATION_METRICS = {
    "ResourceSecretsUpdated",
    "VercelCallsFailedTransiently",
    "RotationsFailedPermanently",
    "RotationEventsRetried",
}


def props(name: str) -> dict[str, Any]:
    return dict(RESOURCES[name]["Properties"])


def dashboard() -> dict[str, Any]:
    """The dashboard body with every ${...} replaced by a marker naming what it refers to."""
    body, variables = props("OperationsDashboard")["DashboardBody"]["Fn::Sub"]
    dlq_snippet, _ = variables["PartnerDeadLetterMetric"]["Fn::If"][1]["Fn::Sub"]
    body = body.replace("${PartnerDeadLetterMetric}", dlq_snippet.replace("${Name}", "ref:PartnerDeadLetterQueue"))
    # The other snippets (a source's widgets and lines, left out without it) as with every source.
    for name, value in variables.items():
        if "Fn::If" in value:
            snippet = value["Fn::If"][1]
            snippet = snippet["Fn::Sub"] if isinstance(snippet, dict) else snippet
            body = body.replace(f"${{{name}}}", snippet[0] if isinstance(snippet, list) else snippet)
    numbers = {"${VercelThrottledAlarmThreshold}": "10", "${IteratorAgeAlarmSeconds}": "1800"}
    for placeholder, value in numbers.items():
        body = body.replace(placeholder, value)
    body = re.sub(r"\$\{([^}]+)\}", lambda m: f"ref:{m.group(1)}", body)
    document: dict[str, Any] = json.loads(body)
    return document


def dashboard_metrics() -> Iterator[tuple[str, str, dict[str, str], dict[str, Any]]]:
    """(namespace, metric, dimensions, options) of every metric line in the dashboard."""
    for widget in dashboard()["widgets"]:
        for line in widget.get("properties", {}).get("metrics", []):
            if isinstance(line[0], dict):  # a metric math expression
                continue
            options = line[-1] if isinstance(line[-1], dict) else {}
            fields = [f for f in line if not isinstance(f, dict)]
            namespace, metric, *pairs = fields
            yield namespace, metric, dict(zip(pairs[::2], pairs[1::2], strict=True)), options


def test_dashboard_shows_every_custom_metric_by_service() -> None:
    custom = {
        metric
        for namespace, metric, dimensions, _ in dashboard_metrics()
        if namespace == "VercelResourceSync" and dimensions == {"service": "vercel-resource-sync"}
    }
    assert custom == CUSTOM_METRICS | ROTATION_METRICS
    # ...as the functions emit them (Powertools EMF: the template sets namespace and service).
    variables = TEMPLATE["Globals"]["Function"]["Environment"]["Variables"]
    assert variables["POWERTOOLS_METRICS_NAMESPACE"] == "VercelResourceSync"
    assert variables["POWERTOOLS_SERVICE_NAME"] == "vercel-resource-sync"
    latency = {o.get("stat") for _, m, _, o in dashboard_metrics() if m == "VercelCallLatency"}
    assert {"p50", "p99", "Maximum"} <= latency


def test_dashboard_shows_every_count_the_sync_observer_keeps() -> None:
    from vercel_sync.observability import _SKIPS

    shown = {metric for namespace, metric, _, _ in dashboard_metrics() if namespace == "VercelResourceSync"}
    assert {metric for metric, _ in _SKIPS.values()} <= shown


def test_dashboard_shows_iterator_age_queue_depths_and_function_health() -> None:
    lines = list(dashboard_metrics())
    assert ("AWS/Lambda", "IteratorAge", {"FunctionName": "ref:StreamSyncFunction"}) in [line[:3] for line in lines]
    queues = {d["QueueName"] for ns, m, d, _ in lines if (ns, m) == ("AWS/SQS", "ApproximateNumberOfMessagesVisible")}
    assert queues == {
        "ref:FailedRecordsQueue.QueueName",
        "ref:StreamFailureQueue.QueueName",
        "ref:PartnerQueueName",
        "ref:PartnerDeadLetterQueue",
        "ref:RotationFailureQueue.QueueName",
    }
    for function in FUNCTIONS:
        for metric in ("Errors", "Throttles", "Duration"):
            assert ("AWS/Lambda", metric, {"FunctionName": f"ref:{function}"}) in [line[:3] for line in lines]


def alarms() -> dict[str, dict[str, Any]]:
    return {name: r for name, r in RESOURCES.items() if r["Type"] == "AWS::CloudWatch::Alarm"}


def alarm_metric(properties: dict[str, Any]) -> tuple[str, str, Any]:
    if "Metrics" in properties:
        stat = next(m["MetricStat"]["Metric"] for m in properties["Metrics"] if "MetricStat" in m)
        return stat["Namespace"], stat["MetricName"], stat["Dimensions"][0]["Value"]
    return properties["Namespace"], properties["MetricName"], properties["Dimensions"][0]["Value"]


def test_each_alarm_says_what_it_means_and_what_to_do_and_notifies_the_optional_topic() -> None:
    assert PARAMETERS["AlarmTopicArn"]["Default"] == ""
    assert TEMPLATE["Conditions"]["HasAlarmTopic"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "AlarmTopicArn"}, ""]}]}
    topic = {"Fn::If": ["HasAlarmTopic", [{"Ref": "AlarmTopicArn"}], {"Ref": "AWS::NoValue"}]}
    assert len(alarms()) >= 9
    for name, alarm in alarms().items():
        properties = alarm["Properties"]
        description = properties["AlarmDescription"]
        text = description if isinstance(description, str) else description["Fn::Sub"]
        assert "Runbook" in text, name
        assert "Do" in text, name
        assert len(text) <= 1024, name
        assert properties["AlarmActions"] == topic, name
        assert properties["OKActions"] == topic, name
        assert properties["TreatMissingData"] == "notBreaching", name


@pytest.mark.parametrize(
    ("namespace", "metric", "subject", "threshold"),
    [
        ("AWS/SQS", "ApproximateNumberOfMessagesVisible", {"Fn::GetAtt": ["FailedRecordsQueue", "QueueName"]}, 0),
        ("AWS/SQS", "ApproximateNumberOfMessagesVisible", {"Fn::GetAtt": ["StreamFailureQueue", "QueueName"]}, 0),
        ("AWS/Lambda", "IteratorAge", {"Ref": "StreamSyncFunction"}, {"Ref": "IteratorAgeAlarmSeconds"}),
        ("AWS/Lambda", "Errors", {"Ref": "StreamSyncFunction"}, 0),
        ("AWS/Lambda", "Errors", {"Ref": "QueueSyncFunction"}, 0),
        ("AWS/Lambda", "Errors", {"Ref": "BackfillFunction"}, 0),
        ("AWS/Lambda", "Throttles", {"Ref": "StreamSyncFunction"}, 0),
        ("AWS/Lambda", "Throttles", {"Ref": "QueueSyncFunction"}, 0),
        ("VercelResourceSync", "VercelThrottled", "vercel-resource-sync", {"Ref": "VercelThrottledAlarmThreshold"}),
        ("AWS/SQS", "ApproximateNumberOfMessagesVisible", {"Fn::GetAtt": ["RotationFailureQueue", "QueueName"]}, 0),
        ("AWS/Lambda", "Errors", {"Ref": "RotationSyncFunction"}, 0),
        ("VercelResourceSync", "FunctionTimeoutTooShort", "vercel-resource-sync", 0),
    ],
)
def test_alarm_exists(namespace: str, metric: str, subject: Any, threshold: Any) -> None:
    found = [
        a["Properties"] for a in alarms().values() if alarm_metric(a["Properties"]) == (namespace, metric, subject)
    ]
    assert len(found) == 1
    assert found[0]["Threshold"] == threshold
    assert found[0]["ComparisonOperator"] == "GreaterThanThreshold"


def test_rotation_metrics_are_the_ones_the_code_emits_and_are_documented() -> None:
    from vercel_sync.observability import PowertoolsRotationObserver, handle_rotation_event

    source = inspect.getsource(PowertoolsRotationObserver) + inspect.getsource(handle_rotation_event)
    emitted = set(re.findall(r'add_metric\(name="(\w+)"', source))
    assert emitted - {"TokenRereads"} == ROTATION_METRICS  # TokenRereads: shared with the sync functions
    operations_page = (ROOT / "docs" / "operations.md").read_text()
    observability = operations_page.split("### Observability", 1)[1].split("\n### ", 1)[0]
    for metric in emitted:
        assert f"`{metric}`" in observability, metric


def test_each_alarm_has_its_runbook_entry() -> None:
    operations_page = (ROOT / "docs" / "operations.md").read_text()
    runbook = operations_page.split("\n## Runbook\n", 1)[1]
    alarm_table = operations_page.split("\n### Alarms\n", 1)[1].split("\n## ", 1)[0]
    for name, alarm in alarms().items():
        description = alarm["Properties"]["AlarmDescription"]
        text = description if isinstance(description, str) else description["Fn::Sub"]
        (entry,) = re.findall(r'Runbook: "([^"]+)"', " ".join(text.split()))
        assert f"\n### {entry}\n" in runbook, (name, entry)
        alarm_name = alarm["Properties"]["AlarmName"]["Fn::Sub"].removeprefix("${AWS::StackName}")
        assert alarm_name.lstrip("-") in alarm_table, (name, alarm_name)


def test_iterator_age_alarm_compares_seconds_with_its_parameter() -> None:
    properties = RESOURCES["StreamIteratorAgeAlarm"]["Properties"]
    assert [m for m in properties["Metrics"] if m.get("ReturnData")] == [
        {"Id": "seconds", "Expression": "age / 1000", "Label": "Stream iterator age (s)", "ReturnData": True}
    ]
    assert PARAMETERS["IteratorAgeAlarmSeconds"]["MaxValue"] <= 86_400  # within the stream's retention


def test_the_partner_dead_letter_queue_is_watched_when_known() -> None:
    alarm = RESOURCES["PartnerDeadLetterAlarm"]
    assert alarm["Condition"] == "WatchPartnerDeadLetterQueue"
    assert TEMPLATE["Conditions"]["WatchPartnerDeadLetterQueue"] == {
        "Fn::Or": [{"Condition": "CreatePartnerQueue"}, {"Condition": "HasGivenPartnerDeadLetterQueue"}]
    }
    value = alarm["Properties"]["Dimensions"][0]["Value"]["Fn::If"]
    assert value[:2] == ["CreatePartnerQueue", {"Fn::GetAtt": ["PartnerEventsDeadLetterQueue", "QueueName"]}]


def test_backfill_function_is_thin_and_configured() -> None:
    function = props("BackfillFunction")
    assert function["CodeUri"] == "functions/backfill/"
    assert function["Handler"] == "app.lambda_handler"
    assert function["Timeout"] == 900
    assert function["Role"] == {"Fn::GetAtt": ["BackfillRole", "Arn"]}
    assert "Events" not in function  # invoked by an operator (or by itself), never by a source
    variables = function["Environment"]["Variables"]
    assert {"PARTNER_TABLE_NAME", "PARTNER_EVENTS_QUEUE_URL", "PARTNER_EVENTS_QUEUE_ARN"} <= set(variables)
    handler = (ROOT / "functions/backfill/app.py").read_text()
    assert handler.count("def ") == 1
    assert "return run_backfill_function(event, context)" in handler


def statements(resource: dict[str, Any]) -> Iterator[dict[str, Any]]:
    documents = (
        [p["PolicyDocument"] for p in resource["Properties"].get("Policies", [])]
        if resource["Type"] == "AWS::IAM::Role"
        else [resource["Properties"]["PolicyDocument"]]
    )
    for document in documents:
        for statement in document["Statement"]:
            if "Fn::If" in statement:
                statement = statement["Fn::If"][1]
            yield statement


def actions(statement: dict[str, Any]) -> list[str]:
    action = statement["Action"]
    return [action] if isinstance(action, str) else list(action)


@pytest.mark.parametrize("name", ["BackfillRole", "BackfillSelfInvokePolicy"])
def test_backfill_iam_names_exact_resources(name: str) -> None:
    for statement in statements(RESOURCES[name]):
        assert statement["Effect"] == "Allow"
        assert not any(a.endswith("*") for a in actions(statement))
        services = {a.split(":")[0] for a in actions(statement)}
        if statement["Resource"] == "*":
            assert services == {"xray"}
        if services & {"sqs", "dynamodb", "secretsmanager", "lambda"}:
            assert "*" not in json.dumps(statement["Resource"])
        assert "secretsmanager" not in services  # the backfill reads no secret


def test_backfill_role_has_exactly_what_it_uses() -> None:
    granted = {a: s["Resource"] for s in statements(RESOURCES["BackfillRole"]) for a in actions(s)}
    assert set(granted) == {
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
        "dynamodb:DescribeTable",
        "dynamodb:Scan",
        "sqs:SendMessage",
        "sqs:GetQueueUrl",
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "kms:Decrypt",
        "kms:GenerateDataKey",
    }
    sends = [s["Resource"] for s in statements(RESOURCES["BackfillRole"]) if "sqs:SendMessage" in actions(s)]
    assert {"Fn::GetAtt": ["BackfillFailureQueue", "Arn"]} in sends
    assert granted["dynamodb:UpdateItem"] == {"Fn::GetAtt": ["SyncStateTable", "Arn"]}
    assert granted["dynamodb:Scan"]["Fn::If"][1] == {"Fn::GetAtt": ["PartnerTable", "Arn"]}
    (invoke,) = statements(RESOURCES["BackfillSelfInvokePolicy"])
    assert invoke == {
        "Effect": "Allow",
        "Action": "lambda:InvokeFunction",
        "Resource": {"Fn::GetAtt": ["BackfillFunction", "Arn"]},
    }
    assert RESOURCES["BackfillSelfInvokePolicy"]["Properties"]["Roles"] == [{"Ref": "BackfillRole"}]


def test_backfill_failures_end_in_an_encrypted_watched_queue() -> None:
    config = props("BackfillFunction")["EventInvokeConfig"]
    assert config["DestinationConfig"]["OnFailure"] == {
        "Type": "SQS",
        "Destination": {"Fn::GetAtt": ["BackfillFailureQueue", "Arn"]},
    }
    queue = RESOURCES["BackfillFailureQueue"]
    assert queue["Properties"]["SqsManagedSseEnabled"] is True
    assert queue["DeletionPolicy"] == "Retain"
    watched = [
        a
        for a in alarms().values()
        if alarm_metric(a["Properties"])[2] == {"Fn::GetAtt": ["BackfillFailureQueue", "QueueName"]}
    ]
    assert len(watched) == 1
    kms = next(s for s in statements(RESOURCES["BackfillRole"]) if "kms:Decrypt" in actions(s))
    assert kms["Condition"]["StringEquals"]["kms:ViaService"] == [
        {"Fn::Sub": "dynamodb.${AWS::Region}.${AWS::URLSuffix}"},
        {"Fn::Sub": "sqs.${AWS::Region}.${AWS::URLSuffix}"},
    ]


def test_samconfig_environments_use_only_valid_template_parameters() -> None:
    config = tomllib.loads((ROOT / "samconfig.toml").read_text())
    for environment in ("dev", "prod"):
        assert config[environment]["global"]["parameters"]["stack_name"] == f"vercel-resource-sync-{environment}"
        deploy = config[environment]["deploy"]["parameters"]
        assert deploy["capabilities"] == "CAPABILITY_IAM"
        for override in deploy["parameter_overrides"].split():
            name, value = override.split("=", 1)
            spec = PARAMETERS[name]
            if "AllowedValues" in spec:
                assert value in [str(v) for v in spec["AllowedValues"]], override
            if "AllowedPattern" in spec:
                assert re.fullmatch(spec["AllowedPattern"], value), override
            if "MinValue" in spec:
                assert spec["MinValue"] <= float(value) <= spec.get("MaxValue", float("inf")), override
    assert config["prod"]["deploy"]["parameters"]["confirm_changeset"] is True
