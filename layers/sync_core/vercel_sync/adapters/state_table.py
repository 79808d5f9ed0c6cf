"""The sync-state table (DynamoDB): per resource, the newest version applied, the last payload's digest,
and a short claim while a call is in flight (rules in ``sync_state.py``; the item in docs/architecture.md,
"Sync state"). Each write is one conditional ``UpdateItem``: no version regresses, no two calls for one
resource run at once.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from vercel_sync.adapters.aws_clients import LazyClient
from vercel_sync.adapters.dynamodb import ConditionFailed, number, write
from vercel_sync.errors import TransientSyncError
from vercel_sync.settings import secret_name
from vercel_sync.sync_state import (
    Claim,
    ImportedState,
    ResourceState,
    VersionKey,
    is_stale,
    stored_partner_version,
)

_VERSION_ATTRIBUTE = {"partner": "partnerVersion", "sequence": "sequenceVersion"}


def resource_key(installation_id: str, resource_id: str) -> str:
    # Length-prefixed: ids holding '#' cannot collide.
    return f"resource#{len(installation_id)}#{installation_id}#{resource_id}"


class DynamoDbStateStore:
    def __init__(
        self,
        table_name: str,
        dynamodb_client: Any = None,
        clock: Callable[[], float] = time.time,
        client_factory: Callable[[], Any] | None = None,
    ) -> None:
        self.table_name = table_name
        self._dynamodb = LazyClient("dynamodb", dynamodb_client, factory=client_factory)
        self._clock = clock

    def claim(
        self,
        installation_id: str,
        resource_id: str,
        version: VersionKey | None,
        *,
        lease_seconds: float,
        repair: bool = False,
    ) -> Claim:
        now = self._clock()
        claim_id = uuid.uuid4().hex
        values: dict[str, Any] = {
            "claimId": {"S": claim_id},
            "claimUntil": number(now + lease_seconds),
            "kind": {"S": "resource"},
            "installationId": {"S": installation_id},
            "resourceId": {"S": resource_id},
        }
        request = _set(values)
        request["ExpressionAttributeValues"][":now"] = number(now)
        condition = "(attribute_not_exists(claimUntil) OR claimUntil < :now)"
        if version is not None:
            attribute = _VERSION_ATTRIBUTE[version.kind]
            # A repair re-sends the version applied (Vercel lost it); an older one is stale all the same.
            compare = "<=" if repair else "<"
            condition += f" AND (attribute_not_exists({attribute}) OR {attribute} {compare} :version)"
            request["ExpressionAttributeValues"][":version"] = _version_value(version)
        try:
            response = self._write(
                "update_item",
                Key=self._key(installation_id, resource_id),
                ConditionExpression=condition,
                ReturnValues="ALL_OLD",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
                **request,
            )
        except ConditionFailed as failure:
            return self._why_not(installation_id, resource_id, version, now, claim_id, failure.item, repair=repair)
        return Claim("claimed", claim_id=claim_id, state=_state(response.get("Attributes") or {}))

    def _why_not(
        self,
        installation_id: str,
        resource_id: str,
        version: VersionKey | None,
        now: float,
        claim_id: str,
        item: dict[str, Any] | None = None,
        *,
        repair: bool = False,
    ) -> Claim:
        """Why the claim's condition failed, from the item it failed against (else one consistent read)."""
        if not item:
            key = self._key(installation_id, resource_id)
            item = self._write("get_item", Key=key, ConsistentRead=True).get("Item") or {}
        state = _state(item)
        if item.get("claimId", {}).get("S") == claim_id:
            # Ours: the write went through, its answer was lost, and botocore's retry failed against it.
            return Claim("claimed", claim_id=claim_id, state=state)
        if version is not None and is_stale(version, state.applied(version.kind), repair=repair):
            return Claim("stale", state=state)
        busy_until = float(item["claimUntil"]["N"]) if "claimUntil" in item else now
        # The lease may have lapsed between the two calls: "busy" until now, so the caller retries at once.
        return Claim("busy", state=state, busy_until=max(busy_until, now))

    def record(self, claim_id: str | None, state: ImportedState) -> None:
        values: dict[str, Any] = {
            "kind": {"S": "resource"},
            "installationId": {"S": state.installation_id},
            "resourceId": {"S": state.resource_id},
            "payloadDigest": {"S": state.payload_digest},
            "productId": {"S": state.product_id},
            "status": {"S": state.status},
            "importedAt": {"S": state.imported_at.isoformat()},
        }
        name = None if state.secret_name is None else secret_name(state.secret_name)
        optional = {"secretName": name, "secretsPrefix": state.secrets_prefix}
        values.update({attribute: {"S": value} for attribute, value in optional.items() if value is not None})
        removes = [attribute for attribute, value in optional.items() if value is None]
        version_condition: dict[str, str] = {}
        if state.version is not None:
            attribute = _VERSION_ATTRIBUTE[state.version.kind]
            values[attribute] = _version_value(state.version)
            version_condition["ConditionExpression"] = (
                f"(attribute_not_exists({attribute}) OR {attribute} < :{attribute})"
            )
        key = self._key(state.installation_id, state.resource_id)
        if claim_id is not None:
            request = _set(values, [*removes, "claimId", "claimUntil"])
            request["ExpressionAttributeValues"][":claim"] = {"S": claim_id}
            # When the lease lapsed and another call holds it now: move the version on only.
            with contextlib.suppress(ConditionFailed):
                self._write("update_item", Key=key, ConditionExpression="claimId = :claim", **request)
                return
        with contextlib.suppress(ConditionFailed):  # a newer version is already recorded
            self._write("update_item", Key=key, **version_condition, **_set(values, removes))

    def release(self, installation_id: str, resource_id: str, claim_id: str) -> None:
        with contextlib.suppress(ConditionFailed):  # already lapsed and taken: nothing of ours to release
            self._write(
                "update_item",
                Key=self._key(installation_id, resource_id),
                UpdateExpression="REMOVE claimId, claimUntil",
                ConditionExpression="claimId = :claim",
                ExpressionAttributeValues={":claim": {"S": claim_id}},
            )

    @staticmethod
    def _key(installation_id: str, resource_id: str) -> dict[str, Any]:
        return {"pk": {"S": resource_key(installation_id, resource_id)}}

    def _write(self, operation: str, **request: Any) -> Any:
        # Throttling, a missing table or denied access: the record goes back to its source
        # (nothing is imported without its state recorded, or the guard could be bypassed).
        def failure(code: str) -> Exception:
            return TransientSyncError(f"the sync-state table did not answer ({code or 'error'})")

        return write(self._dynamodb(), operation, failure, TableName=self.table_name, **request)


def _set(values: dict[str, Any], removes: Sequence[str] = ()) -> dict[str, Any]:
    """An UpdateItem setting each attribute to its value and removing ``removes``."""
    expression = "SET " + ", ".join(f"#{name} = :{name}" for name in values)
    if removes:
        expression += " REMOVE " + ", ".join(f"#{name}" for name in removes)
    return {
        "UpdateExpression": expression,
        "ExpressionAttributeNames": {f"#{name}": name for name in [*values, *removes]},
        "ExpressionAttributeValues": {f":{name}": value for name, value in values.items()},
    }


def _version_value(version: VersionKey) -> dict[str, str]:
    return {"N" if version.kind == "partner" else "S": str(version.value)}


def _state(item: dict[str, Any]) -> ResourceState:
    partner = item.get("partnerVersion", {}).get("N")
    sequence = item.get("sequenceVersion", {}).get("S")
    return ResourceState(
        partner_version=stored_partner_version(partner) if partner is not None else None,
        sequence_version=VersionKey("sequence", sequence) if sequence is not None else None,
        payload_digest=item.get("payloadDigest", {}).get("S"),
    )
