"""``--stack-name NAME`` and ``--region`` on every operations command: what a deployed stack knows is
read from it, not copied by hand into variables.

The stack's outputs (template.yaml's ``Outputs``: its queues and tables, CloudFormation
``DescribeStacks``) and its functions' configuration (Lambda ``GetFunctionConfiguration``: the settings
the functions run with) become the environment variables the commands read
(``FAILED_RECORDS_QUEUE_URL``, ``VERCEL_TOKEN_SECRET_ID``, ``PARTNER_TABLE_NAME``, ...), for the
command's run only. What the operator gives wins: a flag over a variable, a variable over the stack.
``--region`` is the region of every AWS call the command makes (over ``AWS_REGION``).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TextIO

# The stack's outputs (template.yaml) and the variable each one is.
OUTPUT_VARIABLES = {
    "FailedRecordsQueueUrl": "FAILED_RECORDS_QUEUE_URL",
    "StreamFailureQueueUrl": "STREAM_FAILURE_QUEUE_URL",
    "SyncStateTableName": "SYNC_STATE_TABLE",
    "PartnerTableName": "PARTNER_TABLE_NAME",
    "PartnerEventsQueueUrl": "PARTNER_EVENTS_QUEUE_URL",
}
# The outputs naming the functions whose environment is read: the sync settings first (a stack may have
# only one of the two sync functions), then the backfill function's table and queue.
FUNCTION_OUTPUTS = ("QueueSyncFunctionArn", "StreamSyncFunctionArn", "BackfillFunctionName")
# A function's variables that configure its own runtime (logging, tracing, metrics), not the tools.
RUNTIME_PREFIXES = ("AWS_", "POWERTOOLS_", "_")
# The backfill function names an existing partner events queue by ARN only; the tools need its URL.
QUEUE_URL, QUEUE_ARN = "PARTNER_EVENTS_QUEUE_URL", "PARTNER_EVENTS_QUEUE_ARN"
REGION_VARIABLES = ("AWS_REGION", "AWS_DEFAULT_REGION")  # the settings read the first, boto3 the second


class StackError(Exception):
    """The stack cannot be read (no such stack, no credentials, no region)."""


@dataclass
class StackValues:
    """What a stack says: variable -> value, and what could not be read (said, not fatal)."""

    values: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def add_arguments(subparsers: Any) -> None:
    """``--stack-name`` and ``--region`` on every command of ``subparsers``."""
    for parser in {id(p): p for p in subparsers.choices.values()}.values():
        group = parser.add_argument_group("the deployed stack")
        group.add_argument(
            "--stack-name",
            help="read the queues, tables and the functions' settings from this stack (its outputs and its "
            "functions' configuration); flags and variables you set win",
        )
        group.add_argument("--region", help="the stack's AWS region (default: $AWS_REGION, $AWS_DEFAULT_REGION)")


def read_stack(stack_name: str, clients: Any) -> StackValues:
    """The variables ``stack_name`` gives, from ``clients.cloudformation``, ``.lambda_`` and ``.sqs``."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        (stack,) = clients.cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    except ClientError as exc:
        error = exc.response.get("Error", {})
        raise StackError(f"stack {stack_name}: {error.get('Code')}: {error.get('Message')}") from None
    except BotoCoreError as exc:
        raise StackError(f"stack {stack_name}: {exc}") from None
    outputs = {o["OutputKey"]: o.get("OutputValue", "") for o in stack.get("Outputs", [])}
    found = StackValues()
    for output in FUNCTION_OUTPUTS:
        if outputs.get(output):
            _read_function(clients.lambda_, outputs[output], found)
    for output, variable in OUTPUT_VARIABLES.items():
        if outputs.get(output):
            found.values[variable] = outputs[output]
    if not found.values.get(QUEUE_URL) and found.values.get(QUEUE_ARN):
        _queue_url(clients.sqs, found.values[QUEUE_ARN], found)
    return found


def _read_function(lambda_client: Any, function: str, found: StackValues) -> None:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        configuration = lambda_client.get_function_configuration(FunctionName=function)
    except (ClientError, BotoCoreError) as exc:
        code = exc.response.get("Error", {}).get("Code") if isinstance(exc, ClientError) else type(exc).__name__
        found.notes.append(f"cannot read the configuration of {function} ({code}): its settings are not filled in")
        return
    variables = (configuration.get("Environment") or {}).get("Variables") or {}
    for name, value in variables.items():
        if value and not name.startswith(RUNTIME_PREFIXES):
            found.values.setdefault(name, value)


def _queue_url(sqs: Any, queue_arn: str, found: StackValues) -> None:
    from botocore.exceptions import BotoCoreError, ClientError

    parts = queue_arn.split(":")  # arn:aws:sqs:REGION:ACCOUNT:NAME
    try:
        found.values[QUEUE_URL] = sqs.get_queue_url(QueueName=parts[5], QueueOwnerAWSAccountId=parts[4])["QueueUrl"]
    except (ClientError, BotoCoreError, IndexError) as exc:
        found.notes.append(f"cannot find the URL of the partner events queue {queue_arn} ({type(exc).__name__})")


@dataclass(frozen=True)
class Clients:
    cloudformation: Any
    lambda_: Any
    sqs: Any


def clients_for(region: str | None) -> tuple[Clients, str]:
    """The clients a stack is read with, and their region (``AWS_ENDPOINT_URL`` and credentials as usual)."""
    import boto3
    from botocore.exceptions import BotoCoreError

    try:
        session = boto3.session.Session(region_name=region)
        if not session.region_name:
            raise StackError("no region: give --region, or set AWS_REGION")
        clients = Clients(session.client("cloudformation"), session.client("lambda"), session.client("sqs"))
    except BotoCoreError as exc:  # a profile that does not exist, a broken config file
        raise StackError(str(exc)) from None
    return clients, session.region_name


def variables_for(
    args: argparse.Namespace, environ: Mapping[str, str], *, err: TextIO, clients: Clients | None = None
) -> dict[str, str]:
    """The variables to set for this command's run: ``--region``'s over the environment's, the stack's
    where the environment has none. Says on ``err`` which came from the stack (names, never values)."""
    region, stack_name = getattr(args, "region", None), getattr(args, "stack_name", None)
    variables = dict.fromkeys(REGION_VARIABLES, region) if region else {}
    if not stack_name:
        return variables
    region = region or environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION")
    if clients is None:
        clients, region = clients_for(region)
    found = read_stack(stack_name, clients)
    for name in REGION_VARIABLES:
        found.values.setdefault(name, region or "")
    taken = sorted(name for name, value in found.values.items() if value and not environ.get(name))
    kept = sorted(name for name in found.values if environ.get(name) and name not in variables)
    for note in found.notes:
        err.write(f"stack {stack_name}: {note}\n")
    err.write(
        f"stack {stack_name} ({region}): {', '.join(taken) or 'nothing'} from the stack"
        + (f"; yours kept: {', '.join(kept)}" if kept else "")
        + "\n"
    )
    return {**{name: found.values[name] for name in taken}, **variables}


@contextmanager
def exported(variables: Mapping[str, str], environ: MutableMapping[str, str] = os.environ) -> Iterator[None]:
    """``variables`` set in ``environ`` while the command runs (what boto3 and the settings read), then put back."""
    saved = {name: environ.get(name) for name in variables}
    environ.update(variables)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                environ.pop(name, None)
            else:
                environ[name] = value
