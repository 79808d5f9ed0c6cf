"""What the integration tests of several files share: for the operations tools partner items in bulk,
queue contents, a consumer running the queue function while a backfill sends; for the emulator's
tests its tokens, a loopback client, paths, a valid body and the error shape; for the end-to-end
tests a partner record written to the table or sent to a queue, and synced by the local runner; a
forwarder that makes the way to a local server slow."""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import Any
from urllib.parse import quote

import httpx
from boto3.dynamodb.types import TypeSerializer

from local_aws.provision import store_installation_token
from local_runner import QueuePoller, Runner, StreamPoller
from tests.integration.conftest import INSTALLATION_ID, LocalStack
from tests.leak_scan import register_secret

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


# ------------------------------------------------------------------------ the Vercel emulator over HTTP

TOKEN_1 = "vrcl_token_installation_one"
TOKEN_2 = "vrcl_token_installation_two"
SECRET_VALUE = "postgres://user:TOP-SECRET-pw@db.internal/orders"
register_secret(TOKEN_1, TOKEN_2, SECRET_VALUE, label="the emulator tests' tokens and secret")


# httpx builds (and loads CA certificates into) a TLS context per client unless given one: sharing
# one keeps each test's client cheap, though every call here is plain HTTP on loopback.
TLS_CONTEXT = ssl.create_default_context()


def loopback_client(base_url: str, token: str | None = None, *, timeout: float = 5) -> httpx.Client:
    headers = {"Accept": "application/json"} | ({"Authorization": f"Bearer {token}"} if token else {})
    return httpx.Client(base_url=base_url, headers=headers, timeout=timeout, verify=TLS_CONTEXT)


def resource_path(installation_id: str, resource_id: str | None = None) -> str:
    """The path the sync client builds: each id quoted as one opaque segment (dot segments too)."""

    def segment(value: str) -> str:
        return "%2E" * len(value) if value in {".", ".."} else quote(value, safe="")

    path = f"/v1/installations/{segment(installation_id)}/resources"
    return path if resource_id is None else f"{path}/{segment(resource_id)}"


def valid_body(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "productId": "prod_postgres",
        "name": "orders-db",
        "status": "ready",
        "ownership": "owned",
        "metadata": {"region": "eu-west-1", "replicas": 2, "ha": True, "zones": ["a", "b", 3]},
        "billingPlan": {
            "id": "plan_pro",
            "type": "subscription",
            "name": "Pro",
            "paymentMethodRequired": False,
            "details": [{"label": "Storage", "value": "10 GB"}, {"label": "Backups"}],
            "anExtraKey": {"allowed": True},
        },
        "notification": {"level": "info", "title": "Ready", "href": "https://example.com/db"},
        "extras": {"anything": [1, {"nested": None}]},
        "secrets": [
            {
                "name": "DATABASE_URL",
                "value": SECRET_VALUE,
                "prefix": "ORDERS",
                "environmentOverrides": {"preview": "postgres://preview-TOP-SECRET"},
            }
        ],
    }
    body.update(changes)
    return body


def put(http: httpx.Client, path: str, body: object, **headers: str) -> httpx.Response:
    content = httpx.Request("PUT", "/", json=body).content  # compact JSON, as the SDK sends it
    return http.put(path, content=content, headers={"Content-Type": "application/json", **headers})


def assert_error(response: httpx.Response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert error["code"] == code
    assert isinstance(error["message"], str)
    assert set(error) == {"code", "message"}
    return str(error["message"])


# ------------------------------------------------------------ partner changes through the local runner


def record(resource_id: str, status: str = "active", **extra: Any) -> dict[str, Any]:
    return {
        "integrationConfigurationId": INSTALLATION_ID,
        "resourceId": resource_id,
        "productId": "postgres",
        "name": f"{resource_id}-name",
        "status": status,
        **extra,
    }


def put_item(stack: LocalStack, item: dict[str, Any]) -> None:
    stack.aws["dynamodb"].put_item(
        TableName=stack.resources.tables["PartnerTable"].name,
        Item={k: SERIALIZER.serialize(v) for k, v in item.items()},
    )


def delete_item(stack: LocalStack, resource_id: str) -> None:
    stack.aws["dynamodb"].delete_item(
        TableName=stack.resources.tables["PartnerTable"].name,
        Key={"integrationConfigurationId": {"S": INSTALLATION_ID}, "resourceId": {"S": resource_id}},
    )


def send(stack: LocalStack, body: dict[str, Any] | str, *, queue: str = "PartnerEventsQueue", group: str = "g") -> None:
    url = stack.queue_url(queue)
    request: dict[str, Any] = {"QueueUrl": url, "MessageBody": body if isinstance(body, str) else json.dumps(body)}
    if url.endswith(".fifo"):
        request["MessageGroupId"] = group
    stack.aws["sqs"].send_message(**request)


def sync_stream(stack: LocalStack, handlers: dict[str, ModuleType]) -> list[Any]:
    poller = StreamPoller(
        stack.aws["dynamodbstreams"],
        stack.resources.tables["PartnerTable"].stream_arn,
        handlers["stream_sync"].lambda_handler,
        retry_delay_seconds=0.1,
    )
    return list(Runner([poller]).run_until_idle(idle_seconds=0.3, timeout_seconds=30))


def sync_queue(stack: LocalStack, handlers: dict[str, ModuleType], queue: str = "PartnerEventsQueue") -> list[Any]:
    poller = QueuePoller(stack.aws["sqs"], stack.queue_url(queue), handlers["queue_sync"].lambda_handler)
    return list(Runner([poller]).run_until_idle(idle_seconds=0.3, timeout_seconds=30))


def held(stack: LocalStack, resource_id: str) -> dict[str, Any] | None:
    return stack.emulator.held_resource(INSTALLATION_ID, resource_id)


def reported(results: list[Any]) -> list[str]:
    return [identifier for result in results for identifier in result.reported]


# ---------------------------------------------------------------------- a slow way to a local server


class SlowForwarder:
    """Forwards connections on 127.0.0.1 to ``upstream`` (host, port): each piece of a request
    ``latency`` seconds late, and the answers a byte every ``interval`` seconds (each well within
    botocore's read timeout) for the first ``trickle_seconds``, then at once."""

    def __init__(
        self, upstream: tuple[str, int], *, latency: float = 0.0, interval: float = 0.2, trickle_seconds: float = 0.0
    ) -> None:
        self.upstream, self.latency, self.interval = upstream, latency, interval
        self.trickle_until = time.monotonic() + trickle_seconds
        self._stop = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self._stop.set()
        self._listener.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            upstream = socket.create_connection(self.upstream)
            threading.Thread(target=self._pump, args=(client, upstream, False), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, True), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket, answers: bool) -> None:
        try:
            while not self._stop.is_set() and (data := source.recv(65536)):
                if not answers:
                    time.sleep(self.latency)
                for index in range(len(data)):
                    if not answers or time.monotonic() > self.trickle_until:
                        target.sendall(data[index:])
                        break
                    target.sendall(data[index : index + 1])
                    time.sleep(self.interval)
        except OSError:
            pass
        finally:
            for end in (source, target):
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)


# ---------------------------------------------------------------- a deployed stack, as CloudFormation shows it

STACK_FUNCTIONS = ("StreamSyncFunction", "QueueSyncFunction", "RotationSyncFunction", "BackfillFunction")


def cloudformation_stack(stack: LocalStack, aws_endpoint: str, *, vercel_api_url: str) -> str:
    """A CloudFormation stack in moto server with template.yaml's outputs for ``stack``'s queues and tables,
    and its functions as Lambda functions configured as the template configures them (moto creates both;
    its functions are never invoked). Returns the stack's name."""
    import boto3

    from local_aws.moto_server import LOCAL_AWS_ENVIRONMENT

    session = boto3.session.Session(
        aws_access_key_id=LOCAL_AWS_ENVIRONMENT["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=LOCAL_AWS_ENVIRONMENT["AWS_SECRET_ACCESS_KEY"],
        region_name=LOCAL_AWS_ENVIRONMENT["AWS_DEFAULT_REGION"],
    )
    name = f"{stack.resources.stack_name}-deployed"
    role = session.client("iam", endpoint_url=aws_endpoint).create_role(
        RoleName=f"{name}-functions",
        AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
    )["Role"]["Arn"]
    template = stack.resources.template

    def attribute(reference: str) -> Any:
        logical_id, _, attr = reference.partition(".")
        if logical_id in STACK_FUNCTIONS:  # the moto stack's own function
            return {"Fn::GetAtt": [logical_id, attr]} if attr else {"Ref": logical_id}
        if logical_id in stack.resources.queues or logical_id in stack.resources.tables or "::" in logical_id:
            return stack.resources.attribute(reference)
        return f"{logical_id}-not-created-locally"

    globals_environment = stack.resources.function_environment(VERCEL_API_URL=vercel_api_url)
    resources = {
        logical_id: {
            "Type": "AWS::Lambda::Function",
            "Properties": {
                "Runtime": "python3.13",
                "Handler": "app.lambda_handler",
                "Role": role,
                "Code": {"ZipFile": "def lambda_handler(event, context):\n    return None\n"},
                "Environment": {
                    "Variables": {
                        **globals_environment,
                        **template.resolve(
                            template.resources[logical_id]["Properties"].get("Environment", {}).get("Variables", {}),
                            attribute,
                        ),
                    }
                },
            },
        }
        for logical_id in STACK_FUNCTIONS
        if template.included(logical_id)
    }
    outputs = {
        output: {"Value": template.resolve(spec["Value"], attribute)}
        for output, spec in template.document["Outputs"].items()
        if "Condition" not in spec or template.condition(spec["Condition"])
    }
    cloudformation = session.client("cloudformation", endpoint_url=aws_endpoint)
    cloudformation.create_stack(StackName=name, TemplateBody=json.dumps({"Resources": resources, "Outputs": outputs}))
    return name
