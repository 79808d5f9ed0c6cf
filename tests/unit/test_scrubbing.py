"""Error bodies that echo the request with other escaping than ours: no secret value survives into a
failed-records message, whatever the encoding, through the real Vercel client and pipeline."""

from __future__ import annotations

import html
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, unquote

import httpx
import pytest
import respx

from tests.builders import change, record_with_secret
from tests.encodings import (
    BODIES,
    ECHOED_PASSWORD,
    ENCODINGS,
    forms,
    proxy_page_with_echo,
    strings,
    upper_hex,
)
from tests.fakes import (
    DB_PASSWORD,
    TOKEN,
    FakeFailedRecords,
    FakeSecrets,
    FakeVercel,
    make_sync_service,
    sync_one,
    vercel_rejects,
)
from tests.leak_scan import register_secret
from vercel_sync import redaction
from vercel_sync.adapters.vercel import VercelClient
from vercel_sync.changes import SourceChange, SourcePosition
from vercel_sync.errors import PermanentSyncError
from vercel_sync.redaction import REDACTED, WITHHELD, scrub, scrub_error_body, scrub_text, truncate
from vercel_sync.rotation.events import RotationTarget, SecretChange, build_rotation_failure_message
from vercel_sync.sync.service import SyncService

BASE = "https://api.vercel.test"
INSTALLATION = "icfg_echo"
SECRET_NAME = f"partner/resources/{INSTALLATION}/db"


def echoing_vercel(encoding: str, body: str, status: int = 400) -> httpx.MockTransport:
    encode, _ = ENCODINGS[encoding]

    def answer(request: httpx.Request) -> httpx.Response:
        echo = encode(json.loads(request.content))
        return httpx.Response(status, content=BODIES[body](echo).encode("utf-8"))

    return httpx.MockTransport(answer)


def record(resource_id: str = "db_echo", *, secret: bool = True) -> dict[str, Any]:
    item = {
        "integrationConfigurationId": INSTALLATION,
        "resourceId": resource_id,
        "productId": "prod_pg",
        "name": "orders",
        "status": "active",
    }
    return item | ({"secretsArn": SECRET_NAME} if secret else {})


def service(transport: httpx.BaseTransport, failed: FakeFailedRecords) -> SyncService:
    secrets = FakeSecrets(documents={SECRET_NAME: {"PGPASSWORD": ECHOED_PASSWORD}})
    return make_sync_service(vercel=VercelClient(BASE, transport=transport), secrets=secrets, failed_records=failed)


@pytest.mark.parametrize("body", sorted(BODIES))
@pytest.mark.parametrize("encoding", sorted(ENCODINGS))
def test_a_rejection_echoing_the_request_keeps_no_secret_in_the_failed_record(encoding: str, body: str) -> None:
    failed = FakeFailedRecords()

    assert sync_one(service(echoing_vercel(encoding, body), failed), change(record())) == "parked"

    (message,) = failed.messages
    assert message["reason"] == "vercel_rejected"
    assert message["httpStatus"] == 400
    for text in strings(message):
        for value in (ECHOED_PASSWORD, TOKEN):
            for form in forms(value):
                assert form not in text, f"{value!r} in the form {form!r}"
    # What is kept still tells an operator what happened.
    kept = message["vercelError"]
    if body == "json_echo_beside_the_error":
        assert json.loads(kept) == {"error": {"code": "bad_request", "message": "invalid request"}}
    elif body == "json_echo_in_the_message":
        assert json.loads(kept)["error"]["code"] == "bad_request"
        assert REDACTED in json.loads(kept)["error"]["message"]
    else:
        assert "400 Bad Request" in kept
        assert REDACTED in kept


def test_a_403_stops_the_installation_with_the_status_alone() -> None:
    # The first resource's rejection quotes its own secret (in error.code, which the client puts in
    # the detail); the installation's other resources are parked with the status, not that text.
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(403, json={"error": {"code": ECHOED_PASSWORD, "message": "forbidden"}})

    failed = FakeFailedRecords()
    sync = service(httpx.MockTransport(answer), failed)
    sync.tuning = replace(sync.tuning, max_concurrency=1)  # the first resource is refused before the second starts

    results = sync.sync_batch([change(record("db_echo"), "m-1"), change(record("db_plain", secret=False), "m-2")])

    assert [result.outcome for result in results] == ["parked", "parked"]
    first, other = failed.messages
    assert first["resourceId"] == "db_echo"
    assert other["resourceId"] == "db_plain"
    assert other["reason"] == "installation_unavailable"
    assert other["httpStatus"] == 403
    assert other["detail"] == (
        "not sent: Vercel refused the installation (403) (for another resource of this installation in this batch)"
    )
    assert other["vercelError"] is None
    for text in strings(failed.messages):
        assert ECHOED_PASSWORD not in text


@pytest.mark.parametrize("encoding", sorted(ENCODINGS))
def test_rotation_failure_messages_are_scrubbed_the_same_way(encoding: str) -> None:
    encode, _ = ENCODINGS[encoding]
    echo = encode({"secrets": [{"name": "PGPASSWORD", "value": ECHOED_PASSWORD}]})
    error = PermanentSyncError(
        "Vercel rejected the secrets update (400)",
        reason="vercel_rejected",
        http_status=400,
        vercel_error=proxy_page_with_echo(echo),
    )

    message = build_rotation_failure_message(
        SecretChange("PutSecretValue", SECRET_NAME),
        RotationTarget(INSTALLATION, "db_echo", None),
        error,
        failed_at=datetime(2026, 11, 27, tzinfo=UTC),
        calls=1,
        secret_values=[ECHOED_PASSWORD, TOKEN],
    )

    for text in strings(message):
        for form in forms(ECHOED_PASSWORD):
            assert form not in text
    assert REDACTED in message["vercelError"]


# --------------------------------------------------------------------------- the scrub on its own


@pytest.mark.parametrize("encoding", sorted(ENCODINGS))
def test_text_is_scrubbed_in_every_encoding(encoding: str) -> None:
    _, form = ENCODINGS[encoding]
    text = f"before {form(ECHOED_PASSWORD)} after"

    scrubbed = scrub_text(text, [ECHOED_PASSWORD])

    assert not any(each in scrubbed for each in forms(ECHOED_PASSWORD))
    assert scrubbed.startswith("before ")
    assert scrubbed.endswith(" after")


def test_encodings_stacked_and_mixed_are_taken_off() -> None:
    stacked = quote(json.dumps(json.dumps(ECHOED_PASSWORD)))  # URL-encoded JSON string of a JSON string
    half = len(ECHOED_PASSWORD) // 2
    mixed = json.dumps(ECHOED_PASSWORD[:half])[1:-1] + quote(ECHOED_PASSWORD[half:])
    for text in (stacked, mixed, html.escape(quote(ECHOED_PASSWORD))):
        scrubbed = scrub_text(f"x {text} y", [ECHOED_PASSWORD])
        assert REDACTED in scrubbed, text


def test_text_without_a_secret_is_left_as_it_is() -> None:
    text = 'a %20 b + c &amp; d \\u00e9 e \\/ f "g"'
    assert scrub_text(text, [ECHOED_PASSWORD]) == text
    assert scrub({"k": [text, 1]}, [ECHOED_PASSWORD]) == {"k": [text, 1]}


def test_documents_are_scrubbed_in_every_encoding() -> None:
    document = {"metadata": {"url": "postgres://u:" + quote(ECHOED_PASSWORD, safe="") + "@db"}}
    assert scrub(document, [ECHOED_PASSWORD]) == {"metadata": {"url": f"postgres://u:{REDACTED}@db"}}


def test_a_json_body_keeps_only_error_code_and_message() -> None:
    body = json.dumps({"error": {"code": "conflict", "message": "taken", "field": ECHOED_PASSWORD}, "echo": 1})
    assert json.loads(scrub_error_body(body, [TOKEN])) == {"error": {"code": "conflict", "message": "taken"}}
    assert "not kept" in scrub_error_body(json.dumps({"request": {"v": ECHOED_PASSWORD}}), [TOKEN])
    assert "not kept" in scrub_error_body(json.dumps([ECHOED_PASSWORD]), [TOKEN])


def test_a_json_string_body_of_text_is_scrubbed_as_text() -> None:
    assert scrub_error_body(json.dumps(f"denied for {ECHOED_PASSWORD}"), [ECHOED_PASSWORD]) == f"denied for {REDACTED}"


def test_a_body_cut_where_it_was_read_loses_any_encoded_part_at_its_end() -> None:
    encoded = quote(ECHOED_PASSWORD, safe="")
    for cut in range(1, len(encoded)):
        kept = scrub_error_body("proxy said: " + "z" * 1000 + encoded[:cut], [ECHOED_PASSWORD], complete=False)
        assert kept.startswith("proxy said: zzz")
        assert set(kept.removeprefix("proxy said: ").removesuffix("...")) == {"z"}


def test_a_long_body_is_read_only_as_far_as_it_can_be_kept() -> None:
    body = "x" * 100_000 + ECHOED_PASSWORD
    kept = scrub_error_body(body, [ECHOED_PASSWORD])
    assert len(kept) < 2100
    assert ECHOED_PASSWORD not in kept


def test_a_value_encoded_many_times_over_is_found() -> None:
    text = ECHOED_PASSWORD
    for _ in range(8):
        text = quote(text, safe="")
    assert scrub_text(f"x {text} y", [ECHOED_PASSWORD]) == f"x {REDACTED} y"


def test_what_cannot_be_taken_out_in_the_rounds_allowed_is_withheld(monkeypatch: pytest.MonkeyPatch) -> None:
    # Two encodings that no one view takes off together: one round of scrubbing in a decoded view
    # is not enough, and the text is dropped rather than kept with a value in it.
    text = f"{upper_hex(json.dumps(ECHOED_PASSWORD))} and {quote(ECHOED_PASSWORD)}"
    assert scrub_text(text, [ECHOED_PASSWORD]).count(REDACTED) == 2
    monkeypatch.setattr(redaction, "MAX_ROUNDS", 1)
    assert scrub_text(text, [ECHOED_PASSWORD]) == WITHHELD


def test_an_old_stream_record_hit_by_a_bug_is_parked_whole_without_the_error_text() -> None:
    now = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)

    class BrokenVercel:
        def import_resource(self, *_: Any, **__: Any) -> dict[str, Any]:
            raise RuntimeError(f"a library quoting the secret {ECHOED_PASSWORD}")

    failed = FakeFailedRecords()
    sync = make_sync_service(
        vercel=BrokenVercel(),
        secrets=FakeSecrets(documents={SECRET_NAME: {"PGPASSWORD": ECHOED_PASSWORD}}),
        failed_records=failed,
        clock=lambda: now,
        park_stream_records_after_seconds=20 * 3600,
    )

    def stream_change(age: timedelta) -> SourceChange:
        position = SourcePosition(
            kind="dynamodb-stream", event_source_arn="arn:stream", item_identifier="100", created_at=now - age
        )
        return SourceChange(position, record())

    (young,) = sync.sync_batch([stream_change(timedelta(hours=19, minutes=59))])
    assert young.failed
    assert young.error is not None
    assert failed.messages == []

    (old,) = sync.sync_batch([stream_change(timedelta(hours=20))])
    assert old.outcome == "parked"
    (message,) = failed.messages
    assert message["reason"] == "retries_exhausted"
    assert message["record"] == record()
    assert message["detail"] == (
        "still failing after 20.0 h in the stream, which keeps records 24 h: "
        "unexpected RuntimeError (a bug; see the error log)"
    )


# ------------------------------------------------------------------------- error bodies' edges

ASTRAL_SECRET = "🔑🗝🔐🔏-UNIT-astral"  # characters outside the BMP: a JSON escape pair each
ALL_ASTRAL_SECRET = "🔑🗝🔐🔏🔒🔓🔑🗝"  # twelve characters each, URL-encoded
register_secret(ASTRAL_SECRET, ALL_ASTRAL_SECRET, label="test_scrubbing's astral secrets")
# A value whose JSON form (its backslash written as an escape) is a text an error may hold as it is.
ESCAPED_SECRET = "pw-UNIT-\\t-literal"
register_secret(ESCAPED_SECRET, label="test_scrubbing's secret holding a backslash")


def holds(text: str, value: str) -> bool:
    """Whether ``value`` is in ``text`` (a bool: an assertion never prints either)."""
    return value in text


def test_a_long_error_code_is_cut_and_the_message_kept() -> None:
    body = json.dumps({"error": {"code": "c" * 5000, "message": "taken"}})
    kept = json.loads(scrub_error_body(body, [TOKEN]))
    assert kept == {"error": {"code": "c" * 200 + "... [4800 more characters]", "message": "taken"}}


@pytest.mark.parametrize("code", [42, None, ["bad_request"], {"value": "x"}])
def test_an_error_code_that_is_not_text_is_left_out(code: Any) -> None:
    body = json.dumps({"error": {"code": code, "message": "taken"}})
    assert json.loads(scrub_error_body(body, [TOKEN])) == {"error": {"message": "taken"}}


def test_a_body_sent_as_json_in_a_json_string_keeps_only_its_error() -> None:
    document = {"error": {"code": "bad_request", "message": "invalid"}, "request": {"v": ECHOED_PASSWORD}}
    for body in (json.dumps(json.dumps(document)), json.dumps(json.dumps(json.dumps(document)))):
        assert json.loads(scrub_error_body(body, [ECHOED_PASSWORD])) == {
            "error": {"code": "bad_request", "message": "invalid"}
        }


def test_a_cut_body_is_scrubbed_as_text_even_when_what_was_read_parses() -> None:
    # Cut in the padding after a whole document: what was read parses as JSON, but it is not the
    # whole answer, so it is kept as text, its end dropped.
    body = json.dumps({"error": {"code": "bad_request", "message": "invalid"}, "echo": 1}) + " " * 500
    kept = scrub_error_body(body, [ECHOED_PASSWORD], complete=False)
    assert kept.endswith("...")
    assert kept.startswith('{"error": {"code": "bad_request"')


def test_a_long_body_keeps_as_much_as_can_be_kept() -> None:
    kept = scrub_error_body("x" * 100_000, [ECHOED_PASSWORD])
    assert kept.startswith("x" * redaction.MAX_ERROR_TEXT)


def test_a_value_the_read_cut_goes_through_leaves_no_part_behind() -> None:
    # scrub_error_body reads past what it keeps; a value cut there is dropped with the end, even
    # when decoding the text before it (here: encoded copies of the value) shortens the text.
    encoded = quote(ECHOED_PASSWORD, safe="")
    readable = redaction.MAX_ERROR_TEXT + redaction.MAX_ENCODED_CHARACTER * len(ECHOED_PASSWORD)
    head = " ".join([encoded] * 12) + " "
    start = ECHOED_PASSWORD[:6]
    body = head + "z" * (readable - len(head) - len(start)) + ECHOED_PASSWORD + " tail"

    kept = scrub_error_body(body, [ECHOED_PASSWORD])

    assert not holds(kept, start)
    assert not holds(kept, quote(start, safe=""))
    assert kept.startswith(REDACTED)


def test_a_cut_text_that_is_withheld_still_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    text = f"{upper_hex(json.dumps(ECHOED_PASSWORD))} and {quote(ECHOED_PASSWORD)}"
    monkeypatch.setattr(redaction, "MAX_ROUNDS", 1)
    assert scrub_text(text, [ECHOED_PASSWORD], cut_at_end=True) == WITHHELD


def test_each_round_allowed_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    # One encoding takes one round: within the rounds allowed, it is scrubbed, not withheld.
    monkeypatch.setattr(redaction, "MAX_ROUNDS", 1)
    assert scrub_text(f"x {quote(ECHOED_PASSWORD)} y", [ECHOED_PASSWORD]) == f"x {REDACTED} y"
    monkeypatch.setattr(redaction, "MAX_ROUNDS", 2)
    text = f"{upper_hex(json.dumps(ECHOED_PASSWORD))} and {quote(ECHOED_PASSWORD)}"
    assert scrub_text(text, [ECHOED_PASSWORD]).count(REDACTED) == 2


def test_a_value_outside_the_bmp_escaped_as_a_surrogate_pair_is_scrubbed() -> None:
    for escaped in (json.dumps(ASTRAL_SECRET), upper_hex(json.dumps(ASTRAL_SECRET))):
        assert "\\ud83d" in escaped.lower()  # the form under test: each character as an escape pair
        scrubbed = scrub_text(f"echo: {escaped}", [ASTRAL_SECRET])
        assert scrubbed == f'echo: "{REDACTED}"'


def test_a_cut_end_drops_an_encoded_part_of_characters_outside_the_bmp() -> None:
    # Each such character is 12 characters URL-encoded: the cut end must drop that much per character.
    encoded = quote(ALL_ASTRAL_SECRET, safe="")
    assert len(encoded) == 12 * len(ALL_ASTRAL_SECRET)
    for cut in range(1, len(encoded)):
        kept = scrub_error_body("proxy said: " + "z" * 1000 + encoded[:cut], [ALL_ASTRAL_SECRET], complete=False)
        assert set(unquote(kept).removeprefix("proxy said: ").removesuffix("...")) == {"z"}, cut


def test_an_error_field_whose_json_form_is_a_value_is_scrubbed() -> None:
    # The field holds the value's text with its escape taken (a real tab): written into the kept JSON,
    # it is escaped again, and becomes the value itself.
    body = json.dumps({"error": {"code": "bad_request", "message": "got pw-UNIT-\t-literal"}})
    kept = scrub_error_body(body, [ESCAPED_SECRET])
    assert not holds(kept, ESCAPED_SECRET)
    assert json.loads(kept)["error"]["code"] == "bad_request"


@pytest.mark.parametrize(
    "secret",
    ['pw-with-"quote"-and-\\back', "pässwörd-ünïcode-1", "line\nbreak-secret"],
)
def test_secrets_echoed_json_escaped_by_vercel_are_scrubbed(secret: str) -> None:
    body = json.dumps({"error": {"code": "bad_request", "message": f"bad value {secret}"}})
    assert secret not in body or secret.isascii()  # the body holds the escaped form
    scrubbed = scrub_text(body, [secret])
    assert json.dumps(secret)[1:-1] not in scrubbed
    assert REDACTED in scrubbed


def test_a_secret_straddling_the_cut_of_a_long_error_body_is_not_left_in_part() -> None:
    # The secret sits right where the kept part of the body ends.
    body = "x" * (2048 - 10) + DB_PASSWORD + "y" * 5000
    vercel = FakeVercel(script={"db_primary": [vercel_rejects(400, body)]})
    failed = FakeFailedRecords()
    service = make_sync_service(vercel=vercel, secrets=FakeSecrets(), failed_records=failed)

    assert sync_one(service, change(record_with_secret())) == "parked"
    (message,) = failed.messages
    text = json.dumps(message)
    for size in range(6, len(DB_PASSWORD) + 1):
        assert DB_PASSWORD[:size] not in text
    assert len(message["vercelError"]) < 2200


@respx.mock
def test_a_long_secret_cut_where_the_error_body_was_read_leaves_no_part_behind() -> None:
    # Echoed four times, the body passes the 16 KiB read limit, which cuts through the last echo;
    # the scrub then shortens the text, so that cut part would move inside what is kept.
    import secrets as random_text

    secret = random_text.token_urlsafe(3750)  # 5,000 characters
    body = json.dumps({"error": {"code": "bad_request", "message": "bad " + secret * 4}})
    respx.put(url__startswith=BASE).mock(return_value=httpx.Response(400, content=body.encode()))
    document = {"BIG": {"value": secret, "preview": secret, "production": secret}}
    failed = FakeFailedRecords()
    service = make_sync_service(
        vercel=VercelClient(BASE),
        secrets=FakeSecrets(documents={"partner/resources/icfg_1/db_primary": document}),
        failed_records=failed,
    )

    assert sync_one(service, change(record_with_secret())) == "parked"
    text = json.dumps(failed.messages)
    assert not any(secret[i : i + 12] in text for i in range(len(secret) - 12))


def test_a_cut_text_is_not_cut_again() -> None:
    text = "y" * (redaction.MAX_ERROR_TEXT + 40)
    once = truncate(text)
    assert once == "y" * redaction.MAX_ERROR_TEXT + "... [40 more characters]"
    assert truncate(once) == once
    assert truncate("z" * 300, 100) == "z" * 100 + "... [200 more characters]"
    assert truncate("z" * 100 + "... [200 more characters]", 100) == "z" * 100 + "... [200 more characters]"


def test_a_json_body_encoded_as_a_json_string_three_times_over_keeps_only_its_error() -> None:
    import json as json_module

    from vercel_sync.redaction import scrub_error_body

    body = json_module.dumps({"error": {"code": "bad_request", "message": "nope"}, "request": {"echo": "anything"}})
    for _ in range(3):
        body = json_module.dumps(body)

    assert scrub_error_body(body, ["irrelevant-value"]) == '{"error": {"code": "bad_request", "message": "nope"}}'
