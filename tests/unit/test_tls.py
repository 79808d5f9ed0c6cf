"""TLS to Vercel is always verified: no setting or environment variable of this product turns it off,
and a server whose certificate is not trusted never sees a request (so never the token)."""

from __future__ import annotations

import datetime
import inspect
import ipaddress
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.fakes import TOKEN
from vercel_sync.adapters.vercel import VercelClient
from vercel_sync.errors import TransientSyncError
from vercel_sync.settings import ENVIRONMENT_VARIABLES, Settings


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 that no trust store holds."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)

    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


class Recorder(BaseHTTPRequestHandler):
    seen: list[str] = []  # noqa: RUF012 - one server per test, reset by the fixture

    def do_PUT(self) -> None:
        Recorder.seen.append(self.headers.get("Authorization", ""))
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"name":"x"}')

    def log_message(self, format: str, *args: Any) -> None:
        pass


class QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # the refused handshakes are the point


@pytest.fixture
def untrusted_https(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    cert, key = self_signed(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = QuietServer(("127.0.0.1", 0), Recorder)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    Recorder.seen = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{server.server_address[1]}", cert
    server.shutdown()
    server.server_close()


WEAKENING_ENVIRONMENT = {
    "PYTHONHTTPSVERIFY": "0",
    "CURL_CA_BUNDLE": "",
    "REQUESTS_CA_BUNDLE": "",
    "HTTPX_VERIFY": "0",
    "SSL_VERIFY": "false",
    "VERCEL_TLS_VERIFY": "false",
    "NODE_TLS_REJECT_UNAUTHORIZED": "0",
}


def test_an_untrusted_certificate_is_refused_before_any_request(
    untrusted_https: tuple[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, _ = untrusted_https
    for name, value in WEAKENING_ENVIRONMENT.items():
        monkeypatch.setenv(name, value)
    client = VercelClient(Settings.from_env({"VERCEL_API_URL": url}).vercel_api_url, timeout_seconds=2)

    with pytest.raises(TransientSyncError, match="could not reach Vercel"):
        client.import_resource("icfg_1", "r1", {"name": "x"}, token=TOKEN)
    with pytest.raises(TransientSyncError, match="could not reach Vercel"):
        client.update_resource_secrets("icfg_1", "r1", {"secrets": []}, token=TOKEN)
    assert Recorder.seen == []  # the token never left


def test_the_same_server_answers_a_client_that_trusts_its_certificate(untrusted_https: tuple[str, Path]) -> None:
    """The control: the refusal above is the certificate check, not a broken server."""
    url, cert = untrusted_https
    trusting = VercelClient(url, transport=httpx.HTTPTransport(verify=ssl.create_default_context(cafile=str(cert))))
    assert trusting.import_resource("icfg_1", "r1", {"name": "x"}, token=TOKEN) == {"name": "x"}
    assert Recorder.seen == [f"Bearer {TOKEN}"]


def test_no_setting_can_turn_verification_off() -> None:
    client = VercelClient("https://api.vercel.com")
    context = client._http._pool._ssl_context  # type: ignore[attr-defined]
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname is True
    assert "verify" not in inspect.signature(VercelClient).parameters
    words = ("verify", "insecure", "ssl", "tls", "cert")
    assert not [name for name in ENVIRONMENT_VARIABLES if any(w in name.lower() for w in words)]
    assert not [name for name in Settings.model_fields if any(w in name for w in words)]
