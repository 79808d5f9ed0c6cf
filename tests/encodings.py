"""How a server (Vercel, or a proxy in front of it) may echo a request with other escaping than
ours, and the forms a secret value then takes: the scrubbing tests' encodings, independent of
``vercel_sync.redaction``."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote, quote_plus

from tests.leak_scan import register_secret

# Every character an encoding below writes another way: "/", "&", "+", a space, non-ASCII.
ECHOED_PASSWORD = "pw/échö&UNIT+7f3a 9c"
register_secret(ECHOED_PASSWORD, label="tests.encodings' secret value")


def upper_hex(text: str) -> str:
    return re.sub(r"\\u([0-9a-f]{4})", lambda match: "\\u" + match.group(1).upper(), text)


# How a server re-encodes the JSON request it echoes: (the request as it echoes it, a string value
# as it appears in that echo). The second is what must never be found in a failed-records message.
Encoding = tuple[Callable[[Any], str], Callable[[str], str]]
ENCODINGS: dict[str, Encoding] = {
    # PHP's json_encode: "/" as "\/".
    "escaped_slashes": (
        lambda request: json.dumps(request).replace("/", "\\/"),
        lambda value: json.dumps(value)[1:-1].replace("/", "\\/"),
    ),
    # Go's encoding/json: "&", "<", ">" as \u0026..., UTF-8 kept.
    "html_safe_json": (
        lambda request: json.dumps(request, ensure_ascii=False).replace("&", "\\u0026"),
        lambda value: json.dumps(value, ensure_ascii=False)[1:-1].replace("&", "\\u0026"),
    ),
    # Escapes with uppercase hex digits.
    "uppercase_unicode_escapes": (
        lambda request: upper_hex(json.dumps(request)),
        lambda value: upper_hex(json.dumps(value)[1:-1]),
    ),
    # The request body as one JSON string.
    "json_string_of_the_body": (
        lambda request: json.dumps(json.dumps(request)),
        lambda value: json.dumps(json.dumps(value)[1:-1])[1:-1],
    ),
    "url_encoded": (
        lambda request: quote(json.dumps(request, ensure_ascii=False), safe=""),
        lambda value: quote(value, safe=""),
    ),
    "form_encoded": (
        lambda request: quote_plus(json.dumps(request, ensure_ascii=False), safe=""),
        lambda value: quote_plus(value, safe=""),
    ),
    "html_escaped": (
        lambda request: html.escape(json.dumps(request, ensure_ascii=False)),
        lambda value: html.escape(value),
    ),
}


def forms(value: str) -> set[str]:
    """The value as each encoding writes it, and as it is."""
    return {value, *(form(value) for _, form in ENCODINGS.values())}


# Where the echo stands in the body: a Vercel-style JSON error body (next to the error, or in its
# message), or a proxy's HTML page.
def json_body_with_echo_beside(echo: str) -> str:
    try:
        json.loads(echo)
        value = echo  # a JSON echo as it is, else as a string
    except ValueError:
        value = json.dumps(echo, ensure_ascii=False)
    return '{"error":{"code":"bad_request","message":"invalid request"},"request":' + value + "}"


def json_body_with_echo_in_message(echo: str) -> str:
    return json.dumps({"error": {"code": "bad_request", "message": "invalid request: " + echo}}, ensure_ascii=False)


def proxy_page_with_echo(echo: str) -> str:
    return f"<html><head><title>400 Bad Request</title></head><body><h1>Bad Request</h1><pre>{echo}</pre></body></html>"


BODIES: dict[str, Callable[[str], str]] = {
    "json_echo_beside_the_error": json_body_with_echo_beside,
    "json_echo_in_the_message": json_body_with_echo_in_message,
    "proxy_html_page": proxy_page_with_echo,
}


def strings(document: Any) -> Iterator[str]:
    """Every string of a JSON document, keys included (the forms hold backslashes: a serialized
    document would escape them again), and of any document such a string holds as JSON."""
    if isinstance(document, str):
        yield document
        try:
            inner = json.loads(document)
        except ValueError:
            return
        if inner != document:
            yield from strings(inner)
    elif isinstance(document, dict):
        for key, value in document.items():
            yield key
            yield from strings(value)
    elif isinstance(document, list):
        for value in document:
            yield from strings(value)
