"""The Import Resource and Update Resource Secrets request bodies, checked as Vercel publishes them.

Written on its own, from Vercel's Marketplace API reference (Import Resource:
https://vercel.com/docs/integrations/create-integration/marketplace-api/reference/vercel/import-resource)
and its SDK's model (``@vercel/sdk``, ``src/models/importresourceop.ts``), without importing the
sync core: the emulator is the oracle the core is tested against, so the two must not share a
model (a mistake in one would hide in both).

What is enforced, exactly as the reference states it:

* the body is a JSON object with no keys beyond the published ones (``additionalProperties: false``);
  ``productId``, ``name`` and ``status`` are required;
* ``status``: ``ready | pending | onboarding | suspended | resumed | uninstalled | error``;
  ``ownership``: ``owned | linked | sandbox``;
* ``metadata``: an object whose values are strings, numbers, booleans or arrays of those;
* ``billingPlan``: ``id``, ``type`` (``prepayment | subscription``) and ``name`` required, the
  documented optional fields typed, and extra keys allowed (the only open object);
  ``details`` / ``highlightedDetails`` items are ``{label, value?}``;
* ``notification``: ``level`` (``info | warn | error``) and ``title`` required, ``message``,
  ``href`` (a URI: it must have a scheme) optional;
* ``extras``: any object;
* ``secrets``: an array of ``{name, value, prefix?, environmentOverrides?}``, closed, with
  ``environmentOverrides`` holding only ``development``, ``preview``, ``production`` strings.

The Update Resource Secrets body is ``{secrets: [...], partial?: boolean}``, closed, with the same
secret items (``vercel-api-facts.md``).

JSON types are strict: ``"true"`` is not a boolean, ``1`` is not a string, ``true`` is not a
number, and ``null`` is not accepted for an optional field (leave the field out instead).
Nothing undocumented is invented: there are no length limits.

Each problem is reported as ``<field path>: <what is wrong>`` (``secrets.0.value: required``).
A message names fields and expectations only, never a submitted value: values may be secrets.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

RESOURCE_STATUSES = ("ready", "pending", "onboarding", "suspended", "resumed", "uninstalled", "error")
OWNERSHIPS = ("owned", "linked", "sandbox")
BILLING_PLAN_TYPES = ("prepayment", "subscription")
NOTIFICATION_LEVELS = ("info", "warn", "error")

# At most this many problems are listed in one 400 message.
MAX_REPORTED_PROBLEMS = 10

# RFC 3986: an absolute URI starts with a scheme; no whitespace anywhere.
_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:\S+")

Check = Callable[[object, str, str | int, list[str]], None]
"""``check(value, parent_path, key, problems)`` appends ``"<path>: <problem>"`` for what is wrong.

The path is joined only when there is a problem (or a container to descend into): a valid body
costs no string building.
"""


def _field_path(parent: str, key: str | int) -> str:
    return f"{parent}.{key}" if parent else str(key)


def _string(value: object, parent: str, key: str | int, problems: list[str]) -> None:
    if type(value) is not str:
        problems.append(f"{_field_path(parent, key)}: must be a string")


def _boolean(value: object, parent: str, key: str | int, problems: list[str]) -> None:
    if type(value) is not bool:
        problems.append(f"{_field_path(parent, key)}: must be a boolean")


def _uri(value: object, parent: str, key: str | int, problems: list[str]) -> None:
    if type(value) is not str:
        problems.append(f"{_field_path(parent, key)}: must be a string")
    elif not _URI.fullmatch(value):
        problems.append(f"{_field_path(parent, key)}: must be a URI with a scheme")


def _anything(value: object, parent: str, key: str | int, problems: list[str]) -> None:
    return None


def _one_of(*allowed: str) -> Check:
    allowed_set = frozenset(allowed)
    expectation = f"must be one of {', '.join(allowed)}"

    def check(value: object, parent: str, key: str | int, problems: list[str]) -> None:
        if type(value) is not str or value not in allowed_set:
            problems.append(f"{_field_path(parent, key)}: {expectation}")

    return check


_METADATA_SCALARS = (str, int, float, bool)


def _metadata_value(value: object, parent: str, key: str | int, problems: list[str]) -> None:
    if type(value) in _METADATA_SCALARS:
        return
    if type(value) is list and all(type(item) in _METADATA_SCALARS for item in value):
        return
    problems.append(f"{_field_path(parent, key)}: must be a string, number, boolean or an array of those")


def _array_of(item: Check) -> Check:
    def check(value: object, parent: str, key: str | int, problems: list[str]) -> None:
        path = _field_path(parent, key)
        if type(value) is not list:
            problems.append(f"{path}: must be an array")
            return
        for index, element in enumerate(value):
            item(element, path, index, problems)

    return check


def _map_of(item: Check) -> Check:
    """An object with any keys, each value passing ``item``."""

    def check(value: object, parent: str, key: str | int, problems: list[str]) -> None:
        path = _field_path(parent, key)
        if type(value) is not dict:
            problems.append(f"{path}: must be an object")
            return
        for name, element in value.items():
            item(element, path, name, problems)

    return check


def _object(fields: Mapping[str, Check], *, required: tuple[str, ...], extra_keys_allowed: bool = False) -> Check:
    def check(value: object, parent: str, key: str | int, problems: list[str]) -> None:
        path = _field_path(parent, key)
        if type(value) is not dict:
            problems.append(f"{path or 'body'}: must be an object")
            return
        for name in required:
            if name not in value:
                problems.append(f"{_field_path(path, name)}: required")
        for name, element in value.items():
            field_check = fields.get(name)
            if field_check is not None:
                field_check(element, path, name, problems)
            elif not extra_keys_allowed:
                problems.append(f"{_field_path(path, name)}: unknown field")

    return check


_billing_plan_detail = _object({"label": _string, "value": _string}, required=("label",))

_secret = _object(
    {
        "name": _string,
        "value": _string,
        "prefix": _string,
        "environmentOverrides": _object(
            {"development": _string, "preview": _string, "production": _string}, required=()
        ),
    },
    required=("name", "value"),
)

_check_body = _object(
    {
        "ownership": _one_of(*OWNERSHIPS),
        "productId": _string,
        "name": _string,
        "status": _one_of(*RESOURCE_STATUSES),
        "metadata": _map_of(_metadata_value),
        "billingPlan": _object(
            {
                "id": _string,
                "type": _one_of(*BILLING_PLAN_TYPES),
                "name": _string,
                "description": _string,
                "paymentMethodRequired": _boolean,
                "cost": _string,
                "details": _array_of(_billing_plan_detail),
                "highlightedDetails": _array_of(_billing_plan_detail),
                "effectiveDate": _string,
            },
            required=("id", "type", "name"),
            extra_keys_allowed=True,
        ),
        "notification": _object(
            {"level": _one_of(*NOTIFICATION_LEVELS), "title": _string, "message": _string, "href": _uri},
            required=("level", "title"),
        ),
        "extras": _map_of(_anything),
        "secrets": _array_of(_secret),
    },
    required=("productId", "name", "status"),
)

# Update Resource Secrets (``PUT .../resources/{resourceId}/secrets``): the same secret items.
_check_secrets_update = _object({"secrets": _array_of(_secret), "partial": _boolean}, required=("secrets",))


def import_body_problems(document: object) -> list[str]:
    """Every way ``document`` (parsed JSON) breaks the Import Resource schema; empty when valid."""
    problems: list[str] = []
    _check_body(document, "", "", problems)
    return problems


def secrets_update_problems(document: object) -> list[str]:
    """Every way ``document`` breaks the Update Resource Secrets body ``{secrets, partial?}``."""
    problems: list[str] = []
    _check_secrets_update(document, "", "", problems)
    return problems


def describe_problems(problems: list[str]) -> str:
    """One 400 message: the first problems, then how many more there were."""
    shown = problems[:MAX_REPORTED_PROBLEMS]
    more = len(problems) - len(shown)
    suffix = f"; and {more} more" if more else ""
    return f"Invalid request body: {'; '.join(shown)}{suffix}"
