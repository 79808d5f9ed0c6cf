"""The sync-state table (DynamoDB): per resource, the newest version applied, the last payload's
digest, and a short claim while a call is in flight. Rules in ``sync_state.py``.

Every write is one conditional ``UpdateItem``, so concurrent invocations can neither regress a
version nor call Vercel for one resource at once:

- ``claim``: take the lease if none is live and the change is newer than what is applied;
  ``ReturnValues=ALL_OLD`` brings back the stored digest in the same call. When the condition
  fails, the item it failed against comes back with the failure
  (``ReturnValuesOnConditionCheckFailure=ALL_OLD``) and tells stale from busy, without a read.
- ``record``: set version, digest and what rotation sync needs (the secret's name and prefix),
  and drop the lease, if the lease is still ours; otherwise (it expired and another call
  claimed) only move the version forward.

Item layout (``pk = resource#<len(installation)>#<installation>#<resource>``): ``kind``,
``installationId``, ``resourceId``, ``partnerVersion`` (N), ``sequenceVersion`` (S, 40 digits),
``payloadDigest``, ``secretName``, ``secretsPrefix``, ``productId``, ``status``,
``importedAt``, ``claimId``, ``claimUntil`` (N, epoch seconds).
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable
from typing import Any

from vercel_sync.adapters.aws_clients import LazyClient
from vercel_sync.errors import TransientSyncError
from vercel_sync.settings import secret_name
from vercel_sync.sync_state import Claim, ImportedState, ResourceState, VersionKey, stored_partner_version

_VERSION_ATTRIBUTE = {"partner": "partnerVersion", "sequence": "sequenceVersion"}


def resource_key(installation_id: str, resource_id: str) -> str:
    # Length-prefixed: ids holding '#' cannot collide.
    return f"resource#{len(installation_id)}#{installation_id}#{resource_id}"


class DynamoDbStateStore:
    def __init__(
        self,
        table_name: str,
        dynamodb_client: Any = None,
        boto_config: Any = None,
        clock: Callable[[], float] = time.time,
        client_factory: Callable[[], Any] | None = None,
    ) -> None:
        self.table_name = table_name
        self._dynamodb = LazyClient("dynamodb", dynamodb_client, boto_config, client_factory)  # built on first use
        self._clock = clock

    def claim(
        self, installation_id: str, resource_id: str, version: VersionKey | None, *, lease_seconds: float
    ) -> Claim:
        now = self._clock()
        claim_id = uuid.uuid4().hex
        values: dict[str, Any] = {
            ":now": {"N": _number(now)},
            ":until": {"N": _number(now + lease_seconds)},
            ":claim": {"S": claim_id},
            ":kind": {"S": "resource"},
            ":installation": {"S": installation_id},
            ":resource": {"S": resource_id},
        }
        condition = "(attribute_not_exists(claimUntil) OR claimUntil < :now)"
        if version is not None:
            attribute = _VERSION_ATTRIBUTE[version.kind]
            condition += f" AND (attribute_not_exists({attribute}) OR {attribute} < :version)"
            values[":version"] = _version_value(version)
        try:
            response = self._call(
                "update_item",
                TableName=self.table_name,
                Key={"pk": {"S": resource_key(installation_id, resource_id)}},
                UpdateExpression=(
                    "SET claimId = :claim, claimUntil = :until, #kind = :kind, "
                    "installationId = :installation, resourceId = :resource"
                ),
                ConditionExpression=condition,
                ExpressionAttributeNames={"#kind": "kind"},
                ExpressionAttributeValues=values,
                ReturnValues="ALL_OLD",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except _ConditionFailed as failure:
            return self._why_not(installation_id, resource_id, version, now, claim_id, failure.item)
        return Claim("claimed", claim_id=claim_id, state=_state(response.get("Attributes") or {}))

    def _why_not(
        self,
        installation_id: str,
        resource_id: str,
        version: VersionKey | None,
        now: float,
        claim_id: str,
        item: dict[str, Any] | None = None,
    ) -> Claim:
        """Why the claim's condition failed, from the item it failed against (one consistent read
        when the failure did not bring it back: the condition fails only on an existing item)."""
        if not item:
            response = self._call(
                "get_item",
                TableName=self.table_name,
                Key={"pk": {"S": resource_key(installation_id, resource_id)}},
                ConsistentRead=True,
            )
            item = response.get("Item") or {}
        state = _state(item)
        if item.get("claimId", {}).get("S") == claim_id:
            # Ours: the write went through but its answer was lost, and botocore's retry then
            # failed the condition against our own claim.
            return Claim("claimed", claim_id=claim_id, state=state)
        if version is not None and not version.newer_than(state.applied(version.kind)):
            return Claim("stale", state=state)
        busy_until = float(item["claimUntil"]["N"]) if "claimUntil" in item else now
        # The lease may have lapsed between the two calls: "busy" until now, so the caller retries at once.
        return Claim("busy", state=state, busy_until=max(busy_until, now))

    def record(self, claim_id: str | None, state: ImportedState) -> None:
        names = {"#kind": "kind", "#status": "status"}
        values: dict[str, Any] = {
            ":kind": {"S": "resource"},
            ":installation": {"S": state.installation_id},
            ":resource": {"S": state.resource_id},
            ":digest": {"S": state.payload_digest},
            ":product": {"S": state.product_id},
            ":status": {"S": state.status},
            ":at": {"S": state.imported_at.isoformat()},
        }
        sets = [
            "#kind = :kind",
            "installationId = :installation",
            "resourceId = :resource",
            "payloadDigest = :digest",
            "productId = :product",
            "#status = :status",
            "importedAt = :at",
        ]
        removes = []
        for attribute, value in (("secretName", state.secret_name), ("secretsPrefix", state.secrets_prefix)):
            if value is None:
                removes.append(attribute)
            else:
                placeholder = f":{attribute}"
                values[placeholder] = {"S": secret_name(value) if attribute == "secretName" else value}
                sets.append(f"{attribute} = {placeholder}")
        version_condition = None
        if state.version is not None:
            attribute = _VERSION_ATTRIBUTE[state.version.kind]
            values[":version"] = _version_value(state.version)
            sets.append(f"{attribute} = :version")
            version_condition = f"(attribute_not_exists({attribute}) OR {attribute} < :version)"
        key = {"pk": {"S": resource_key(state.installation_id, state.resource_id)}}
        if claim_id is not None:
            try:
                self._call(
                    "update_item",
                    TableName=self.table_name,
                    Key=key,
                    UpdateExpression=f"SET {', '.join(sets)} REMOVE {', '.join([*removes, 'claimId', 'claimUntil'])}",
                    ConditionExpression="claimId = :claim",
                    ExpressionAttributeNames=names,
                    ExpressionAttributeValues={**values, ":claim": {"S": claim_id}},
                )
                return
            except _ConditionFailed:
                pass  # the lease lapsed and another call holds it now: move the version on only
        request: dict[str, Any] = {
            "TableName": self.table_name,
            "Key": key,
            "UpdateExpression": "SET " + ", ".join(sets) + (" REMOVE " + ", ".join(removes) if removes else ""),
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
        }
        if version_condition is not None:
            request["ConditionExpression"] = version_condition
        with contextlib.suppress(_ConditionFailed):  # a newer version is already recorded
            self._call("update_item", **request)

    def release(self, installation_id: str, resource_id: str, claim_id: str) -> None:
        with contextlib.suppress(_ConditionFailed):  # already lapsed and taken: nothing of ours to release
            self._call(
                "update_item",
                TableName=self.table_name,
                Key={"pk": {"S": resource_key(installation_id, resource_id)}},
                UpdateExpression="REMOVE claimId, claimUntil",
                ConditionExpression="claimId = :claim",
                ExpressionAttributeValues={":claim": {"S": claim_id}},
            )

    def _call(self, operation: str, **request: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return getattr(self._dynamodb(), operation)(**request)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code == "ConditionalCheckFailedException":
                item = exc.response.get("Item")
                raise _ConditionFailed(item if isinstance(item, dict) else None) from None
            # Throttling, a missing table or denied access: the record goes back to its source
            # (nothing is imported without its state recorded, or the guard could be bypassed).
            raise TransientSyncError(f"the sync-state table did not answer ({code or 'error'})") from None
        except BotoCoreError as exc:
            raise TransientSyncError(f"the sync-state table did not answer ({type(exc).__name__})") from None


class _ConditionFailed(Exception):
    def __init__(self, item: dict[str, Any] | None = None) -> None:
        super().__init__("conditional check failed")
        self.item = item  # the item the condition failed against, when DynamoDB returned it


def _number(value: float) -> str:
    return f"{value:.6f}"


def _version_value(version: VersionKey) -> dict[str, str]:
    if version.kind == "partner":
        return {"N": str(version.value)}
    return {"S": str(version.value)}


def _state(item: dict[str, Any]) -> ResourceState:
    partner = item.get("partnerVersion", {}).get("N")
    sequence = item.get("sequenceVersion", {}).get("S")
    return ResourceState(
        partner_version=stored_partner_version(partner) if partner is not None else None,
        sequence_version=VersionKey("sequence", sequence) if sequence is not None else None,
        payload_digest=item.get("payloadDigest", {}).get("S"),
    )
