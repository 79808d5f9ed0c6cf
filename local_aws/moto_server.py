"""moto server on a free loopback port, in this process (a thread), for the demo and the tests."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

# Credentials moto accepts; never real ones. A local run must not reach an AWS account.
LOCAL_AWS_ENVIRONMENT = {
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "local",
    "AWS_SECRET_ACCESS_KEY": "local",  # moto's placeholder, never a real key  # nosec B105
}


@contextmanager
def moto_server(port: int = 0) -> Iterator[str]:
    """Start moto server (Secrets Manager, SQS, DynamoDB and its streams) on loopback and yield
    its URL; ``port`` 0 takes a free one."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's request log
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        # moto keeps its state per process: start from an empty account.
        httpx.post(f"{endpoint}/moto-api/reset", timeout=10).raise_for_status()
        yield endpoint
    finally:
        server.stop()


def aws_clients(endpoint: str) -> dict[str, object]:
    """boto3 clients for the services a local run touches, all pointed at ``endpoint``."""
    import boto3

    session = boto3.session.Session(
        aws_access_key_id=LOCAL_AWS_ENVIRONMENT["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=LOCAL_AWS_ENVIRONMENT["AWS_SECRET_ACCESS_KEY"],
        region_name=LOCAL_AWS_ENVIRONMENT["AWS_DEFAULT_REGION"],
    )
    return {
        name: session.client(name, endpoint_url=endpoint)  # type: ignore[call-overload]
        for name in ("sqs", "dynamodb", "dynamodbstreams", "secretsmanager")
    }
