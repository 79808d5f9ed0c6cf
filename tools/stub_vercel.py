"""A minimal local stand-in for the Vercel Import Resource endpoint, over real HTTP.

Enough for the local runner to exercise the real handlers end to end: bearer token per
installation (401 otherwise), the body checked against the published schema (400 naming the
field), 200 ``{"name": ...}`` on success, and what it received kept for display.
It is not the full Vercel API emulator (fault injection, rate limits, read-back): that is
the ``vercel-emulator`` of a later change.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote

from pydantic import ValidationError

from vercel_sync.payload import ImportResourcePayload
from vercel_sync.transform import describe_validation_error


@dataclass
class ReceivedImport:
    installation_id: str
    resource_id: str
    body: dict[str, Any]


@dataclass
class StubVercel:
    tokens: dict[str, str]  # installation id -> the token it accepts
    received: list[ReceivedImport] = field(default_factory=list)
    resources: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> StubVercel:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass  # quiet: the runner prints what matters

            def do_PUT(self) -> None:
                # Split the raw path before decoding, so an encoded "/" stays inside its id.
                parts = self.path.split("?", 1)[0].split("/")
                if len(parts) != 6 or parts[1:3] != ["v1", "installations"] or parts[4] != "resources":
                    return self._answer(404, {"error": {"code": "not_found", "message": "unknown route"}})
                installation_id, resource_id = unquote(parts[3]), unquote(parts[5])
                expected = stub.tokens.get(installation_id)
                if expected is None:
                    return self._answer(404, {"error": {"code": "not_found", "message": "unknown installation"}})
                if self.headers.get("Authorization") != f"Bearer {expected}":
                    return self._answer(401, {"error": {"code": "forbidden", "message": "not authorized"}})
                length = int(self.headers.get("Content-Length") or 0)
                try:
                    body = json.loads(self.rfile.read(length))
                    payload = ImportResourcePayload.model_validate(body)
                except (ValueError, ValidationError) as exc:
                    message = describe_validation_error(exc) if isinstance(exc, ValidationError) else "invalid JSON"
                    return self._answer(400, {"error": {"code": "bad_request", "message": message}})
                with stub._lock:
                    stub.received.append(ReceivedImport(installation_id, resource_id, body))
                    stub.resources[(installation_id, resource_id)] = body
                return self._answer(200, {"name": payload.name})

            def _answer(self, status: int, document: dict[str, Any]) -> None:
                data = json.dumps(document).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return Handler
