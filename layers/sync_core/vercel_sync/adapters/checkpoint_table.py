"""A backfill run's checkpoints and lease as one item of the sync-state table, ``pk = "backfill#<run id>"``:
``segments`` maps a segment's number to its state; a save is refused while another owner holds the lease."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from typing import Any

from vercel_sync.adapters.aws_clients import PATIENT_AWS_TIMEOUTS, LazyClient
from vercel_sync.adapters.dynamodb import ConditionFailed, number, write
from vercel_sync.backfill.checkpoints import COUNT_FIELDS, BackfillError, BackfillPlan, RunState, SegmentState

CHECKPOINT_PK_PREFIX = "backfill#"
CHECKPOINT_KEEP_SECONDS = 14 * 24 * 3600


class StateTableCheckpoints:
    def __init__(
        self,
        table_name: str,
        *,
        client: Any = None,
        client_factory: Callable[[], Any] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.table_name = table_name
        self._dynamodb = LazyClient("dynamodb", client, PATIENT_AWS_TIMEOUTS.config(), client_factory)
        self._clock = clock
        self._owners: dict[str, str] = {}  # run id -> the lease this process holds

    @staticmethod
    def key(run_id: str) -> dict[str, Any]:
        return {"pk": {"S": CHECKPOINT_PK_PREFIX + run_id}}

    def load(self, run_id: str) -> RunState | None:
        item = self._write("get_item", Key=self.key(run_id), ConsistentRead=True).get("Item")
        if not item:
            return None
        segments = [
            _segment_from_attribute(int(n), value) for n, value in item.get("segments", {}).get("M", {}).items()
        ]
        plan = BackfillPlan.from_dict(json.loads(item["plan"]["S"]))
        return RunState(item["runId"]["S"], plan, segments, item.get("createdAt", {}).get("S", ""))

    def create(self, state: RunState) -> None:
        times = self._times()
        item = {
            **self.key(state.run_id),
            "kind": {"S": "backfill"},
            "runId": {"S": state.run_id},
            "plan": {"S": json.dumps(state.plan.to_dict(), sort_keys=True)},
            "createdAt": {"S": state.created_at},
            "updatedAt": times[":now"],
            "expiresAt": times[":expires"],
            "segments": {"M": {str(s.segment): _segment_attribute(s) for s in state.segments}},
        }
        try:
            self._write("put_item", Item=item, ConditionExpression="attribute_not_exists(pk)")
        except ConditionFailed:
            raise BackfillError(f"run {state.run_id} exists already") from None

    def save(self, run_id: str, segment: SegmentState) -> None:
        owner = self._owners.get(run_id)
        values = {":segment": _segment_attribute(segment), **self._times()}
        if owner is not None:
            values[":owner"] = {"S": owner}
        if not self._update(
            run_id,
            "SET #segments.#n = :segment, updatedAt = :now, expiresAt = :expires",
            # A worker without the lease may move the run only while nobody holds it.
            "attribute_not_exists(leaseOwner)" if owner is None else "leaseOwner = :owner",
            values,
            ExpressionAttributeNames={"#segments": "segments", "#n": str(segment.segment)},
        ):
            raise BackfillError(f"run {run_id} is now held by another worker; this one stops")

    def claim(self, run_id: str, owner: str, *, seconds: float) -> bool:
        now = self._clock()
        ok = self._update(
            run_id,
            "SET leaseOwner = :owner, leaseUntil = :until",
            "attribute_exists(pk) AND (attribute_not_exists(leaseOwner) OR leaseOwner = :owner OR leaseUntil < :t)",
            {":owner": {"S": owner}, ":until": number(int(now + seconds)), ":t": number(int(now))},
        )
        if ok:
            self._owners[run_id] = owner
        return ok

    def hand_over(self, run_id: str, owner: str, next_owner: str, *, seconds: float) -> bool:
        until = number(int(self._clock() + seconds))
        values = {":owner": {"S": owner}, ":next": {"S": next_owner}, ":until": until}
        ok = self._update(run_id, "SET leaseOwner = :next, leaseUntil = :until", "leaseOwner = :owner", values)
        self._owners.pop(run_id, None)
        return ok

    def release(self, run_id: str, owner: str) -> None:
        values = {":owner": {"S": owner}}
        self._update(run_id, "REMOVE leaseOwner, leaseUntil", "leaseOwner = :owner", values)
        self._owners.pop(run_id, None)

    def _times(self) -> dict[str, Any]:
        now = self._clock()
        return {
            ":now": {"S": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))},
            ":expires": number(int(now + CHECKPOINT_KEEP_SECONDS)),
        }

    def _update(self, run_id: str, update: str, condition: str, values: dict[str, Any], **request: Any) -> bool:
        """The conditional update; False when its condition did not hold."""
        try:
            self._write(
                "update_item",
                Key=self.key(run_id),
                UpdateExpression=update,
                ConditionExpression=condition,
                ExpressionAttributeValues=values,
                **request,
            )
        except ConditionFailed:
            return False
        return True

    def _write(self, operation: str, **request: Any) -> Any:
        return write(self._dynamodb(), operation, TableName=self.table_name, **request)


def _segment_attribute(segment: SegmentState) -> dict[str, Any]:
    start_key = {"S": json.dumps(segment.start_key, sort_keys=True)} if segment.start_key else {"NULL": True}
    counts = {name: number(getattr(segment, name)) for name in COUNT_FIELDS}
    return {"M": {"startKey": start_key, "done": {"BOOL": segment.done}, **counts}}


def _segment_from_attribute(segment: int, value: Mapping[str, Any]) -> SegmentState:
    fields = value["M"]
    start = fields.get("startKey", {})
    return SegmentState(
        segment=segment,
        start_key=json.loads(start["S"]) if "S" in start else None,
        done=bool(fields.get("done", {}).get("BOOL", False)),
        **{name: int(fields.get(name, {}).get("N", "0")) for name in COUNT_FIELDS},
    )
