"""Keeping token and secret values out of everything we emit.

The pipeline knows which values are secret (the token it read, the resource secret values
it read) and scrubs them from any text or document that leaves the process: error bodies
from Vercel, failed-records messages, log fields.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

REDACTED = "[redacted]"
# Very short values would redact ordinary words; nobody's secret is this short.
MIN_SECRET_LENGTH = 4
MAX_ERROR_TEXT = 2048


def _usable(secret_values: Iterable[str]) -> list[str]:
    forms: set[str] = set()
    for value in secret_values:
        if len(value) < MIN_SECRET_LENGTH:
            continue
        forms.add(value)
        # A JSON error body may echo the value escaped (quotes, backslashes, non-ASCII, control
        # characters), and the text we scrub is that body, undecoded.
        forms.add(json.dumps(value)[1:-1])
        forms.add(json.dumps(value, ensure_ascii=False)[1:-1])
    # Longest first, so a secret that contains another is removed whole.
    return sorted(forms, key=len, reverse=True)


def scrub_text(text: str, secret_values: Iterable[str], *, cut_at_end: bool = False) -> str:
    """Replace every secret value in ``text`` with a marker.

    ``cut_at_end``: the text was cut where it was read, so a secret may stand at its end in part,
    where no scrub can recognise it. After the whole ones are replaced, the last characters that
    could hold such a part (one fewer than the longest secret) are dropped.
    """
    values = _usable(secret_values)
    for value in values:
        text = text.replace(value, REDACTED)
    if cut_at_end and values:
        text = text[: max(0, len(text) - (len(values[0]) - 1))] + "..."
    return text


def scrub(document: Any, secret_values: Iterable[str]) -> Any:
    """Scrub every string in a JSON-like document (keys included)."""
    values = _usable(secret_values)
    if not values:
        return document
    return _scrub(document, values)


def _scrub(document: Any, values: list[str]) -> Any:
    if isinstance(document, str):
        for value in values:
            document = document.replace(value, REDACTED)
        return document
    if isinstance(document, Mapping):
        return {_scrub(k, values): _scrub(v, values) for k, v in document.items()}
    if isinstance(document, list | tuple):
        return [_scrub(v, values) for v in document]
    return document


def truncate(text: str, limit: int = MAX_ERROR_TEXT) -> str:
    """Cap text we did not write (error bodies) before it is logged or queued."""
    if len(text) <= limit:
        return text
    return text[:limit] + f"... [{len(text) - limit} more characters]"
