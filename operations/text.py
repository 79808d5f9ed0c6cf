"""Ids and reasons as they can be printed: control characters escaped, long ones cut."""

from __future__ import annotations

MAX_PRINTED = 200


def safe(text: object, limit: int = MAX_PRINTED) -> str:
    value = "-" if text is None else str(text)
    printable = "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in value)
    printable = printable.encode("utf-8", "backslashreplace").decode("utf-8")
    return printable if len(printable) <= limit else printable[: limit - 1] + "…"
