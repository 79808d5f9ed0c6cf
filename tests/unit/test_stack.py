"""operations/stack.py: what a stack gives the commands, and what the operator gives wins."""

from __future__ import annotations

import argparse
import io
from typing import Any

from local_aws.template import load_template
from operations.stack import FUNCTION_OUTPUTS, OUTPUT_VARIABLES, Clients, exported, variables_for
from tests.fakes import FakeCloudFormation, FakeLambdaConfigurations, FakeQueueUrls


def test_every_output_the_tools_read_is_one_the_template_declares() -> None:
    outputs = load_template()["Outputs"]
    assert set(OUTPUT_VARIABLES) <= set(outputs)
    assert set(FUNCTION_OUTPUTS) <= set(outputs)


def arguments(**given: str | None) -> argparse.Namespace:
    return argparse.Namespace(**{"stack_name": "prod", "region": None, **given})


def test_a_queue_the_stack_names_by_arn_only_and_functions_it_cannot_read() -> None:
    clients = Clients(
        FakeCloudFormation(
            {"QueueSyncFunctionArn": "queue-fn", "StreamSyncFunctionArn": "stream-fn", "BackfillFunctionName": "bf"}
        ),
        FakeLambdaConfigurations(
            {
                "queue-fn": {"VERCEL_API_URL": "https://api.vercel.com", "POWERTOOLS_LOG_LEVEL": "INFO"},
                "bf": {"PARTNER_EVENTS_QUEUE_URL": "", "PARTNER_EVENTS_QUEUE_ARN": "arn:aws:sqs:eu-west-1:111:events"},
            }
        ),
        FakeQueueUrls(),
    )
    err = io.StringIO()

    variables = variables_for(arguments(region="eu-west-1"), {}, err=err, clients=clients)

    assert variables["PARTNER_EVENTS_QUEUE_URL"] == "https://sqs.example/111/events"
    assert variables["VERCEL_API_URL"] == "https://api.vercel.com"
    assert "POWERTOOLS_LOG_LEVEL" not in variables  # the function's own runtime, not the tools'
    assert variables["AWS_REGION"] == variables["AWS_DEFAULT_REGION"] == "eu-west-1"
    assert "cannot read the configuration of stream-fn (AccessDeniedException)" in err.getvalue()


def test_the_operators_variables_are_kept_and_region_flag_wins() -> None:
    clients = Clients(
        FakeCloudFormation({"FailedRecordsQueueUrl": "https://sqs.example/1/failed"}),
        FakeLambdaConfigurations({}),
        FakeQueueUrls(),
    )
    err = io.StringIO()
    environ = {"FAILED_RECORDS_QUEUE_URL": "mine", "AWS_REGION": "us-east-1"}

    variables = variables_for(arguments(region="eu-west-1"), environ, err=err, clients=clients)

    assert "FAILED_RECORDS_QUEUE_URL" not in variables
    assert variables["AWS_REGION"] == "eu-west-1"
    assert "yours kept: FAILED_RECORDS_QUEUE_URL" in err.getvalue()
    assert variables_for(arguments(stack_name=None), environ, err=err) == {}  # no stack, no region: nothing


def test_the_variables_are_set_for_the_run_only() -> None:
    environ = {"KEPT": "1", "REPLACED": "old"}
    with exported({"REPLACED": "new", "ADDED": "x"}, environ):
        assert environ == {"KEPT": "1", "REPLACED": "new", "ADDED": "x"}
    assert environ == {"KEPT": "1", "REPLACED": "old"}


def test_a_profile_that_does_not_exist_is_a_stack_error_not_a_traceback(tmp_path: Any, monkeypatch: Any) -> None:
    import pytest

    from operations.stack import StackError, clients_for

    (tmp_path / "config").write_text("")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_PROFILE", "no-such-profile")
    with pytest.raises(StackError, match="no-such-profile"):
        clients_for("us-east-1")
