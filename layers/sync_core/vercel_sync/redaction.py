"""Keeping token and secret values out of everything we emit: text is scrubbed in each decoded view
of it (JSON escapes, percent-encoding, HTML references, hex and base64 bytes); docs/architecture.md,
"Scrubbing", has the rules."""

from __future__ import annotations

import base64
import html
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any
from urllib.parse import unquote, unquote_plus

REDACTED = "[redacted]"
WITHHELD = "[withheld: it held a secret value in a form that could not be taken out]"
# Very short values would redact ordinary words; nobody's secret is this short.
MIN_SECRET_LENGTH = 4
MAX_ERROR_TEXT = 2048
DECODING_DEPTH = 3  # every order of decoders, this many layers deep (a JSON string, URL-encoded, is three)
MAX_ROUNDS = 4  # a view a value shows in is scrubbed and looked at again, this often
MAX_DEEP_LAYERS = 16  # then all the decoders in turn, while they change the text, this often
# The most characters one character takes encoded (``\uD83D\uDE00``, ``%F0%9F%98%80``): how much of a cut
# text may hold part of a value.
MAX_ENCODED_CHARACTER = 12
MAX_JSON_STRING_LAYERS = 3  # a JSON body that is itself a JSON string (double-encoded) is read this deep
MAX_ERROR_CODE = 200

_JSON_ESCAPE = re.compile(r'\\(?:u([0-9a-fA-F]{4})|(["\\/bfnrt]))')
_JSON_SHORT_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}


def _json_unescape(text: str) -> str:
    def one(match: re.Match[str]) -> str:
        code = match.group(1)
        return chr(int(code, 16)) if code is not None else _JSON_SHORT_ESCAPES[match.group(2)]

    decoded = _JSON_ESCAPE.sub(one, text)
    # Escaped surrogate pairs become one character (a lone surrogate stays as it is).
    return decoded.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "surrogatepass")


# Each decoder, and the character without which it changes nothing (most text has none: its only view).
_DECODERS: tuple[tuple[str, Callable[[str], str]], ...] = (
    ("\\", _json_unescape),
    ("%", lambda text: unquote(text, errors="replace")),
    ("+", lambda text: unquote_plus(text, errors="replace")),
    ("&", html.unescape),
)


def _views(text: str) -> Iterator[str]:
    """The text, then each distinct decoding of it: every order of decoders up to ``DECODING_DEPTH`` layers,
    fewest first; then every decoder in turn while that changes the text (a value encoded many times over)."""
    seen = {text}
    layer = [text]
    yield text
    for _ in range(DECODING_DEPTH):
        following = []
        for view in layer:
            for trigger, decode in _DECODERS:
                if trigger in view and (decoded := decode(view)) not in seen:
                    seen.add(decoded)
                    following.append(decoded)
                    yield decoded
        layer = following
    for _ in range(MAX_DEEP_LAYERS):
        before = text
        for trigger, decode in _DECODERS:
            if trigger in text and (text := decode(text)) not in seen:
                seen.add(text)
                yield text
        if text == before:
            return


def _values(secret_values: Iterable[str]) -> tuple[list[str], list[str]]:
    """(the values, longest first; those plus their JSON-escaped and byte forms, longest first)."""
    values = sorted({value for value in secret_values if len(value) >= MIN_SECRET_LENGTH}, key=len, reverse=True)
    forms: set[str] = set(values)
    for value in values:
        # The forms a JSON document carries, replaced where they stand; any other encoding is found by decoding.
        forms.add(json.dumps(value)[1:-1])
        forms.add(json.dumps(value, ensure_ascii=False)[1:-1])
        forms.update(_byte_forms(value))
    return values, sorted(forms, key=len, reverse=True)


_URL_SAFE = str.maketrans("+/", "-_")


def _byte_forms(value: str) -> set[str]:
    """The value's UTF-8 bytes in hex (either case) and base64 (both alphabets) inside a longer text: for base64,
    at each offset in a 3-byte group, the characters that hold its bits alone (not its edges')."""
    data = value.encode("utf-8", "surrogatepass")
    forms = {data.hex(), data.hex().upper()}
    for offset in range(3):
        core = base64.b64encode(bytes(offset) + data)[(offset * 8 + 5) // 6 : (offset + len(data)) * 8 // 6].decode()
        forms.update((core, core.translate(_URL_SAFE)))
    return forms


def _scrub_one(text: str, forms: list[str]) -> str:
    for _ in range(MAX_ROUNDS + 1):
        for form in forms:
            text = text.replace(form, REDACTED)
        leaking = next((view for view in _views(text) if any(form in view for form in forms)), None)
        if leaking is None:
            return text
        text = leaking  # the decoded text the value shows in: scrubbed on the next round
    return WITHHELD


def scrub_text(text: str, secret_values: Iterable[str], *, cut_at_end: bool = False) -> str:
    """Replace every secret value in ``text`` (and in each decoded view of it) with a marker. ``cut_at_end``: the
    text was cut where it was read, so the last characters that could hold part of a value are dropped too."""
    values, forms = _values(secret_values)
    if not values:
        return text
    text = _scrub_one(text, forms)
    if cut_at_end and text != WITHHELD:
        # Decoding only shortens text: a part at the end is as near the end of any view of it.
        text = text[: max(0, len(text) - MAX_ENCODED_CHARACTER * len(values[0]))] + "..."
    return text


def scrub(document: Any, secret_values: Iterable[str]) -> Any:
    """Scrub every string in a JSON-like document (keys included), as :func:`scrub_text` does."""
    values, forms = _values(secret_values)
    if not values:
        return document
    return _scrub(document, forms)


def _scrub(document: Any, forms: list[str]) -> Any:
    if isinstance(document, str):
        return _scrub_one(document, forms)
    if isinstance(document, Mapping):
        return {_scrub(k, forms): _scrub(v, forms) for k, v in document.items()}
    if isinstance(document, list | tuple):
        return [_scrub(v, forms) for v in document]
    return document


def scrub_error_body(body: str, secret_values: Iterable[str], *, complete: bool = True) -> str:
    """What may be kept of an error body, scrubbed and cut: of a JSON body only ``error.code`` and ``error.message``
    (the rest may echo the request); anything else (or a body cut where it was read) scrubbed as text."""
    values, _forms = _values(secret_values)
    document = _json_document(body) if complete else None
    if isinstance(document, str):
        body = document  # a JSON string of text: scrubbed as text below
    elif document is not None:
        error = document.get("error") if isinstance(document, dict) else None
        kept = {
            name: error[name]
            for name in ("code", "message")
            if isinstance(error, dict) and isinstance(error.get(name), str)
        }
        if not kept:
            return "[a JSON body without error.code or error.message: not kept]"
        kept = {name: scrub_text(text, values) for name, text in kept.items()}
        if "code" in kept:
            kept["code"] = truncate(kept["code"], MAX_ERROR_CODE)
        return truncate(scrub_text(json.dumps({"error": kept}, ensure_ascii=False), values))
    # No more is read than is kept, plus enough that a value the cut goes through is whole.
    readable = MAX_ERROR_TEXT + MAX_ENCODED_CHARACTER * (len(values[0]) if values else 0)
    if len(body) > readable:
        body, complete = body[:readable], False
    return truncate(scrub_text(body, values, cut_at_end=not complete))


def _json_document(body: str) -> Any:
    """The body's JSON document (a JSON string holding JSON is read again), or None if not JSON."""
    try:
        document: Any = json.loads(body)
    except (ValueError, RecursionError):
        return None
    for _ in range(MAX_JSON_STRING_LAYERS):
        if not isinstance(document, str):
            break
        try:
            document = json.loads(document)
        except (ValueError, RecursionError):
            break  # a JSON string of text
    return document


_CUT_MARK = re.compile(r"\.\.\. \[\d+ more characters\]")


def truncate(text: str, limit: int = MAX_ERROR_TEXT) -> str:
    """Cap text we did not write (error bodies) before it is logged or queued; text it already cut
    is kept as it is (a message is cut where it is logged and again where it is queued)."""
    if len(text) <= limit or _CUT_MARK.fullmatch(text, limit):
        return text
    return text[:limit] + f"... [{len(text) - limit} more characters]"
