"""The emulator's control API refuses what a page in the developer's browser can send: a request
addressed to another host name (DNS rebinding), a cross-site Origin, a body that is not JSON (a
form post). Over real HTTP on loopback; ``/_emulator/imports`` holds secret values."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import pytest

from tests.integration.support import (
    SECRET_VALUE,
    TOKEN_1,
    assert_error,
    loopback_client,
    put,
    resource_path,
    valid_body,
)
from vercel_emulator import EmulatorServer

pytestmark = pytest.mark.integration


@pytest.fixture
def client(vercel: EmulatorServer) -> Iterator[httpx.Client]:
    with loopback_client(vercel.url, TOKEN_1) as http:
        put(http, resource_path("icfg_1", "db_primary"), valid_body())  # /_emulator/imports now holds a secret
        yield http


def port_of(vercel: EmulatorServer) -> int:
    port = urlsplit(vercel.url).port
    assert port is not None
    return port


@pytest.mark.parametrize("host", ["127.0.0.1:{port}", "localhost:{port}", "LOCALHOST:{port}", "[::1]:{port}"])
def test_loopback_host_names_with_the_servers_port_are_answered(
    vercel: EmulatorServer, client: httpx.Client, host: str
) -> None:
    response = client.get("/_emulator/imports", headers={"Host": host.format(port=port_of(vercel))})

    assert response.status_code == 200
    assert response.json()["imports"][0]["body"]["secrets"][0]["value"] == SECRET_VALUE


@pytest.mark.parametrize(
    "host",
    [
        "attacker.example:{port}",  # DNS rebinding: the page's own name, now resolving to 127.0.0.1
        "attacker.example",
        "127.0.0.1.attacker.example:{port}",
        "localhost.attacker.example:{port}",
        "127.0.0.1:{other}",  # another port: another server's page
        "localhost",  # port 80: not this server's
        "0.0.0.0:{port}",
        "10.0.0.1:{port}",
        "user@127.0.0.1:{port}",
        "127.0.0.1:{port}/x",
        "127.0.0.1:port",
    ],
)
def test_other_host_names_are_refused(vercel: EmulatorServer, client: httpx.Client, host: str) -> None:
    port = port_of(vercel)
    headers = {"Host": host.format(port=port, other=port + 1)}

    response = client.get("/_emulator/imports", headers=headers)

    assert "loopback host" in assert_error(response, 403, "forbidden")
    assert SECRET_VALUE not in response.text
    assert_error(client.post("/_emulator/reset", headers=headers), 403, "forbidden")
    assert vercel.imported_body("icfg_1", "db_primary") is not None  # not reset


def test_a_request_without_host_is_refused(vercel: EmulatorServer) -> None:
    import socket

    with socket.create_connection(("127.0.0.1", port_of(vercel)), timeout=5) as connection:
        connection.sendall(b"GET /_emulator/imports HTTP/1.0\r\n\r\n")
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.0 403") or answer.startswith(b"HTTP/1.1 403"), answer[:40]
    assert SECRET_VALUE.encode() not in answer


@pytest.mark.parametrize(
    "origin",
    ["https://attacker.example", "http://attacker.example:8787", "null", "http://127.0.0.1.attacker.example", "x"],
)
def test_cross_site_origins_are_refused(vercel: EmulatorServer, client: httpx.Client, origin: str) -> None:
    response = client.get("/_emulator/imports", headers={"Origin": origin})

    assert "loopback origins" in assert_error(response, 403, "forbidden")
    assert SECRET_VALUE not in response.text
    refused = client.post("/_emulator/faults", json={"errorRate": 1.0}, headers={"Origin": origin})
    assert_error(refused, 403, "forbidden")
    assert_error(client.post("/_emulator/reset", headers={"Origin": origin}), 403, "forbidden")
    assert client.get("/_emulator/faults").json()["errorRate"] == 0
    assert vercel.imported_body("icfg_1", "db_primary") is not None  # not reset


@pytest.mark.parametrize("origin", ["http://localhost:3000", "http://127.0.0.1:{port}", "https://[::1]"])
def test_loopback_origins_are_answered(vercel: EmulatorServer, client: httpx.Client, origin: str) -> None:
    headers = {"Origin": origin.format(port=port_of(vercel))}

    assert client.get("/_emulator/imports", headers=headers).status_code == 200
    assert client.post("/_emulator/rate-limit", json={"calls": 7, "seconds": 60}, headers=headers).status_code == 200


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b'{"errorRate": 1.0}', "text/plain"),  # what a form with enctype=text/plain sends
        (b'{"errorRate": 1.0}', "text/plain;charset=UTF-8"),  # fetch() with a string body, no preflight
        (b"errorRate=1.0", "application/x-www-form-urlencoded"),
        (
            b'--b\r\nContent-Disposition: form-data; name="errorRate"\r\n\r\n1\r\n--b--\r\n',
            "multipart/form-data; boundary=b",
        ),
        (b'{"errorRate": 1.0}', None),  # a body without a type
    ],
)
def test_bodies_that_are_not_json_are_refused(
    vercel: EmulatorServer, client: httpx.Client, content: bytes, content_type: str | None
) -> None:
    request = client.build_request("POST", "/_emulator/faults", content=content)
    if content_type is not None:
        request.headers["Content-Type"] = content_type

    response = client.send(request)

    assert "application/json" in assert_error(response, 415, "unsupported_media_type")
    assert client.get("/_emulator/faults").json()["errorRate"] == 0
    # An empty form post is refused too, so it cannot reset the emulator.
    emptied = client.post("/_emulator/reset", headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert_error(emptied, 415, "unsupported_media_type")
    assert vercel.imported_body("icfg_1", "db_primary") is not None


def test_json_bodies_and_bodiless_posts_are_answered(vercel: EmulatorServer, client: httpx.Client) -> None:
    typed = client.post(
        "/_emulator/faults", content=b'{"errorRate": 0.5}', headers={"Content-Type": "application/json; charset=utf-8"}
    )
    assert typed.status_code == 200
    assert typed.json()["errorRate"] == 0.5
    assert client.post("/_emulator/reset").json() == {"status": "ok"}  # no body, no Content-Type
    assert vercel.imported_body("icfg_1", "db_primary") is None


def test_the_vercel_api_itself_is_not_restricted(vercel: EmulatorServer, client: httpx.Client) -> None:
    """The checks guard the control API only: the API answers whatever Host the caller uses."""
    response = client.get(resource_path("icfg_1", "db_primary"), headers={"Host": "api.vercel.example"})
    assert response.status_code == 200
