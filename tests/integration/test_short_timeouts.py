"""Short function timeouts: with a 15 s and then a 10 s function timeout (template parameter
``FunctionTimeoutSeconds``), a stream batch and a queue batch sync every healthy record in one
invocation each, against moto server and the emulator, through the real handlers (the first
invocation of each builds its service: a cold start). Each step's timeouts are cut to the time
left, keeping time to park a record after it, instead of reserving every step's worst case
(which needed about 35 s per record before it would start one)."""

from __future__ import annotations

import json
import time
from types import ModuleType
from typing import Any

import pytest
from boto3.dynamodb.types import TypeSerializer

from local_aws.provision import drain_json_messages, store_resource_secret
from local_runner import QueuePoller, StreamPoller
from local_runner.invocation import Handler
from tests.integration.conftest import INSTALLATION_ID, LocalStack
from tests.integration.support import SlowForwarder

pytestmark = pytest.mark.integration

SERIALIZER = TypeSerializer()
HEALTHY = 6  # per source; every other one names a resource secret


def record(resource_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "integrationConfigurationId": INSTALLATION_ID,
        "resourceId": resource_id,
        "productId": "postgres",
        "name": f"{resource_id}-name",
        "status": "active",
        **extra,
    }


def timed(handler: Handler, seconds: list[float]) -> Handler:
    def run(event: dict[str, Any], context: Any) -> Any:
        started = time.monotonic()
        try:
            return handler(event, context)
        finally:
            seconds.append(time.monotonic() - started)

    return run


@pytest.mark.parametrize(
    "template_parameters", [{"FunctionTimeoutSeconds": "15"}, {"FunctionTimeoutSeconds": "10"}], ids=["15s", "10s"]
)
def test_a_short_function_timeout_syncs_every_healthy_record(
    template_parameters: dict[str, str], local_stack: LocalStack, handlers: dict[str, ModuleType]
) -> None:
    timeout = local_stack.resources.template.function_timeout_seconds()
    assert timeout == int(template_parameters["FunctionTimeoutSeconds"])
    secret = store_resource_secret(
        local_stack.aws["secretsmanager"],
        local_stack.resources,
        f"{INSTALLATION_ID}/short_timeouts_db",
        {"PGPASSWORD": local_stack.database_password},
    )
    table = local_stack.resources.tables["PartnerTable"].name
    queue_url = local_stack.queue_url("PartnerEventsQueue")
    healthy = {"stream": [f"stream_{i}" for i in range(HEALTHY)], "queue": [f"queue_{i}" for i in range(HEALTHY)]}
    for source, resource_ids in healthy.items():
        items = [record(rid, **({"secretsArn": secret} if i % 2 else {})) for i, rid in enumerate(resource_ids)]
        # One record that can never succeed, parked within the short timeout too.
        items.insert(HEALTHY // 2, record(f"{source}_invalid", status="exploding"))
        for item in items:
            if source == "stream":
                serialized = {k: SERIALIZER.serialize(v) for k, v in item.items()}
                local_stack.aws["dynamodb"].put_item(TableName=table, Item=serialized)
            else:
                local_stack.aws["sqs"].send_message(
                    QueueUrl=queue_url, MessageBody=json.dumps(item), MessageGroupId=item["resourceId"]
                )

    seconds: dict[str, list[float]] = {"stream": [], "queue": []}
    stream = StreamPoller(
        local_stack.aws["dynamodbstreams"],
        local_stack.resources.tables["PartnerTable"].stream_arn,
        timed(handlers["stream_sync"].lambda_handler, seconds["stream"]),
        timeout_seconds=timeout,
    )
    queue = QueuePoller(
        local_stack.aws["sqs"],
        queue_url,
        timed(handlers["queue_sync"].lambda_handler, seconds["queue"]),
        batch_size=10,
        timeout_seconds=timeout,
    )
    results = {"stream": stream.poll_once(), "queue": queue.poll_once()}

    print(f"function timeout {timeout} s: invocations took", {k: [round(s, 2) for s in v] for k, v in seconds.items()})
    for source, result in results.items():
        assert result.records == HEALTHY + 1, source  # one batch each, every record in it
        assert (result.outcome, result.error, result.reported) == ("ok", None, ()), source
        for resource_id in healthy[source]:
            held = local_stack.emulator.held_resource(INSTALLATION_ID, resource_id)
            assert (held or {}).get("status") == "ready", resource_id
    secrets = local_stack.emulator.imported_body(INSTALLATION_ID, "stream_1")
    assert secrets is not None
    assert secrets["secrets"][0]["value"] == local_stack.database_password
    parked = drain_json_messages(local_stack.aws["sqs"], local_stack.queue_url("FailedRecordsQueue"))
    assert sorted(m["resourceId"] for m in parked) == ["queue_invalid", "stream_invalid"]
    assert all(m["reason"] == "invalid_record" for m in parked)


@pytest.mark.parametrize("template_parameters", [{"FunctionTimeoutSeconds": "10"}], ids=["10s"])
def test_a_slow_aws_still_syncs_every_healthy_record(
    template_parameters: dict[str, str],
    local_stack: LocalStack,
    handlers: dict[str, ModuleType],
    aws_endpoint: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every AWS request of the functions 0.15 s late (moto server behind a slow forwarder): each
    record's steps take longer, and the shared rate limiter's round trip outlasts its late grace
    (0.1 s), which used to lapse every slot it reserved, so that no record synced at all."""
    queue_url = local_stack.queue_url("PartnerEventsQueue")
    resource_ids = [f"slow_aws_{i}" for i in range(HEALTHY)]
    for resource_id in resource_ids:
        local_stack.aws["sqs"].send_message(
            QueueUrl=queue_url, MessageBody=json.dumps(record(resource_id)), MessageGroupId=resource_id
        )
    host, port = aws_endpoint.removeprefix("http://").split(":")
    forwarder = SlowForwarder((host, int(port)), latency=0.15)
    monkeypatch.setenv("AWS_ENDPOINT_URL", forwarder.url)  # the functions' AWS, not the test's clients
    queue = QueuePoller(
        local_stack.aws["sqs"],
        queue_url,
        handlers["queue_sync"].lambda_handler,
        batch_size=10,
        timeout_seconds=local_stack.resources.template.function_timeout_seconds(),
    )
    try:
        result = queue.poll_once()
    finally:
        forwarder.close()

    assert (result.records, result.outcome, result.error, result.reported) == (HEALTHY, "ok", None, ())
    for resource_id in resource_ids:
        assert (local_stack.emulator.held_resource(INSTALLATION_ID, resource_id) or {}).get("status") == "ready"
