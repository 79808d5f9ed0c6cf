"""A hard deadline for each HTTP call, headers and body: every network operation of httpx's pool gets at most
the time left (``deadline.seconds_left``); no public hook for this yet (docs/architecture.md, "Deadline")."""

from __future__ import annotations

import ssl
import typing
from collections.abc import Iterable

import httpcore
import httpx

from vercel_sync.deadline import seconds_left, within
from vercel_sync.errors import TransientSyncError

# Writes go in pieces (one TLS record each), each given the time left: a slow reader overruns by one piece at most.
WRITE_PIECE_BYTES = 16 * 1024


def _bounded(timeout: float | None, error: type[Exception]) -> float | None:
    left = seconds_left()
    if left is None:
        return timeout
    if left <= 0:
        raise error("the call's deadline passed")
    return left if timeout is None else min(timeout, left)


class DeadlineStream(httpcore.NetworkStream):
    def __init__(self, stream: httpcore.NetworkStream) -> None:
        self._stream = stream

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, _bounded(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        for start in range(0, len(buffer), WRITE_PIECE_BYTES):
            self._stream.write(buffer[start : start + WRITE_PIECE_BYTES], _bounded(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        stream = self._stream.start_tls(ssl_context, server_hostname, _bounded(timeout, httpcore.ConnectTimeout))
        return DeadlineStream(stream)

    def get_extra_info(self, info: str) -> typing.Any:
        return self._stream.get_extra_info(info)


class DeadlineBackend(httpcore.NetworkBackend):
    def __init__(self, backend: httpcore.NetworkBackend) -> None:
        self._backend = backend

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        timeout = _bounded(timeout, httpcore.ConnectTimeout)
        return DeadlineStream(self._backend.connect_tcp(host, port, timeout, local_address, socket_options))

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None
    ) -> httpcore.NetworkStream:
        timeout = _bounded(timeout, httpcore.ConnectTimeout)
        return DeadlineStream(self._backend.connect_unix_socket(path, timeout, socket_options))

    def sleep(self, seconds: float) -> None:
        self._backend.sleep(seconds)


def install_call_deadline(transport: httpx.HTTPTransport) -> None:
    """Every network operation of ``transport``'s pool bounded by the call's deadline."""
    pool = getattr(transport, "_pool", None)
    backend = getattr(pool, "_network_backend", None)
    if not isinstance(pool, httpcore.ConnectionPool) or not isinstance(backend, httpcore.NetworkBackend):
        raise RuntimeError("this httpx transport's connection pool is not one whose calls can be given a deadline")
    if not isinstance(backend, DeadlineBackend):
        pool._network_backend = DeadlineBackend(backend)


def send_within(
    http: httpx.BaseTransport, request: httpx.Request, seconds: float, *, max_bytes: int, peer: str
) -> tuple[httpx.Response, bytes, bool]:
    """One call within ``seconds``, headers and body: the answer, at most ``max_bytes`` of its body and
    whether that is all of it. A timeout or a transport error is transient, naming ``peer``."""
    try:
        with within(seconds):
            response = http.handle_request(request)
            try:
                content, complete = _read_capped(response, max_bytes, peer)
            finally:
                response.close()
    except httpx.TimeoutException as exc:
        raise TransientSyncError(f"{peer} did not answer in time ({type(exc).__name__})") from None
    except httpx.TransportError as exc:
        raise TransientSyncError(f"could not reach {peer} ({type(exc).__name__})") from None
    return response, content, complete


def _read_capped(response: httpx.Response, max_bytes: int, peer: str) -> tuple[bytes, bool]:
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_bytes():
        chunks.append(chunk)
        size += len(chunk)
        if size > max_bytes:
            return b"".join(chunks)[:max_bytes], False
        # The network backend enforces the deadline; this covers a transport without it.
        left = seconds_left()
        if left is not None and left <= 0:
            raise TransientSyncError(f"{peer}'s answer took longer than the call's timeout to arrive")
    return b"".join(chunks), True
