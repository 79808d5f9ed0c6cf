"""Ids as single, opaque URL path segments: ``/ ? # %``, spaces and non-ASCII encoded; ``.`` and ``..``
refused (a proxy would resolve them away even encoded)."""

from __future__ import annotations

from urllib.parse import quote, unquote

MAX_ID_LENGTH = 256
# Path navigation to URL normalisers and proxies, never an id.
DOT_SEGMENTS = frozenset({".", ".."})


def encode_path_segment(value: str) -> str:
    """Encode one id as a single, opaque path segment; ``ValueError`` for an id that cannot be one."""
    if not value:
        raise ValueError("a path id must not be empty")
    if len(value) > MAX_ID_LENGTH:
        raise ValueError(f"a path id must be at most {MAX_ID_LENGTH} characters")
    if value in DOT_SEGMENTS:
        raise ValueError("a path id must not be '.' or '..'")
    return quote(value, safe="")


def decode_path_segment(segment: str) -> str:
    """The inverse of :func:`encode_path_segment` (used by tests and the emulator)."""
    return unquote(segment)
