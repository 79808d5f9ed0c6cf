"""The partner table, scanned in parallel segments a page at a time (the backfill's source)."""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping
from typing import Any

from vercel_sync.adapters.aws_clients import PATIENT_AWS_TIMEOUTS, LazyClient
from vercel_sync.backfill.checkpoints import Key
from vercel_sync.backfill.engine import Page, ScannedItem


def key_to_json(key: Mapping[str, Mapping[str, Any]]) -> Key:
    """A low-level DynamoDB key as JSON-safe data (a binary key part as base64)."""
    return _convert_binary(key, lambda raw: base64.b64encode(bytes(raw)).decode("ascii"))


def key_from_json(key: Mapping[str, Mapping[str, Any]]) -> Key:
    return _convert_binary(key, base64.b64decode)


def _convert_binary(key: Mapping[str, Mapping[str, Any]], convert: Callable[[Any], Any]) -> Key:
    return {
        name: {kind: convert(raw) if kind == "B" else raw for kind, raw in value.items()} for name, value in key.items()
    }


def _plain(value: Any) -> Any:
    """boto3's deserialized values with ``Binary`` unwrapped to bytes (which the transform knows)."""
    from boto3.dynamodb.types import Binary

    if isinstance(value, Binary):
        raw: bytes = getattr(value, "value")  # noqa: B009 - the stubs omit the attribute
        return bytes(raw)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, set):
        return {_plain(v) for v in value}
    return value


class DynamoDBScanner:
    """Parallel scan segments of the partner table, a page at a time."""

    def __init__(
        self,
        table_name: str,
        *,
        client: Any = None,
        client_factory: Callable[[], Any] | None = None,
    ) -> None:
        self.table_name = table_name
        self._dynamodb = LazyClient("dynamodb", client, PATIENT_AWS_TIMEOUTS.config(), client_factory)
        self._key_names: tuple[str, ...] | None = None

    def _describe(self) -> dict[str, Any]:
        return dict(self._dynamodb().describe_table(TableName=self.table_name)["Table"])

    def key_names(self) -> tuple[str, ...]:
        if self._key_names is None:
            self._key_names = tuple(k["AttributeName"] for k in self._describe()["KeySchema"])
        return self._key_names

    def approximate_item_count(self) -> int | None:
        count = self._describe().get("ItemCount")
        return int(count) if count is not None else None

    def scan_page(self, segment: int, total_segments: int, start_key: Key | None, limit: int) -> Page:
        from boto3.dynamodb.types import TypeDeserializer

        key_names = self.key_names()
        start = {"ExclusiveStartKey": key_from_json(start_key)} if start_key else {}
        response = self._dynamodb().scan(
            TableName=self.table_name, Limit=limit, Segment=segment, TotalSegments=total_segments, **start
        )
        deserializer = TypeDeserializer()
        items = [
            ScannedItem(
                key=key_to_json({name: raw[name] for name in key_names}),
                item={name: _plain(deserializer.deserialize(value)) for name, value in raw.items()},
            )
            for raw in response.get("Items", [])
        ]
        last = response.get("LastEvaluatedKey")
        return Page(items, key_to_json(last) if last else None)
