"""A hard deadline per HTTP call (``adapters/http_deadline.py``): every network operation of the pool
gets at most the time left to the call's deadline, and none starts past it. Fake httpcore backends
record what each operation was given; one loopback server that trickles its headers checks that a
real client's call ends at its deadline (the integration tests have the full trickling cases)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterable, Iterator
from typing import Any

import httpcore
import httpx
import pytest

from tests.fakes import TOKEN
from vercel_sync.adapters.http_deadline import DeadlineBackend, install_call_deadline
from vercel_sync.adapters.installation_tokens import TokenEndpoint
from vercel_sync.adapters.vercel import VercelClient
from vercel_sync.deadline import within
from vercel_sync.errors import TransientSyncError

TOLERANCE = 0.5  # seconds a loaded machine may take between setting a bound and reading it


class RecordingStream(httpcore.NetworkStream):
    """Records the timeout each operation is given; a write may take ``write_seconds``."""

    def __init__(self, seen: list[tuple[str, float | None]], write_seconds: float = 0.0) -> None:
        self.seen = seen
        self.written: list[bytes] = []
        self.write_seconds = write_seconds

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        self.seen.append(("read", timeout))
        return b""

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self.seen.append(("write", timeout))
        self.written.append(buffer)
        time.sleep(self.write_seconds)

    def close(self) -> None:
        pass

    def start_tls(
        self, ssl_context: Any, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        self.seen.append(("start_tls", timeout))
        return RecordingStream(self.seen)

    def get_extra_info(self, info: str) -> Any:
        return None


class RecordingBackend(httpcore.NetworkBackend):
    def __init__(self, write_seconds: float = 0.0) -> None:
        self.seen: list[tuple[str, float | None]] = []
        self.streams: list[RecordingStream] = []
        self.write_seconds = write_seconds

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        self.seen.append(("connect_tcp", timeout))
        self.streams.append(RecordingStream(self.seen, self.write_seconds))
        return self.streams[-1]

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.NetworkStream:
        self.seen.append(("connect_unix_socket", timeout))
        return RecordingStream(self.seen)

    def sleep(self, seconds: float) -> None:
        pass


def every_operation(backend: httpcore.NetworkBackend, timeout: float | None) -> None:
    stream = backend.connect_tcp("vercel.test", 443, timeout=timeout)
    stream.write(b"x", timeout=timeout)
    stream.read(10, timeout=timeout)
    tls = stream.start_tls(None, "vercel.test", timeout=timeout)  # type: ignore[arg-type]
    tls.write(b"x", timeout=timeout)
    tls.read(10, timeout=timeout)  # the stream after the handshake is bounded too
    backend.connect_unix_socket("/tmp/none", timeout=timeout)  # a fake: nothing is opened


OPERATIONS = ["connect_tcp", "write", "read", "start_tls", "write", "read", "connect_unix_socket"]


@pytest.mark.parametrize("timeout", [5.0, None])
def test_each_operation_gets_at_most_the_time_left_to_the_deadline(timeout: float | None) -> None:
    recording = RecordingBackend()
    with within(1.0):
        every_operation(DeadlineBackend(recording), timeout)

    assert [name for name, _ in recording.seen] == OPERATIONS
    for name, given in recording.seen:
        assert given is not None, name  # no timeout of its own: the time left is its timeout
        assert 1.0 - TOLERANCE < given <= 1.0, name


def test_an_operation_keeps_its_own_timeout_when_it_is_the_shorter() -> None:
    recording = RecordingBackend()
    with within(30.0):
        every_operation(DeadlineBackend(recording), 0.25)
    assert recording.seen == [(name, 0.25) for name in OPERATIONS]


@pytest.mark.parametrize("timeout", [5.0, None])
def test_outside_any_deadline_the_timeouts_are_left_as_they_are(timeout: float | None) -> None:
    recording = RecordingBackend()
    every_operation(DeadlineBackend(recording), timeout)
    assert recording.seen == [(name, timeout) for name in OPERATIONS]


def test_no_operation_starts_past_the_deadline() -> None:
    recording = RecordingBackend()
    backend = DeadlineBackend(recording)
    stream = backend.connect_tcp("vercel.test", 443, timeout=5.0)
    with within(-1.0):
        with pytest.raises(httpcore.ConnectTimeout):
            backend.connect_tcp("vercel.test", 443, timeout=5.0)
        with pytest.raises(httpcore.ConnectTimeout):
            backend.connect_unix_socket("/tmp/none", timeout=5.0)
        with pytest.raises(httpcore.ConnectTimeout):
            stream.start_tls(None, "vercel.test", timeout=5.0)  # type: ignore[arg-type]
        with pytest.raises(httpcore.WriteTimeout):
            stream.write(b"x", timeout=5.0)
        with pytest.raises(httpcore.ReadTimeout):
            stream.read(10, timeout=5.0)
    assert recording.seen == [("connect_tcp", 5.0)]


def test_a_large_write_goes_in_pieces_each_bounded_when_it_starts() -> None:
    # A server that reads slowly: each piece takes 0.2 s to send. The call's deadline passes during
    # the second piece, so the third is not started. A piece is at most one TLS record (16 KiB).
    recording = RecordingBackend(write_seconds=0.2)
    stream = DeadlineBackend(recording).connect_tcp("vercel.test", 443)
    buffer = bytes(range(256)) * 256  # 64 KiB
    with within(0.3), pytest.raises(httpcore.WriteTimeout):
        stream.write(buffer, timeout=5.0)
    (sent,) = recording.streams
    assert [len(piece) for piece in sent.written] == [16 * 1024, 16 * 1024]
    assert b"".join(sent.written) == buffer[: 32 * 1024]


# ---------------------------------------------------------------------- a real client's transport


class HeadersTrickle:
    """A loopback server that reads one request, then sends its answer's headers a byte every 80 ms
    (each read gets a byte long before any read timeout): about 6 s for the headers alone."""

    HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"

    def __enter__(self) -> HeadersTrickle:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._listener.close()

    def _serve(self) -> None:
        self._listener.settimeout(5)
        try:
            connection, _ = self._listener.accept()
        except OSError:
            return
        with connection:
            try:
                request = b""
                while b"\r\n\r\n" not in request:
                    request += connection.recv(65536)
                for index in range(len(self.HEAD)):
                    if self._stop.wait(0.08):
                        return
                    connection.sendall(self.HEAD[index : index + 1])
            except OSError:
                return


@pytest.fixture
def trickle() -> Iterator[HeadersTrickle]:
    with HeadersTrickle() as server:
        yield server


def test_a_call_through_the_clients_own_transport_ends_at_its_deadline(trickle: HeadersTrickle) -> None:
    # The headers alone take 6 s to arrive; the step has 1.2 s left (the call's timeout: 30 s).
    client = VercelClient(trickle.url, timeout_seconds=30)
    started = time.monotonic()
    with within(1.2), pytest.raises(TransientSyncError, match="did not answer in time"):
        client.import_resource("icfg_1", "r1", {"name": "x"}, token=TOKEN)
    assert time.monotonic() - started < 1.2 + 1.8  # a loaded machine's delay, far from the 6 s
    client.close()


def test_a_trickling_token_endpoint_ends_at_the_endpoints_timeout(trickle: HeadersTrickle) -> None:
    # Short-lived tokens: the token request is bounded as a Vercel call is, inside a step or not.
    endpoint = TokenEndpoint(trickle.url, timeout_seconds=1.2)
    started = time.monotonic()
    with pytest.raises(TransientSyncError, match="did not answer in time"):
        endpoint.request("icfg_1", "client", "secret")
    assert time.monotonic() - started < 1.2 + 1.8
    endpoint.close()


def test_a_transport_whose_pool_cannot_be_given_a_deadline_is_refused() -> None:
    # install_call_deadline reaches into httpx's transport (there is no public way yet): one it does
    # not recognise is refused rather than left without a deadline.
    with pytest.raises(RuntimeError, match="deadline"):
        install_call_deadline(httpx.MockTransport(lambda request: httpx.Response(200)))  # type: ignore[arg-type]
    transport = httpx.HTTPTransport()
    transport._pool._network_backend = object()  # type: ignore[assignment]
    with pytest.raises(RuntimeError, match="deadline"):
        install_call_deadline(transport)
