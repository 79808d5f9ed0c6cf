"""Percent-encoding of ids placed in URL paths.

An id is one path segment whatever it holds: ``/``, ``?``, ``#``, ``%``, spaces and non-ASCII
are encoded, so no id can change which resource a call addresses. The dot segments ``.`` and
``..`` are refused (the partner record model rejects them first): URL normalisation in a proxy
would resolve them away even when encoded.
"""

from __future__ import annotations

from urllib.parse import quote, unquote

MAX_ID_LENGTH = 256


def encode_path_segment(value: str) -> str:
    """Encode one id as a single, opaque path segment."""
    if not value:
        raise ValueError("a path id must not be empty")
    if value in {".", ".."}:
        raise ValueError("a path id must not be '.' or '..'")
    return quote(value, safe="")


def decode_path_segment(segment: str) -> str:
    """The inverse of :func:`encode_path_segment` (used by tests and the emulator)."""
    return unquote(segment)
