"""The template's partner sources, resolved for each way a provider deploys it: a stream only, a queue
only, both, the sample sources, none. Each function exists only with its source (and its role, log
group, alarms, dashboard widgets and outputs); nothing refers to a resource the stack does not have;
no table is created unless asked for."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from local_aws.template import Template, TemplateRuleError

STREAM_ARN = "arn:aws:dynamodb:eu-west-1:111122223333:table/partner-resources/stream/2026-01-01T00:00:00.000"
QUEUE_ARN = "arn:aws:sqs:eu-west-1:111122223333:partner-events"
FIFO_QUEUE_ARN = "arn:aws:sqs:eu-west-1:111122223333:partner-events.fifo"

STREAM_SIDE = {
    "StreamSyncFunction",
    "StreamSyncRole",
    "StreamSyncLogGroup",
    "StreamFailureQueue",
    "StreamFailureAlarm",
    "StreamIteratorAgeAlarm",
    "StreamSyncErrorsAlarm",
    "StreamSyncThrottlesAlarm",
}
QUEUE_SIDE = {
    "QueueSyncFunction",
    "QueueSyncRole",
    "QueueSyncLogGroup",
    "QueueSyncErrorsAlarm",
    "QueueSyncThrottlesAlarm",
}
BACKFILL = {
    "BackfillFunction",
    "BackfillRole",
    "BackfillLogGroup",
    "BackfillFailureQueue",
    "BackfillSelfInvokePolicy",
    "BackfillErrorsAlarm",
    "BackfillFailureAlarm",
}
SAMPLE_TABLE = {"PartnerTable"}
SAMPLE_QUEUE = {"PartnerEventsQueue", "PartnerEventsDeadLetterQueue", "PartnerDeadLetterAlarm"}

CASES = {
    "stream only": ({"PartnerTableStreamArn": STREAM_ARN}, STREAM_SIDE),
    "queue only": ({"PartnerQueueArn": QUEUE_ARN}, QUEUE_SIDE),
    "both": ({"PartnerTableStreamArn": STREAM_ARN, "PartnerQueueArn": QUEUE_ARN}, STREAM_SIDE | QUEUE_SIDE | BACKFILL),
    "sample": (
        {"CreateSampleSources": "true"},
        STREAM_SIDE | QUEUE_SIDE | BACKFILL | SAMPLE_TABLE | SAMPLE_QUEUE,
    ),
    "sample queue beside a given stream": (
        {"PartnerTableStreamArn": STREAM_ARN, "CreateSampleSources": "true"},
        STREAM_SIDE | QUEUE_SIDE | BACKFILL | SAMPLE_QUEUE,
    ),
}
OPTIONAL = STREAM_SIDE | QUEUE_SIDE | BACKFILL | SAMPLE_TABLE | SAMPLE_QUEUE


def deployed(parameters: dict[str, str]) -> Template:
    """The template with these parameters and every other at its deploy default (not the local account's)."""
    return Template.load(parameters, local_account=False)


@pytest.mark.parametrize("case", list(CASES))
def test_each_source_brings_its_own_function_and_nothing_else(case: str) -> None:
    parameters, expected = CASES[case]
    template = deployed(parameters)

    present = {name for name in template.resources if template.included(name)}

    assert present & OPTIONAL == expected
    assert {"RotationSyncFunction", "SyncStateTable", "FailedRecordsQueue", "OperationsDashboard"} <= present


@pytest.mark.parametrize("case", list(CASES))
def test_nothing_refers_to_a_resource_the_stack_does_not_have(case: str) -> None:
    """Every Ref, GetAtt and ${...} that resolution reaches (an !If's chosen branch only): in the
    resources, the functions' globals, the dashboard's snippets and the outputs."""
    template = deployed(CASES[case][0])
    present = {name for name in template.resources if template.included(name)}
    outputs = {
        name: output
        for name, output in template.document["Outputs"].items()
        if "Condition" not in output or template.condition(output["Condition"])
    }
    nodes = [template.resources[name] for name in present]
    nodes += [template.document["Globals"], list(outputs.values())]

    referred = {name for node in nodes for name in references(template, node)}

    assert referred - set(template.parameters) <= present


@pytest.mark.parametrize("case", list(CASES))
def test_the_outputs_name_the_functions_the_stack_has(case: str) -> None:
    parameters, expected = CASES[case]
    template = deployed(parameters)
    outputs = {
        name
        for name, output in template.document["Outputs"].items()
        if "Condition" not in output or template.condition(output["Condition"])
    }
    assert ("StreamSyncFunctionArn" in outputs) == ("StreamSyncFunction" in expected)
    assert ("QueueSyncFunctionArn" in outputs) == ("QueueSyncFunction" in expected)
    assert ("BackfillFunctionName" in outputs) == ("BackfillFunction" in expected)
    assert ("PartnerTableName" in outputs) == ("PartnerTable" in expected)


def test_a_stack_without_any_source_is_refused_and_the_default_creates_no_table() -> None:
    """The deploy defaults give no source: CloudFormation's rule refuses them with what to set,
    rather than deploying a stack that syncs nothing (or deleting an older stack's demo table)."""
    with pytest.raises(TemplateRuleError, match="PartnerTableStreamArn, PartnerQueueArn or both"):
        deployed({})
    with pytest.raises(TemplateRuleError):
        deployed({"CreateSampleSources": "false"})
    assert deployed({"PartnerQueueArn": QUEUE_ARN}).parameters["CreateSampleSources"] == "false"


def test_the_given_arns_are_the_event_sources() -> None:
    template = deployed({"PartnerTableStreamArn": STREAM_ARN, "PartnerQueueArn": QUEUE_ARN})

    def attribute(name: str) -> Any:
        assert not name.startswith(("PartnerTable", "PartnerEvents")), f"{name} is not created with the partner's own"
        return name

    stream = template.resolve(template.event_source("StreamSyncFunction", "PartnerTableStream"), attribute)
    queue = template.resolve(template.event_source("QueueSyncFunction", "PartnerEvents"), attribute)
    assert stream["Stream"] == STREAM_ARN
    assert queue["Queue"] == QUEUE_ARN


@pytest.mark.parametrize(
    ("parameters", "window"),
    [
        ({"PartnerQueueArn": QUEUE_ARN}, "1"),
        ({"PartnerQueueArn": FIFO_QUEUE_ARN}, None),  # Lambda allows no batching window on a FIFO queue
        ({"CreateSampleSources": "true", "CreatedPartnerQueueType": "standard"}, "1"),
        ({"CreateSampleSources": "true"}, None),  # the sample queue is FIFO by default
    ],
)
def test_the_queue_trigger_has_a_maximum_concurrency_and_a_batching_window_on_standard_queues(
    parameters: dict[str, str], window: str | None
) -> None:
    template = deployed(parameters)
    source = template.resolve(template.event_source("QueueSyncFunction", "PartnerEvents"), lambda name: name)
    assert source["ScalingConfig"] == {"MaximumConcurrency": "5"}
    assert source["MaximumBatchingWindowInSeconds"] == window
    assert template.document["Parameters"]["QueueMaximumConcurrency"]["MinValue"] == 2


def references(template: Template, node: Any) -> Iterator[str]:
    """The logical ids (and parameters) ``node`` refers to, through the branches its conditions choose."""
    if isinstance(node, list):
        for value in node:
            yield from references(template, value)
        return
    if not isinstance(node, dict):
        return
    if len(node) == 1:
        ((function, argument),) = node.items()
        if function == "Fn::If":
            condition, when_true, when_false = argument
            yield from references(template, when_true if template.condition(condition) else when_false)
            return
        if function == "Ref":
            if not argument.startswith("AWS::"):
                yield argument
            return
        if function == "Fn::GetAtt":
            yield argument[0] if isinstance(argument, list) else argument.split(".")[0]
            return
        if function == "Fn::Sub":
            text, variables = (argument, {}) if isinstance(argument, str) else argument
            for name in re.findall(r"\$\{([^}!]+)\}", text):
                name = name.split(".")[0]
                if not name.startswith("AWS::") and name not in variables:
                    yield name
            yield from references(template, variables)
            return
    for key, value in node.items():
        if key not in ("Condition", "Metadata"):
            yield from references(template, value)


def samconfig_parameters(environment: str) -> dict[str, str]:
    import tomllib

    from local_aws.template import ROOT

    config = tomllib.loads((ROOT / "samconfig.toml").read_text())
    overrides = config[environment]["deploy"]["parameters"]["parameter_overrides"].split()
    return dict(override.split("=", 1) for override in overrides)


def test_dev_creates_the_sample_sources_and_prod_only_uses_the_given_ones() -> None:
    dev = deployed(samconfig_parameters("dev"))
    assert dev.included("PartnerTable")
    assert dev.included("PartnerEventsQueue")

    prod = samconfig_parameters("prod")
    with pytest.raises(TemplateRuleError):  # until the provider's ARNs are added, as its comment says
        deployed(prod)
    with_queue = deployed({**prod, "PartnerQueueArn": QUEUE_ARN})
    assert not with_queue.included("PartnerTable")
    assert not with_queue.included("PartnerEventsQueue")
    assert not with_queue.included("StreamSyncFunction")


def test_a_scheduled_reconcile_needs_the_partner_table_and_its_repairs_the_queue() -> None:
    """Reconcile reads the partner table and repairs through the partner queue: a schedule without the
    table, or repairs without the queue, is refused with what to set, not deployed with a role on nothing."""
    daily = {"ReconcileSchedule": "rate(1 day)"}
    with pytest.raises(TemplateRuleError, match="needs the partner table"):
        deployed({"PartnerQueueArn": QUEUE_ARN, **daily})
    with pytest.raises(TemplateRuleError, match="needs the partner events queue"):
        deployed({"PartnerTableStreamArn": STREAM_ARN, **daily, "ReconcileApply": "true"})

    reporting = deployed({"PartnerTableStreamArn": STREAM_ARN, **daily})
    assert reporting.included("ReconcileFunction")
    assert reporting.included("ReconcileRole")
    repairing = deployed(
        {"PartnerTableStreamArn": STREAM_ARN, "PartnerQueueArn": QUEUE_ARN, **daily, "ReconcileApply": "true"}
    )
    assert repairing.included("ReconcileFunction")
