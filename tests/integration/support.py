"""What the integration tests of several files share: for the operations tools partner items in bulk,
queue contents, a consumer running the queue function while a backfill sends."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import Any

from boto3.dynamodb.types import TypeSerializer

from local_aws.provision import store_installation_token
from local_runner import QueuePoller, Runner
from tests.integration.conftest import LocalStack

SERIALIZER = TypeSerializer()


def partner_item(n: int, installation: str, product: str = "postgres", **extra: Any) -> dict[str, Any]:
    return {
        "integrationConfigurationId": installation,
        "resourceId": f"res_{n:05}",
        "productId": product,
        "name": f"resource-{n}",
        "status": "active",
        "version": 1_790_000_000 + n,
        **extra,
    }


def put_items(stack: LocalStack, items: list[dict[str, Any]]) -> None:
    table = stack.resources.tables["PartnerTable"].name
    for start in range(0, len(items), 25):
        requests = [
            {"PutRequest": {"Item": {k: SERIALIZER.serialize(v) for k, v in item.items()}}}
            for item in items[start : start + 25]
        ]
        stack.aws["dynamodb"].batch_write_item(RequestItems={table: requests})


def add_installation(stack: LocalStack, installation: str, token: str, *, vercel_knows_it: bool = True) -> None:
    """Store an installation's token in Secrets Manager (and, unless told otherwise, in the emulator)."""
    store_installation_token(stack.aws["secretsmanager"], stack.resources, installation, token)
    if vercel_knows_it:
        stack.emulator.set_token(installation, token)


def queue_bodies(stack: LocalStack, logical_id: str, *, delete: bool = True) -> list[dict[str, Any]]:
    """Every message body in a queue (received; deleted unless ``delete`` is False)."""
    sqs, url = stack.aws["sqs"], stack.queue_url(logical_id)
    bodies: list[dict[str, Any]] = []
    handles: list[str] = []
    while batch := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=30).get("Messages", []):
        for message in batch:
            bodies.append(json.loads(message["Body"]))
            handles.append(message["ReceiptHandle"])
    for handle in handles:
        if delete:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=handle)
        else:
            sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=handle, VisibilityTimeout=0)
    return bodies


def message_count(stack: LocalStack, logical_id: str) -> int:
    attributes = stack.aws["sqs"].get_queue_attributes(
        QueueUrl=stack.queue_url(logical_id),
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])


@contextmanager
def queue_consumer(stack: LocalStack, handlers: dict[str, ModuleType]) -> Iterator[Runner]:
    """The queue function fed by the local runner in a thread, as Lambda's mapping would, until the block ends."""
    poller = QueuePoller(
        stack.aws["sqs"],
        stack.queue_url("PartnerEventsQueue"),
        handlers["queue_sync"].lambda_handler,
        wait_time_seconds=0,
        retry_visibility_timeout=1,
    )
    runner = Runner([poller], idle_sleep_seconds=0.05)
    stop = threading.Event()
    thread = threading.Thread(target=runner.run_forever, args=(stop,), name="queue-consumer", daemon=True)
    thread.start()
    try:
        yield runner
    finally:
        stop.set()
        thread.join(timeout=30)


def puts_per_resource(stack: LocalStack, *, accepted: bool = True) -> dict[tuple[str, str], int]:
    """PUT calls the emulator received per (installation, resource): those it accepted (2xx), or all."""
    rows = stack.emulator.calls()["calls"]
    return {
        (r["installationId"], r["resourceId"]): (
            sum(n for status, n in r["byStatus"].items() if str(status).startswith("2")) if accepted else r["total"]
        )
        for r in rows
        if r["method"] == "PUT"
    }
