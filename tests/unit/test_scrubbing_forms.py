"""Secret values stay out of what we emit in the forms an echo takes.

Written against the public behaviour (``scrub_text``, ``scrub``, the failed-records message, the
error a record goes back with), not how scrubbing finds the forms.
"""

from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import quote

import pytest

from tests.fakes import TOKEN, FakeFailedRecords, FakeSecrets, FakeVercel, make_sync_service, sync_one, vercel_rejects
from tests.leak_scan import register_secret
from vercel_sync.calls import RetryPolicy
from vercel_sync.changes import SourceChange, SourcePosition
from vercel_sync.errors import TransientSyncError
from vercel_sync.redaction import MAX_ENCODED_CHARACTER, REDACTED, scrub, scrub_text, truncate

INSTALLATION = "icfg_scrub"
SECRET_NAME = f"partner/resources/{INSTALLATION}/db"

# Non-ASCII with a character JSON escapes: its non-ASCII JSON form (``ensure_ascii=False``) differs
# from the value itself and from its ASCII JSON form.
NON_ASCII_SECRETS = [
    'pässwörd-"quoted"-Ω-7f3a',
    "pässwörd-back\\slash-Ω-1b9c",
    "pässwörd-tab\there-Ω-5e2d",
    "秘密-line\nbreak-8c4f",
]
register_secret(*NON_ASCII_SECRETS, label="test_scrubbing_forms' secrets")


def forms(value: str) -> list[str]:
    """The value, and how a JSON document carries it with and without ASCII escapes."""
    return [value, json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1]]


def assert_no_form_of(value: str, text: str) -> None:
    found = [index for index, form in enumerate(forms(value)) if form in text]
    assert found == [], f"forms {found} of the secret are still in the text"  # indexes only, never the value


@pytest.mark.parametrize("secret", NON_ASCII_SECRETS)
def test_a_secret_echoed_in_non_ascii_json_is_scrubbed(secret: str) -> None:
    body = json.dumps({"error": {"code": "bad_request", "message": f"bad value {secret}"}}, ensure_ascii=False)
    assert json.dumps(secret, ensure_ascii=False)[1:-1] in body  # the form under test is what the body holds

    scrubbed = scrub_text(body, [secret])

    assert_no_form_of(secret, scrubbed)
    assert REDACTED in scrubbed


@pytest.mark.parametrize("secret", NON_ASCII_SECRETS)
def test_a_document_holding_the_non_ascii_json_form_is_scrubbed(secret: str) -> None:
    echo = json.dumps({"value": secret}, ensure_ascii=False)

    scrubbed = scrub({"echo": echo, "list": [echo]}, [secret])

    assert_no_form_of(secret, json.dumps(scrubbed, ensure_ascii=False))


@pytest.mark.parametrize("secret", NON_ASCII_SECRETS)
def test_the_non_ascii_json_form_is_replaced_where_it_stands(secret: str) -> None:
    # The rest of the body is kept as it was, escapes and all: it stays the JSON it was.
    document = {"error": {"code": "bad_request", "message": 'a "quoted" word, a \\ and \u00e9'}, "echo": secret}
    body = json.dumps(document, ensure_ascii=False)

    scrubbed = scrub_text(body, [secret])

    assert json.loads(scrubbed) == {**document, "echo": REDACTED}
    assert scrubbed == body.replace(json.dumps(secret, ensure_ascii=False)[1:-1], REDACTED)


def change(item: dict[str, Any]) -> SourceChange:
    return SourceChange(SourcePosition("sqs", "arn:aws:sqs:us-east-1:1:q", "m-1"), item)


def record() -> dict[str, Any]:
    return {
        "integrationConfigurationId": INSTALLATION,
        "resourceId": "db",
        "productId": "prod_pg",
        "name": "orders",
        "status": "active",
        "secretsArn": SECRET_NAME,
    }


@pytest.mark.parametrize("secret", NON_ASCII_SECRETS)
def test_a_vercel_error_echoing_a_secret_in_non_ascii_json_leaves_it_out_of_the_failed_record(secret: str) -> None:
    body = json.dumps({"error": {"code": "bad_request", "message": f"invalid: {secret}"}}, ensure_ascii=False)
    vercel = FakeVercel(script={"db": [vercel_rejects(400, body)]})
    failed = FakeFailedRecords()
    secrets = FakeSecrets(documents={SECRET_NAME: {"PASSWORD": secret}})
    service = make_sync_service(vercel=vercel, secrets=secrets, failed_records=failed)

    assert sync_one(service, change(record())) == "parked"

    (message,) = failed.messages
    for text in (json.dumps(message), json.dumps(message, ensure_ascii=False), message["vercelError"] or ""):
        assert_no_form_of(secret, text)
    assert message["reason"] == "vercel_rejected"
    assert message["httpStatus"] == 400


def test_a_transient_error_echoing_secrets_goes_back_to_its_source_scrubbed() -> None:
    """A 5xx from a proxy may quote the request (the token in its header, the body's secrets)."""
    secret = NON_ASCII_SECRETS[0]
    echo = json.dumps({"headers": {"authorization": f"Bearer {TOKEN}"}, "body": secret}, ensure_ascii=False)
    vercel = FakeVercel(failing={"db": TransientSyncError(f"Vercel answered 502: {echo}", http_status=502)})
    secrets = FakeSecrets(documents={SECRET_NAME: {"PASSWORD": secret}})
    service = make_sync_service(
        vercel=vercel, secrets=secrets, failed_records=FakeFailedRecords(), retry_policy=RetryPolicy(max_calls=1)
    )

    (result,) = service.sync_batch([change(record())])

    assert result.error is not None
    assert result.error.http_status == 502
    assert_no_form_of(secret, result.error.message)
    assert_no_form_of(TOKEN, result.error.message)
    assert REDACTED in result.error.message


def test_a_cut_body_keeps_no_start_of_a_secret_at_its_end() -> None:
    """The text was cut where it was read: a secret may stand at its end without its last
    character, where no scrub can recognise it, so the end is dropped."""
    secret = "pw-UNIT-9f8e7d6c5b4a"  # tests.fakes.DB_PASSWORD: registered with the leak scan
    # A part may be encoded (each character up to MAX_ENCODED_CHARACTER long): that much is dropped.
    could_hold_a_part = MAX_ENCODED_CHARACTER * len(secret)
    for kept in range(1, len(secret)):
        text = "x" * 400 + secret[:kept]

        scrubbed = scrub_text(text, [secret], cut_at_end=True).removesuffix("...")

        assert not any(scrubbed.endswith(secret[:size]) for size in range(1, kept + 1)), kept
        assert scrubbed.startswith("x" * (400 + kept - could_hold_a_part))  # only that end is dropped


def test_truncate_keeps_text_of_exactly_the_limit_whole() -> None:
    assert truncate("x" * 20, limit=20) == "x" * 20
    assert truncate("x" * 21, limit=20) == "x" * 20 + "... [1 more characters]"


def binary_forms(value: str) -> set[str]:
    """The value's UTF-8 bytes in hex (either case), and in base64 (both alphabets) wherever in a
    3-byte group they start: the characters of the encoding that hold the value's bits alone."""
    data = value.encode("utf-8")
    found = {data.hex(), data.hex().upper()}
    for offset in range(3):
        core = base64.b64encode(bytes(offset) + data)[(offset * 8 + 5) // 6 : (offset + len(data)) * 8 // 6]
        found |= {core.decode(), core.decode().replace("+", "-").replace("/", "_")}
    return found


@pytest.mark.parametrize("encode", ["base64", "urlsafe_base64", "hex", "hex_upper", "base64_url_encoded"])
@pytest.mark.parametrize("secret", [*NON_ASCII_SECRETS, TOKEN])
def test_a_proxy_page_echoing_the_request_in_base64_or_hex_leaves_no_secret_in_the_failed_record(
    encode: str, secret: str
) -> None:
    """A proxy's error page showing the request's bytes base64- or hex-encoded (its body, with the
    secret at any place in a 3-byte group, or the Authorization header): no form of it is kept."""
    secrets = FakeSecrets(documents={SECRET_NAME: {"PASSWORD": secret}})
    for padding in range(3):
        request = ("x" * padding + json.dumps({"secrets": [{"value": secret}], "auth": f"Bearer {TOKEN}"})).encode()
        echo = {
            "base64": base64.b64encode(request).decode(),
            "urlsafe_base64": base64.urlsafe_b64encode(request).decode(),
            "hex": request.hex(),
            "hex_upper": request.hex().upper(),
            "base64_url_encoded": quote(base64.b64encode(request).decode(), safe=""),
        }[encode]
        page = f"<html><body><h1>400 Bad Request</h1><pre>request: {echo}</pre></body></html>"
        failed = FakeFailedRecords()
        vercel = FakeVercel(script={"db": [vercel_rejects(400, page)]})

        service = make_sync_service(vercel=vercel, secrets=secrets, failed_records=failed)
        assert sync_one(service, change(record())) == "parked"

        (message,) = failed.messages
        kept = json.dumps(message)
        assert [form for form in binary_forms(secret) | binary_forms(TOKEN) if form in kept] == [], padding
        assert "400 Bad Request" in message["vercelError"]
