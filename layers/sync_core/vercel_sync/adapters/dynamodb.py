"""DynamoDB's conditional writes, one way for every adapter: the write, or ``ConditionFailed`` with
the item it failed against (``ReturnValuesOnConditionCheckFailure=ALL_OLD``: no read to learn it)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

CONDITIONAL_CHECK_FAILED = "ConditionalCheckFailedException"


class ConditionFailed(Exception):
    def __init__(self, item: dict[str, Any] | None = None) -> None:
        super().__init__("conditional check failed")
        self.item = item  # the item the condition failed against, when DynamoDB returned it


def write(client: Any, operation: str, failure: Callable[[str], Exception] | None = None, **request: Any) -> Any:
    """``client.<operation>(**request)``. A failed condition raises :class:`ConditionFailed`; any
    other AWS error ``failure(its code or type)`` (never its message), or itself without ``failure``."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return getattr(client, operation)(**request)
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code") or "")
        if code == CONDITIONAL_CHECK_FAILED:
            item = exc.response.get("Item")
            raise ConditionFailed(item if isinstance(item, dict) and item else None) from None
        if failure is None:
            raise
        raise failure(code) from None
    except BotoCoreError as exc:
        if failure is None:
            raise
        raise failure(type(exc).__name__) from None


def number(value: float) -> dict[str, str]:
    """A DynamoDB number: an int as it is, a float to the microsecond."""
    return {"N": str(value) if isinstance(value, int) else f"{value:.6f}"}
