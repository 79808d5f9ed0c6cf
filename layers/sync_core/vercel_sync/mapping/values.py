"""Reading values out of a partner item: attribute paths into maps and lists, conditions, templates
and metadata types. Pure; the item is JSON-safe already (``transform.json_safe``)."""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Final

from vercel_sync.errors import InvalidRecordError
from vercel_sync.mapping.model import PLACEHOLDER, Condition
from vercel_sync.redaction import truncate


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Final = _Missing()
_LARGEST_DOUBLE: Final = Decimal(sys.float_info.max)


def resolve(item: Any, path: str) -> Any:
    """The value at a dotted ``path`` (``attrs.region``, ``plans.0.id``), or ``MISSING``."""
    value = item
    for segment in path.split("."):
        if isinstance(value, Mapping):
            value = value.get(segment, MISSING)
        elif isinstance(value, list) and segment.isdigit() and int(segment) < len(value):
            value = value[int(segment)]
        else:
            return MISSING
        if value is MISSING:
            return MISSING
    return value


def same(value: Any, expected: Any) -> bool:
    """Equality that keeps booleans apart from numbers (``true`` is not ``1``) and compares numbers by value."""
    if isinstance(value, bool) or isinstance(expected, bool):
        return type(value) is type(expected) and value == expected
    numbers = (int, float, Decimal)
    if isinstance(value, numbers) and isinstance(expected, numbers):
        return Decimal(str(value)) == Decimal(str(expected))
    return bool(value == expected)


def holds(condition: Condition, item: Any) -> bool:
    value = resolve(item, condition.attribute)
    if "present" in condition.model_fields_set:
        return (value is not MISSING and value is not None) == condition.present
    if condition.starts_with is not None:
        return isinstance(value, str) and value.startswith(condition.starts_with)
    return value is not MISSING and same(value, condition.equals)


def render(template: str, item: Any, field: str) -> str:
    """``template`` with each ``{path}`` replaced by that attribute's text (a string or a number)."""

    def text(match: re.Match[str]) -> str:
        path = match.group(1)
        value = resolve(item, path)
        if value is MISSING or value is None:
            raise InvalidRecordError(f"invalid partner record: {field}: the template's attribute {path!r} is missing")
        if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
            raise InvalidRecordError(f"invalid partner record: {field}: the template's attribute {path!r} is not text")
        return str(value)

    return PLACEHOLDER.sub(text, template)


# An unknown word or plan id is named in the reason, which is logged whole: enough of it to recognise.
MAX_QUOTED = 100


def quoted(value: Any) -> str:
    """``value`` as a reason names it: its repr, cut at :data:`MAX_QUOTED` characters."""
    return truncate(repr(value[: MAX_QUOTED + 1] if isinstance(value, str) else value), MAX_QUOTED)


def typed(value: Any, kind: str | None, key: str) -> Any:
    """``value`` as metadata type ``kind`` (None: as it is); an invalid record when it cannot be."""
    if kind is None:
        return value
    if kind == "string" and isinstance(value, str | int | float | Decimal | bool):
        return ("true" if value else "false") if isinstance(value, bool) else str(value)
    if kind == "number" and not isinstance(value, bool) and isinstance(value, str | int | float | Decimal):
        try:
            number = Decimal(str(value).strip())
        except ArithmeticError:  # not a number, or beyond what Decimal holds (Overflow)
            number = None
        # Vercel reads a JSON number as a double: beyond one it is none (int() of 1e999999999 takes the memory).
        if number is not None and number.is_finite() and number.copy_abs() <= _LARGEST_DOUBLE:
            return int(number) if number == number.to_integral_value() else float(number)
    if kind == "boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
    raise InvalidRecordError(f"invalid partner record: metadata.{key}: not a {kind}")
