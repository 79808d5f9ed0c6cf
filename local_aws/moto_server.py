"""moto server on a free loopback port, in this process (a thread), for the demo and the tests."""

from __future__ import annotations

import io
import json
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypedDict

import httpx

if TYPE_CHECKING:  # the stubs are a development dependency
    from types_boto3_secretsmanager.client import SecretsManagerClient
    from types_boto3_sqs.client import SQSClient

# Credentials moto accepts; never real ones. A local run must not reach an AWS account.
LOCAL_AWS_ENVIRONMENT = {
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "local",
    "AWS_SECRET_ACCESS_KEY": "local",  # moto's placeholder, never a real key  # nosec B105
}


class _AtomicDynamoDb:
    """WSGI middleware: one DynamoDB request at a time.

    DynamoDB applies each conditional write atomically; moto's backend does not lock, so two
    concurrent conditional updates of one item can both succeed (seen: 2-3 of 8 concurrent
    claims). Serialising DynamoDB requests gives moto server the guarantee the real service has
    (and that the claim and the shared rate limiter rely on). Other services stay concurrent
    (an SQS long poll must not block them).
    """

    def __init__(self, app: Any) -> None:
        self._app = app
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        if not str(environ.get("HTTP_X_AMZ_TARGET", "")).startswith("DynamoDB_"):
            return self._app(environ, start_response)
        with self._lock:
            # Read the whole answer inside the lock: a WSGI app may do its work lazily.
            return list(self._app(environ, start_response))


class SecretsManagerRequests:
    """WSGI middleware: which secret each Secrets Manager request named (``(action, SecretId)``),
    so a test can prove a value was never read: no ``GetSecretValue`` named it."""

    def __init__(self, app: Any) -> None:
        self._app = app
        self._lock = threading.Lock()
        self._seen: list[tuple[str, str]] = []

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        target = str(environ.get("HTTP_X_AMZ_TARGET", ""))
        if target.startswith("secretsmanager."):
            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = environ["wsgi.input"].read(length) if length else b""
            environ["wsgi.input"] = io.BytesIO(body)  # put back for moto
            try:
                request = json.loads(body or b"{}")
            except ValueError:
                request = {}
            named = str(request.get("SecretId", "")) if isinstance(request, dict) else ""
            with self._lock:
                self._seen.append((target.partition(".")[2], named))
        return self._app(environ, start_response)

    def named(self, action: str) -> list[str]:
        """The ``SecretId`` of every ``action`` request so far (e.g. ``"GetSecretValue"``)."""
        with self._lock:
            return [secret_id for seen, secret_id in self._seen if seen == action]


# endpoint URL -> the Secrets Manager requests its server received
SECRETS_MANAGER_REQUESTS: dict[str, SecretsManagerRequests] = {}


@contextmanager
def moto_server(port: int = 0) -> Iterator[str]:
    """Start moto server (Secrets Manager, SQS, DynamoDB and its streams) on loopback, in a
    thread, and yield its URL; ``port`` 0 takes a free one."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's request log
    # As moto's ThreadedMotoServer does, plus atomic DynamoDB requests.
    secrets_requests = SecretsManagerRequests(DomainDispatcherApplication(create_backend_app))
    app = _AtomicDynamoDb(secrets_requests)
    server = make_server("127.0.0.1", port, app, threaded=True, request_handler=MotoRequestHandler)
    endpoint = f"http://{server.host}:{server.port}"  # werkzeug's port is the bound one when given 0
    thread = threading.Thread(target=server.serve_forever, name="moto-server", daemon=True)
    thread.start()
    try:
        # moto keeps its state per process: start from an empty account.
        httpx.post(f"{endpoint}/moto-api/reset", timeout=10).raise_for_status()
        SECRETS_MANAGER_REQUESTS[endpoint] = secrets_requests
        yield endpoint
    finally:
        SECRETS_MANAGER_REQUESTS.pop(endpoint, None)
        server.shutdown()
        thread.join()


class AwsClients(TypedDict):
    """boto3 clients for the services a local run touches (no stubs are installed for DynamoDB's)."""

    sqs: SQSClient
    secretsmanager: SecretsManagerClient
    dynamodb: Any
    dynamodbstreams: Any


def aws_clients(endpoint: str) -> AwsClients:
    """boto3 clients for the services a local run touches, all pointed at ``endpoint``."""
    import boto3

    session = boto3.session.Session(
        aws_access_key_id=LOCAL_AWS_ENVIRONMENT["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=LOCAL_AWS_ENVIRONMENT["AWS_SECRET_ACCESS_KEY"],
        region_name=LOCAL_AWS_ENVIRONMENT["AWS_DEFAULT_REGION"],
    )
    return AwsClients(
        sqs=session.client("sqs", endpoint_url=endpoint),
        secretsmanager=session.client("secretsmanager", endpoint_url=endpoint),
        dynamodb=session.client("dynamodb", endpoint_url=endpoint),
        dynamodbstreams=session.client("dynamodbstreams", endpoint_url=endpoint),
    )
