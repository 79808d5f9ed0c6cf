"""The backfill's AWS edges: the partner table's scanner, the partner events queue's sender, the
run's checkpoints (and lease) in the sync-state table, and the function's self-invocation.

Each takes a boto3 client (tests and the command line hand in theirs) or builds one on first use.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from vercel_sync.backfill import (
    BackfillError,
    Key,
    OutboundMessage,
    Page,
    RunState,
    ScannedItem,
    SegmentState,
)

CHECKPOINT_PK_PREFIX = "backfill#"
# Checkpoints outlive a run by two weeks (the state table's TTL attribute removes them after).
CHECKPOINT_KEEP_SECONDS = 14 * 24 * 3600


def backfill_boto_config() -> object:
    """Patient retries: a backfill has no invocation budget to protect, only a job to finish."""
    from botocore.config import Config

    return Config(connect_timeout=3, read_timeout=20, retries={"mode": "standard", "max_attempts": 8})


# boto3's default session is not safe to build clients from in several threads at once (the
# segments' workers); a client, once built, is.
_CLIENT_LOCK = threading.Lock()


def _client(service: str, boto_config: Any) -> Any:
    import boto3

    with _CLIENT_LOCK:
        return boto3.client(service, config=boto_config or backfill_boto_config())  # type: ignore[call-overload]


# ---------------------------------------------------------------- DynamoDB keys as JSON


def key_to_json(key: Mapping[str, Mapping[str, Any]]) -> Key:
    """A low-level DynamoDB key as JSON-safe data (a binary key part as base64)."""
    result: Key = {}
    for name, value in key.items():
        ((kind, raw),) = value.items()
        if kind == "B":
            raw = base64.b64encode(bytes(raw)).decode("ascii")
        result[name] = {kind: raw}
    return result


def key_from_json(key: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    result: dict[str, dict[str, Any]] = {}
    for name, value in key.items():
        ((kind, raw),) = value.items()
        result[name] = {kind: base64.b64decode(raw) if kind == "B" else raw}
    return result


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


# ---------------------------------------------------------------- the partner table


class DynamoDBScanner:
    """Parallel scan segments of the partner table, a page at a time."""

    def __init__(self, table_name: str, *, client: Any = None, boto_config: Any = None) -> None:
        self.table_name = table_name
        self._client = client
        self._boto_config = boto_config
        self._key_names: tuple[str, ...] | None = None

    def _dynamodb(self) -> Any:
        if self._client is None:
            client = _client("dynamodb", self._boto_config)
            self._client = self._client or client
        return self._client

    def _describe(self) -> dict[str, Any]:
        table: dict[str, Any] = self._dynamodb().describe_table(TableName=self.table_name)["Table"]
        return table

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
        request: dict[str, Any] = {
            "TableName": self.table_name,
            "Limit": limit,
            "Segment": segment,
            "TotalSegments": total_segments,
        }
        if start_key:
            request["ExclusiveStartKey"] = key_from_json(start_key)
        response = self._dynamodb().scan(**request)
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


# ---------------------------------------------------------------- the partner events queue


def queue_url_from_arn(queue_arn: str, *, client: Any = None, boto_config: Any = None) -> str:
    """``arn:aws:sqs:REGION:ACCOUNT:NAME`` -> the queue's URL (GetQueueUrl)."""
    parts = queue_arn.split(":")
    if len(parts) != 6 or parts[2] != "sqs":
        raise BackfillError(f"not an SQS queue ARN: {queue_arn!r}")
    sqs = client or _client("sqs", boto_config)
    url: str = sqs.get_queue_url(QueueName=parts[5], QueueOwnerAWSAccountId=parts[4])["QueueUrl"]
    return url


class SqsSender:
    """SendMessageBatch to the partner events queue, retrying the entries SQS could not take."""

    def __init__(
        self,
        queue_url: str,
        *,
        run_id: str | None = None,
        client: Any = None,
        boto_config: Any = None,
        attempts: int = 5,
        backoff_seconds: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.queue_url = queue_url
        self.fifo = queue_url.endswith(".fifo")
        self.run_id = run_id
        self._client = client
        self._boto_config = boto_config
        self._attempts = attempts
        self._backoff_seconds = backoff_seconds
        self._sleep = sleep

    def _sqs(self) -> Any:
        if self._client is None:
            client = _client("sqs", self._boto_config)
            self._client = self._client or client
        return self._client

    def entry(self, index: int, message: OutboundMessage) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "Id": str(index),
            "MessageBody": message.body,
            "MessageAttributes": {"origin": {"DataType": "String", "StringValue": "backfill"}},
        }
        if self.run_id:
            entry["MessageAttributes"]["backfillRunId"] = {"DataType": "String", "StringValue": self.run_id}
        if self.fifo:
            entry["MessageGroupId"] = message.group_id
            entry["MessageDeduplicationId"] = message.deduplication_id
        return entry

    def send_batch(self, messages: Sequence[OutboundMessage]) -> None:
        pending = {str(i): self.entry(i, message) for i, message in enumerate(messages)}
        codes: list[str] = []
        for attempt in range(self._attempts):
            response = self._sqs().send_message_batch(QueueUrl=self.queue_url, Entries=list(pending.values()))
            failed = response.get("Failed", [])
            refused = [f for f in failed if f.get("SenderFault")]
            if refused:
                codes = sorted({str(f.get("Code")) for f in refused})
                raise BackfillError(f"SQS refused {len(refused)} message(s) of a batch ({', '.join(codes)})")
            if not failed:
                return
            codes = sorted({str(f.get("Code")) for f in failed})
            pending = {f["Id"]: pending[f["Id"]] for f in failed}
            if attempt + 1 < self._attempts:
                self._sleep(self._backoff_seconds * 2**attempt)
        raise BackfillError(
            f"SQS did not take {len(pending)} message(s) after {self._attempts} tries ({', '.join(codes)})"
        )


# ---------------------------------------------------------------- checkpoints in the sync-state table


class StateTableCheckpoints:
    """A run's checkpoints as one sync-state-table item, ``pk = "backfill#<run id>"``.

    Attributes: ``kind`` ("backfill"), ``runId``, ``plan`` (JSON), ``createdAt``, ``updatedAt``,
    ``expiresAt`` (the table's TTL, two weeks after the last update), ``segments`` (a map from
    the segment number to its state; a key is kept as JSON text), and while a process works on
    the run, ``leaseOwner`` and ``leaseUntil`` (epoch seconds). A segment's save is refused once
    another owner holds the lease (or, for a worker that took none, while anyone holds it), so a
    stray worker cannot move a checkpoint.
    """

    def __init__(
        self,
        table_name: str,
        *,
        client: Any = None,
        boto_config: Any = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.table_name = table_name
        self._client = client
        self._boto_config = boto_config
        self._clock = clock
        self._owners: dict[str, str] = {}  # run id -> the lease this process holds

    def _dynamodb(self) -> Any:
        if self._client is None:
            client = _client("dynamodb", self._boto_config)
            self._client = self._client or client
        return self._client

    @staticmethod
    def key(run_id: str) -> dict[str, Any]:
        return {"pk": {"S": CHECKPOINT_PK_PREFIX + run_id}}

    def _times(self) -> dict[str, Any]:
        now = self._clock()
        return {
            ":now": {"S": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))},
            ":expires": {"N": str(int(now + CHECKPOINT_KEEP_SECONDS))},
        }

    def load(self, run_id: str) -> RunState | None:
        item = (
            self._dynamodb().get_item(TableName=self.table_name, Key=self.key(run_id), ConsistentRead=True).get("Item")
        )
        if not item:
            return None
        stored = item.get("segments", {}).get("M", {})
        segments = [_segment_from_attribute(int(n), value) for n, value in stored.items()]
        return RunState.from_dict(
            {
                "runId": item["runId"]["S"],
                "plan": json.loads(item["plan"]["S"]),
                "createdAt": item.get("createdAt", {}).get("S", ""),
                "segments": [s.to_dict() for s in segments],
            }
        )

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
            self._dynamodb().put_item(
                TableName=self.table_name, Item=item, ConditionExpression="attribute_not_exists(pk)"
            )
        except Exception as exc:
            if _is_conditional_failure(exc):
                raise BackfillError(f"run {state.run_id} exists already") from None
            raise

    def save(self, run_id: str, segment: SegmentState) -> None:
        request: dict[str, Any] = {
            "TableName": self.table_name,
            "Key": self.key(run_id),
            "UpdateExpression": "SET #segments.#n = :segment, updatedAt = :now, expiresAt = :expires",
            "ExpressionAttributeNames": {"#segments": "segments", "#n": str(segment.segment)},
            "ExpressionAttributeValues": {":segment": _segment_attribute(segment), **self._times()},
        }
        owner = self._owners.get(run_id)
        if owner is not None:
            request["ConditionExpression"] = "leaseOwner = :owner"
            request["ExpressionAttributeValues"][":owner"] = {"S": owner}
        else:  # a worker without the lease may move the run only while nobody holds it
            request["ConditionExpression"] = "attribute_not_exists(leaseOwner)"
        try:
            self._dynamodb().update_item(**request)
        except Exception as exc:
            if _is_conditional_failure(exc):
                raise BackfillError(f"run {run_id} is now held by another worker; this one stops") from None
            raise

    def claim(self, run_id: str, owner: str, *, seconds: float) -> bool:
        now = self._clock()
        ok = self._conditional_update(
            run_id,
            "SET leaseOwner = :owner, leaseUntil = :until",
            "attribute_exists(pk) AND (attribute_not_exists(leaseOwner) OR leaseOwner = :owner OR leaseUntil < :t)",
            {":owner": {"S": owner}, ":until": {"N": str(int(now + seconds))}, ":t": {"N": str(int(now))}},
        )
        if ok:
            self._owners[run_id] = owner
        return ok

    def hand_over(self, run_id: str, owner: str, next_owner: str, *, seconds: float) -> bool:
        ok = self._conditional_update(
            run_id,
            "SET leaseOwner = :next, leaseUntil = :until",
            "leaseOwner = :owner",
            {
                ":owner": {"S": owner},
                ":next": {"S": next_owner},
                ":until": {"N": str(int(self._clock() + seconds))},
            },
        )
        self._owners.pop(run_id, None)
        return ok

    def release(self, run_id: str, owner: str) -> None:
        values = {":owner": {"S": owner}}
        self._conditional_update(run_id, "REMOVE leaseOwner, leaseUntil", "leaseOwner = :owner", values)
        self._owners.pop(run_id, None)

    def _conditional_update(self, run_id: str, update: str, condition: str, values: dict[str, Any]) -> bool:
        try:
            self._dynamodb().update_item(
                TableName=self.table_name,
                Key=self.key(run_id),
                UpdateExpression=update,
                ConditionExpression=condition,
                ExpressionAttributeValues=values,
            )
        except Exception as exc:
            if _is_conditional_failure(exc):
                return False
            raise
        return True


def _segment_attribute(segment: SegmentState) -> dict[str, Any]:
    start_key = {"S": json.dumps(segment.start_key, sort_keys=True)} if segment.start_key else {"NULL": True}
    return {
        "M": {
            "startKey": start_key,
            "done": {"BOOL": segment.done},
            **{name: {"N": str(getattr(segment, name))} for name in ("scanned", "sent", "filtered", "skipped")},
        }
    }


def _segment_from_attribute(number: int, value: Mapping[str, Any]) -> SegmentState:
    fields = value["M"]
    start = fields.get("startKey", {})
    return SegmentState(
        segment=number,
        start_key=json.loads(start["S"]) if "S" in start else None,
        done=bool(fields.get("done", {}).get("BOOL", False)),
        **{name: int(fields.get(name, {}).get("N", "0")) for name in ("scanned", "sent", "filtered", "skipped")},
    )


def _is_conditional_failure(error: Exception) -> bool:
    response = getattr(error, "response", None)
    code = response.get("Error", {}).get("Code") if isinstance(response, dict) else None
    return code == "ConditionalCheckFailedException"


# ---------------------------------------------------------------- the function's next invocation


class LambdaInvoker:
    def __init__(self, *, client: Any = None, boto_config: Any = None) -> None:
        self._client = client
        self._boto_config = boto_config

    def invoke_async(self, function_arn: str, payload: Mapping[str, Any]) -> None:
        if self._client is None:
            self._client = _client("lambda", self._boto_config)
        self._client.invoke(
            FunctionName=function_arn,
            InvocationType="Event",
            Payload=json.dumps(dict(payload)).encode("utf-8"),
        )
