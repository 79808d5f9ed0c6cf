"""The mapping's ``resources`` conditions as a Lambda event filter pattern for the DynamoDB stream trigger
(FilterCriteria): items that are not resources then never invoke the stream function. Pure.

The stream carries typed attributes (``{"S": "x"}``, a map as ``{"M": {...}}``); a record passes when
its ``NewImage`` or its ``OldImage`` (a ``REMOVE`` has only the old one) meets the conditions. A
condition the filter cannot say (``present``, a path into a list, a number, a value that is not text or a
boolean) is left out of it: the filter lets more through, and the engine still checks every item."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from vercel_sync.mapping.engine import PartnerMapping
from vercel_sync.mapping.model import Condition


def stream_filter_pattern(mapping: PartnerMapping) -> tuple[dict[str, Any] | None, list[str]]:
    """The filter pattern (None: nothing to filter on), and the conditions left out of it, described."""
    image: dict[str, Any] = {}
    left_out: list[str] = []
    for index, condition in enumerate(mapping.document.resources):
        rule, why = _rule(condition)
        path = condition.attribute.split(".")
        if rule is not None and any(segment.isdigit() for segment in path):
            rule, why = None, "a filter cannot reach into a list"
        if rule is not None and not _merge(image, path, rule):
            rule, why = None, "the filter tests this attribute already"
        if rule is None:
            left_out.append(f"resources.{index} ({condition.attribute}): {why}")
    if not image:
        return None, left_out
    return {"$or": [{"dynamodb": {"NewImage": image}}, {"dynamodb": {"OldImage": image}}]}, left_out


def _rule(condition: Condition) -> tuple[dict[str, Any] | None, str]:
    """The typed-attribute rule of one condition (``{"S": [...]}``, ``{"BOOL": [...]}``), or why there is none."""
    if condition.starts_with is not None:
        return {"S": [{"prefix": condition.starts_with}]}, ""
    if "present" in condition.model_fields_set:
        return None, "presence needs the attribute's type, which the mapping does not say"
    value = condition.equals
    if isinstance(value, bool):
        return {"BOOL": [value]}, ""
    if isinstance(value, str):
        return {"S": [value]}, ""
    if isinstance(value, int | float | Decimal):
        # A stream image holds a number as text ({"N": "2"}) and a numeric rule matches JSON numbers only:
        # it would drop the very items it should let through.
        return None, "a stream carries numbers as text, which a filter cannot compare by value"
    return None, "a filter compares text and booleans only"


def _merge(image: dict[str, Any], path: list[str], rule: dict[str, Any]) -> bool:
    """Puts ``rule`` at ``path`` in ``image`` (each map level as ``{"M": {...}}``); False where it cannot."""
    head, rest = path[0], path[1:]
    if not rest:
        if head in image:
            return False
        image[head] = rule
        return True
    nested = image.setdefault(head, {"M": {}})
    return "M" in nested and _merge(nested["M"], rest, rule)
