"""The sync-state table's sparse index ``bySecretName``: the resources whose last import used a secret
(one ``Query`` per page, eventually consistent: an import a moment old read the secret itself)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from vercel_sync.adapters.aws_clients import LazyClient
from vercel_sync.errors import TransientSyncError
from vercel_sync.rotation.events import RotationTarget, target_from_item

INDEX_NAME = "bySecretName"
# A secret shared by more resources than this is refused loudly rather than half-done.
MAX_TARGETS = 10_000


class DynamoDbSecretIndex:
    def __init__(
        self, table_name: str, dynamodb_client: Any = None, *, client_factory: Callable[[], Any] | None = None
    ) -> None:
        self.table_name = table_name
        self._dynamodb = LazyClient("dynamodb", dynamodb_client, factory=client_factory)

    def resources_using(self, secret_name: str) -> list[RotationTarget]:
        from botocore.exceptions import BotoCoreError, ClientError

        targets: list[RotationTarget] = []
        request: dict[str, Any] = {
            "TableName": self.table_name,
            "IndexName": INDEX_NAME,
            "KeyConditionExpression": "secretName = :name",
            "ExpressionAttributeValues": {":name": {"S": secret_name}},
            "ProjectionExpression": "#kind, installationId, resourceId, secretsPrefix, #status",
            "ExpressionAttributeNames": {"#kind": "kind", "#status": "status"},
        }
        while True:
            try:
                page = self._dynamodb().query(**request)
            except ClientError as exc:
                # Throttling, a missing table or index, a denied read: not the event's fault, so retried.
                code = exc.response.get("Error", {}).get("Code", "error")
                raise TransientSyncError(f"cannot query {INDEX_NAME} of the sync-state table: {code}") from None
            except BotoCoreError as exc:
                raise TransientSyncError(f"cannot query the sync-state table now: {type(exc).__name__}") from None
            for item in page.get("Items", []):
                target = target_from_item(_plain(item))
                if target is not None:
                    targets.append(target)
            if len(targets) > MAX_TARGETS:
                raise TransientSyncError(f"more than {MAX_TARGETS} resources use one secret")
            last = page.get("LastEvaluatedKey")
            if not last:
                return targets
            request["ExclusiveStartKey"] = last


def _plain(item: dict[str, Any]) -> dict[str, Any]:
    """The string attributes of an item, as plain values (the only kind the targets use)."""
    return {name: value["S"] for name, value in item.items() if isinstance(value, dict) and "S" in value}
