"""Create the template's queues and tables in moto server, and the secrets the functions read.

What is created comes from ``template.yaml`` (its ``AWS::SQS::Queue`` and
``AWS::DynamoDB::Table`` resources whose conditions hold, with their properties, global
secondary indexes included), so the local account has what a deployed stack has: the
failed-records, stream-failure and rotation-failure queues, the sync-state table (with its
``bySecretName`` index), and, with the local account's parameters (``CreateSampleSources=true``),
the sample partner table (with its stream) and the partner events queue with its dead-letter queue. Names are
``<stack>-<LogicalId>`` (with ``.fifo`` for FIFO queues), as CloudFormation's are unique per
stack.

The functions' environment is the template's Globals, resolved against what was created.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from local_aws.moto_server import LOCAL_AWS_ENVIRONMENT
from local_aws.template import Template, UnsupportedTemplateError

REGION = "us-east-1"
ACCOUNT_ID = "123456789012"  # moto's default account
OWNER_TAG = "vercel:integrationConfigurationId"  # the tag naming a resource secret's installation

# CloudFormation queue property -> SQS attribute (what moto implements and a local run needs).
QUEUE_ATTRIBUTES = {
    "FifoQueue": "FifoQueue",
    "ContentBasedDeduplication": "ContentBasedDeduplication",
    "VisibilityTimeout": "VisibilityTimeout",
    "MessageRetentionPeriod": "MessageRetentionPeriod",
    "DelaySeconds": "DelaySeconds",
    "ReceiveMessageWaitTimeSeconds": "ReceiveMessageWaitTimeSeconds",
    "RedrivePolicy": "RedrivePolicy",
}


@dataclass
class Queue:
    name: str
    url: str
    arn: str


@dataclass
class Table:
    name: str
    arn: str
    stream_arn: str | None


@dataclass
class LocalResources:
    """What :func:`provision` created, by logical id, and the values the template resolves to."""

    template: Template
    stack_name: str
    queues: dict[str, Queue] = field(default_factory=dict)
    tables: dict[str, Table] = field(default_factory=dict)

    def attribute(self, name: str) -> Any:
        """A ``Ref`` (``"Queue"``) or ``Fn::GetAtt`` (``"Queue.Arn"``) value of a created resource."""
        pseudo = {"AWS::StackName": self.stack_name, "AWS::Region": REGION, "AWS::AccountId": ACCOUNT_ID}
        if name in pseudo:
            return pseudo[name]
        if name == "AWS::Partition":
            return "aws"
        logical_id, _, attr = name.partition(".")
        if logical_id in self.queues:
            queue = self.queues[logical_id]
            return {"": queue.url, "Arn": queue.arn, "QueueName": queue.name}[attr]
        if logical_id in self.tables:
            table = self.tables[logical_id]
            return {"": table.name, "Arn": table.arn, "StreamArn": table.stream_arn}[attr]
        raise UnsupportedTemplateError(f"{name} is not a resource created locally")

    def function_environment(self, **overrides: str) -> dict[str, str]:
        """The functions' environment variables from the template, resolved; ``overrides`` win."""
        environment = {
            name: str(self.template.resolve(value, self.attribute))
            for name, value in self.template.function_environment().items()
        }
        environment.update(overrides)
        return environment

    def local_function_environment(self, *, aws_endpoint: str, vercel_api_url: str, **overrides: str) -> dict[str, str]:
        """The functions' environment from the template, pointed at moto server (with local
        credentials) and the Vercel emulator; ``overrides`` win."""
        environment = self.function_environment(VERCEL_API_URL=vercel_api_url)
        environment.update(LOCAL_AWS_ENVIRONMENT)
        environment["AWS_ENDPOINT_URL"] = aws_endpoint
        environment.update(overrides)
        return environment

    def token_secret_name(self, installation_id: str) -> str:
        return self.template.parameters["TokenSecretPrefix"] + installation_id

    def resource_secret_name(self, name: str) -> str:
        return self.template.parameters["ResourceSecretPrefix"] + name


def provision(
    template: Template,
    *,
    sqs: Any,
    dynamodb: Any,
    stack_name: str = "vercel-sync-local",
) -> LocalResources:
    """Create every queue and table the template declares (in dependency order)."""
    resources = LocalResources(template, stack_name)
    pending = template.of_type("AWS::SQS::Queue")
    while pending:
        # A queue whose redrive target is not created yet waits for it.
        ready = [q for q in pending if _dependencies(template.resources[q]) <= set(resources.queues)]
        if not ready:
            raise UnsupportedTemplateError(f"queues depend on something not created: {pending}")
        for logical_id in ready:
            resources.queues[logical_id] = _create_queue(sqs, resources, logical_id)
            pending.remove(logical_id)
    for logical_id in template.of_type("AWS::DynamoDB::Table"):
        resources.tables[logical_id] = _create_table(dynamodb, resources, logical_id)
    return resources


def _dependencies(resource: Mapping[str, Any]) -> set[str]:
    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, Mapping):
            if "Fn::GetAtt" in node:
                target = node["Fn::GetAtt"]
                found.add(target[0] if isinstance(target, list) else str(target).split(".")[0])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(resource.get("Properties", {}))
    return found


def _create_queue(sqs: Any, resources: LocalResources, logical_id: str) -> Queue:
    properties = resources.template.resolve(resources.template.resources[logical_id]["Properties"], resources.attribute)
    attributes: dict[str, str] = {}
    for prop, attribute in QUEUE_ATTRIBUTES.items():
        value = properties.get(prop)
        if value is None:
            continue
        if isinstance(value, Mapping):
            attributes[attribute] = json.dumps(dict(value))
        elif isinstance(value, bool):
            attributes[attribute] = "true" if value else "false"
        else:
            attributes[attribute] = str(value)
    fifo = attributes.get("FifoQueue") == "true"
    name = f"{resources.stack_name}-{logical_id}" + (".fifo" if fifo else "")
    url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return Queue(name, url, arn)


def _create_table(dynamodb: Any, resources: LocalResources, logical_id: str) -> Table:
    properties = resources.template.resolve(resources.template.resources[logical_id]["Properties"], resources.attribute)
    name = f"{resources.stack_name}-{logical_id}"
    request: dict[str, Any] = {
        "TableName": name,
        "AttributeDefinitions": properties["AttributeDefinitions"],
        "KeySchema": properties["KeySchema"],
        "BillingMode": properties.get("BillingMode", "PROVISIONED"),
    }
    if request["BillingMode"] == "PROVISIONED":
        request["ProvisionedThroughput"] = properties["ProvisionedThroughput"]
    indexes = properties.get("GlobalSecondaryIndexes")
    if indexes:
        request["GlobalSecondaryIndexes"] = [
            {
                name: index[name]
                for name in ("IndexName", "KeySchema", "Projection", "ProvisionedThroughput")
                if name in index
            }
            for index in indexes
        ]
    stream = properties.get("StreamSpecification")
    if stream:
        request["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": stream["StreamViewType"]}
    description = dynamodb.create_table(**request)["TableDescription"]
    ttl = properties.get("TimeToLiveSpecification")
    if ttl and ttl.get("Enabled"):
        dynamodb.update_time_to_live(
            TableName=name,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl["AttributeName"]},
        )
    return Table(name, description["TableArn"], description.get("LatestStreamArn"))


def store_installation_token(secretsmanager: Any, resources: LocalResources, installation_id: str, token: str) -> str:
    """Store (or rotate) an installation's token as Vercel sends it; returns the secret's name."""
    name = resources.token_secret_name(installation_id)
    value = json.dumps({"access_token": token, "token_type": "Bearer"})  # the token type's name, not a token  # nosec B105
    _put_secret(secretsmanager, name, value)
    return name


def store_resource_secret(
    secretsmanager: Any,
    resources: LocalResources,
    name: str,
    document: Mapping[str, Any],
    *,
    owner: str | None = None,
) -> str:
    """Store a resource secret under the template's resource-secret prefix; returns its name.

    ``name`` is relative to the prefix: ``"<installation id>/db"`` puts it in that installation's
    folder. ``owner`` tags it ``vercel:integrationConfigurationId`` (the other way a secret
    belongs to an installation)."""
    secret_name = resources.resource_secret_name(name)
    tags = [{"Key": OWNER_TAG, "Value": owner}] if owner is not None else []
    _put_secret(secretsmanager, secret_name, json.dumps(dict(document)), tags=tags)
    return secret_name


def _put_secret(secretsmanager: Any, name: str, value: str, *, tags: list[dict[str, str]] | None = None) -> None:
    try:
        secretsmanager.create_secret(Name=name, SecretString=value, Tags=tags or [])
    except secretsmanager.exceptions.ResourceExistsException:
        secretsmanager.put_secret_value(SecretId=name, SecretString=value)
        if tags:
            secretsmanager.tag_resource(SecretId=name, Tags=tags)


# Called with each body drain_json_messages receives (the test suite's leak scan reads them all).
DRAINED_MESSAGE_OBSERVERS: list[Callable[[str], None]] = []


def drain_json_messages(sqs: Any, queue_url: str) -> list[dict[str, Any]]:
    """Receive and delete every message visible in a queue; their bodies, parsed as JSON."""
    messages: list[dict[str, Any]] = []
    while batch := sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", []):
        for message in batch:
            for observe in DRAINED_MESSAGE_OBSERVERS:
                observe(message["Body"])
            messages.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    return messages
