"""Partner record -> Import Resource body, each step raising :class:`InvalidRecordError` with a reason
that names fields and rules, never values (they may be secret). Pure: no AWS, no HTTP, no clock."""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ValidationError

from vercel_sync.errors import InvalidRecordError
from vercel_sync.mapping import NotAResource, NotAResourceError, PartnerMapping, default_mapping
from vercel_sync.partner_schema import PartnerRecord
from vercel_sync.payload import ImportResourcePayload, SecretsUpdatePayload

ENVIRONMENTS = ("development", "preview", "production")


def _validated[M: BaseModel](
    model: type[M], body: Any, what: str, *, limit: int = 5, context: dict[str, Any] | None = None
) -> M:
    """``model`` from ``body``, or an invalid record whose reason never echoes the input values."""
    try:
        return model.model_validate(body, context=context)
    except ValidationError as exc:
        errors = exc.errors(include_input=False, include_url=False, include_context=False)
        parts = []
        for error in errors[:limit]:
            location = ".".join(str(p) for p in error["loc"]) or "record"
            parts.append(f"{location}: {error['msg']}")
        if len(errors) > limit:
            parts.append(f"and {len(errors) - limit} more")
        raise InvalidRecordError(f"invalid {what}: " + "; ".join(parts)) from None


# Nesting deeper than this is refused as invalid: Vercel's fields are shallow, and the payload
# model (and json) would fail deeper down, past Python's recursion limit.
MAX_NESTING = 64


def json_safe(value: Any, _depth: int = 0) -> Any:
    """DynamoDB's native Python types -> JSON types (Decimal -> int or float, set -> sorted list); refuses
    what JSON cannot carry (a non-finite number) and nesting deeper than ``MAX_NESTING``."""
    kind = type(value)
    if kind is str or kind is bool or kind is int or value is None:
        return value  # the common case first: this runs for every value of every record
    if _depth > MAX_NESTING:
        raise InvalidRecordError(f"the record is nested deeper than {MAX_NESTING} levels")
    if kind is dict:
        return {str(k): json_safe(v, _depth + 1) for k, v in value.items()}
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise InvalidRecordError("a number attribute is not finite")
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidRecordError("a number is not finite (NaN or infinity)")
    if isinstance(value, Mapping):
        return {str(k): json_safe(v, _depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v, _depth + 1) for v in value]
    if isinstance(value, set | frozenset):
        return sorted((json_safe(v, _depth + 1) for v in value), key=_set_order)
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(bytes(value)).decode("ascii")
    return value


def _set_order(item: Any) -> tuple[int, Any]:
    """A DynamoDB set holds numbers, strings or binary (base64 text by now): numbers by value, the rest by text."""
    if isinstance(item, int | float) and not isinstance(item, bool):
        return (0, item)
    return (1, str(item))


def unwrap_message_body(body: str) -> dict[str, Any]:
    """An SQS message body -> the partner record mapping, unwrapping SNS and EventBridge."""
    document = _load_json_object(body, "message body")
    # SNS -> SQS without raw message delivery: the record is the JSON string in "Message".
    if document.get("Type") == "Notification" and isinstance(document.get("Message"), str):
        return _load_json_object(document["Message"], "SNS Message")
    # EventBridge -> SQS: the record is the event's "detail" (an object).
    if "detail-type" in document and "detail" in document:
        detail = document["detail"]
        if isinstance(detail, str):
            return _load_json_object(detail, "EventBridge detail")
        if not isinstance(detail, dict):
            raise InvalidRecordError("EventBridge detail is not a JSON object")
        return detail
    return document


def _load_json_object(text: str, what: str) -> dict[str, Any]:
    def refuse_constant(name: str) -> Any:
        # NaN and Infinity are not JSON (Python's parser takes them; Vercel would refuse them).
        raise InvalidRecordError(f"{what} is not valid JSON: {name} is not a JSON number")

    try:
        document = json.loads(text, parse_constant=refuse_constant)
    except (ValueError, TypeError):  # JSONDecodeError is a ValueError
        raise InvalidRecordError(f"{what} is not valid JSON") from None
    except RecursionError:
        raise InvalidRecordError(f"{what} is nested too deeply to read") from None
    if not isinstance(document, dict):
        raise InvalidRecordError(f"{what} is not a JSON object")
    return document


def parse_partner_record(
    item: Mapping[str, Any], *, json_ready: bool = False, removed: bool = False, mapping: PartnerMapping | None = None
) -> PartnerRecord:
    """The partner record ``mapping`` (by default the default mapping) makes of ``item``, validated; raises
    :class:`NotAResourceError` for an item the mapping leaves out. ``json_ready``: the item has passed
    ``json_safe``'s checks already (the stream decoder's output).

    A removal's status is not checked (an unknown word must not keep a deleted resource alive at Vercel)."""
    mapping = mapping or default_mapping()
    record = mapping.apply(item if json_ready else json_safe(item), removed=removed)
    if isinstance(record, NotAResource):
        raise NotAResourceError("the item is not a resource by the partner mapping")
    return _validated(PartnerRecord, record, "partner record", context={"status_table": mapping.status_table})


def needs_secrets(record: PartnerRecord, *, removed: bool) -> bool:
    """A removed resource is imported as uninstalled without secrets (the secret may be gone too)."""
    return record.secrets_arn is not None and not removed and not record.deleted


def secrets_from_document(document: Any, prefix: str | None) -> list[dict[str, Any]]:
    """A resource secret's JSON object (name -> value, or -> ``{"value", "development"?, "preview"?,
    "production"?}`` for ``environmentOverrides``) -> the payload's ``secrets`` list."""
    if not isinstance(document, Mapping):
        raise InvalidRecordError("the resource secret is not a JSON object of name -> value")
    secrets: list[dict[str, Any]] = []
    for name, spec in document.items():
        secret: dict[str, Any] = {"name": name}
        if isinstance(spec, str):
            secret["value"] = spec
        elif isinstance(spec, Mapping):
            unknown = set(spec) - {"value", *ENVIRONMENTS}
            if unknown:
                raise InvalidRecordError(
                    f"resource secret {name!r}: unknown keys {sorted(unknown)}; "
                    f"allowed: value, {', '.join(ENVIRONMENTS)}"
                )
            if not isinstance(spec.get("value"), str):
                raise InvalidRecordError(f"resource secret {name!r}: 'value' must be a string")
            secret["value"] = spec["value"]
            overrides = {env: spec[env] for env in ENVIRONMENTS if env in spec}
            if any(not isinstance(v, str) for v in overrides.values()):
                raise InvalidRecordError(f"resource secret {name!r}: environment values must be strings")
            if overrides:
                secret["environmentOverrides"] = overrides
        else:
            raise InvalidRecordError(f"resource secret {name!r}: value must be a string or an object")
        if prefix is not None:
            secret["prefix"] = prefix
        secrets.append(secret)
    return secrets


def build_import_body(
    record: PartnerRecord, *, removed: bool = False, secret_document: Any = None
) -> tuple[ImportResourcePayload, dict[str, Any]]:
    """The validated Import Resource body for ``record``, and its JSON (``payload.to_body()``, dumped once).
    ``removed`` (a DynamoDB REMOVE of the old image) imports it ``uninstalled``, as ``deleted: true`` does."""
    status = "uninstalled" if removed else record.vercel_status
    body: dict[str, Any] = {"productId": record.product_id, "name": record.name, "status": status}
    for key, value in (
        ("ownership", record.ownership),
        ("metadata", record.metadata),
        ("billingPlan", record.billing_plan),
        ("notification", record.notification),
        ("extras", record.extras),
    ):
        if value is not None:
            body[key] = value
    if needs_secrets(record, removed=removed):
        if secret_document is None:
            raise InvalidRecordError("the record names secretsArn but no secret document was read")
        body["secrets"] = secrets_from_document(secret_document, record.secrets_prefix)
    payload = _validated(ImportResourcePayload, body, "import payload")
    json_body = payload.to_body()
    _require_unicode_text(json_body)
    return payload, json_body


def build_secrets_update(secret_document: Any, prefix: str | None) -> SecretsUpdatePayload:
    """The validated Update Resource Secrets body: the ``secrets`` an import naming the secret (with
    ``secretsPrefix`` = ``prefix``) would carry; not partial, as on import."""
    secrets = secrets_from_document(secret_document, prefix)
    payload = _validated(SecretsUpdatePayload, {"secrets": secrets}, "secrets payload")
    _require_unicode_text(payload.to_body())
    return payload


def _require_unicode_text(body: Any) -> None:
    """Refuse text JSON cannot carry as UTF-8 (a lone surrogate, e.g. from ``"\\ud800"`` in a
    message): it passes validation but would fail when the call is sent, on every retry."""
    if not _all_unicode(body):
        _find_non_unicode_text(body)


def _all_unicode(value: Any) -> bool:
    """The quick walk (no path kept): ASCII text needs no encoding; items are looked at in place
    (a call each would double the cost)."""
    kind = type(value)
    if kind is dict:
        return _all_items_unicode(value) and _all_items_unicode(value.values())  # the keys, then the values
    if kind is list:
        return _all_items_unicode(value)
    if kind is str:
        return value.isascii() or _encodes(value)
    return not isinstance(value, str | Mapping | list)  # a subclass: the thorough walk tells


def _all_items_unicode(items: Iterable[Any]) -> bool:
    for item in items:
        item_kind = type(item)
        if item_kind is str:
            if not (item.isascii() or _encodes(item)):
                return False
        elif item_kind not in _SCALARS and not _all_unicode(item):
            return False
    return True


_SCALARS = frozenset({int, float, bool, type(None)})


def _encodes(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _find_non_unicode_text(body: Any, where: str = "") -> None:
    """The thorough walk, raising with the path of the text that cannot be encoded."""
    if isinstance(body, str):
        if not _encodes(body):
            raise InvalidRecordError(f"{where or 'a value'}: text is not valid Unicode (a lone surrogate)")
    elif isinstance(body, Mapping):
        for key, value in body.items():
            _find_non_unicode_text(key, where)
            _find_non_unicode_text(value, f"{where}.{key}" if where else str(key))
    elif isinstance(body, list):
        for index, value in enumerate(body):
            _find_non_unicode_text(value, f"{where}.{index}")
