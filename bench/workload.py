"""What the benchmarks feed the handlers: partner records, Lambda events of the real shapes, and
the drivers that deliver them as Lambda's event source mappings do. Pure, except the drivers,
which call the handler they are given.

Events are built in memory (not read from a moto stream) so only the handler's own work is
timed; their shape comes from ``local_runner.events``, the same builders the local runner uses
on what moto's DynamoDB Streams and SQS return.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from local_runner.events import reported_failures, stream_record
from local_runner.invocation import invoke

STREAM_ARN = (
    "arn:aws:dynamodb:us-east-1:123456789012:table/vercel-sync-bench-PartnerTable/stream/2026-11-26T00:00:00.000"
)
FIRST_SEQUENCE_NUMBER = 10**21  # 22 digits, as in events/*.json
PRODUCT_ID = "postgres"


def resource_secret_name(installation_id: str) -> str:
    """The resource secret an installation's records name: in the installation's folder."""
    return f"partner/resources/{installation_id}/bench_db"


# The fields of a partner record that reach Vercel's import body (docs/configuration.md, the
# partner record): any change elsewhere in the item (internalNote, updatedBy, version) is invisible
# to Vercel. Written out here rather than derived from the transform, so the minimum number of
# calls is computed independently of the code under test.
VERCEL_VISIBLE_FIELDS = (
    "productId",
    "name",
    "status",
    "ownership",
    "metadata",
    "billingPlan",
    "notification",
    "extras",
    "secretsArn",
    "secretsPrefix",
    "deleted",
)


def partner_item(
    installation_id: str,
    number: int,
    *,
    revision: int = 0,
    note: int = 0,
    version: int = 1,
    secrets_arn: str | None = None,
) -> dict[str, Any]:
    """One partner resource as plain JSON values, shaped like ``events/``'s: ``revision`` moves a
    field Vercel sees (``metadata.storageGb``), ``note`` one it does not (``internalNote``)."""
    item: dict[str, Any] = {
        "integrationConfigurationId": installation_id,
        "resourceId": f"db_{number:05d}",
        "productId": PRODUCT_ID,
        "name": f"orders-db-{number}",
        "status": "active",
        "ownership": "owned",
        "metadata": {
            "region": "iad1",
            "storageGb": 20 + revision,
            "replicas": 2,
            "highAvailability": True,
            "versions": ["16.4"],
        },
        "billingPlan": {"id": "plan_pro", "type": "subscription", "name": "Pro", "cost": "$20/month"},
        "version": version,
        "internalNote": f"ticket {note}",  # outside the import body
        "updatedBy": "partner-console",  # outside the import body
    }
    if secrets_arn is not None:
        item["secretsArn"] = secrets_arn
        item["secretsPrefix"] = "ORDERS"
    return item


def vercel_view(item: Mapping[str, Any]) -> str:
    """What Vercel sees of a partner item, canonically: two items with the same view import the
    same body (no secret document changes during a run)."""
    return json.dumps({k: item[k] for k in VERCEL_VISIBLE_FIELDS if k in item}, sort_keys=True)


# -- DynamoDB stream records ----------------------------------------------------------------------


def _attribute(value: Any) -> dict[str, Any]:
    """A plain JSON value as a DynamoDB attribute value (what a stream image holds)."""
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, int | float):
        return {"N": str(value)}
    if value is None:
        return {"NULL": True}
    if isinstance(value, Mapping):
        return {"M": {str(k): _attribute(v) for k, v in value.items()}}
    if isinstance(value, list):
        return {"L": [_attribute(v) for v in value]}
    raise TypeError(f"no DynamoDB attribute for {type(value).__name__}")


def dynamodb_image(item: Mapping[str, Any]) -> dict[str, Any]:
    return {name: _attribute(value) for name, value in item.items()}


def stream_records(
    changes: Sequence[tuple[str, Mapping[str, Any], Mapping[str, Any] | None]],
    *,
    created_at: int | None = None,
) -> list[dict[str, Any]]:
    """Lambda DynamoDB stream records, in order, for ``(eventName, new item, old item)`` changes
    (``NEW_AND_OLD_IMAGES``; a REMOVE carries only the old item)."""
    created = int(time.time()) if created_at is None else created_at
    records = []
    for index, (event_name, new, old) in enumerate(changes):
        keys_from = old if event_name == "REMOVE" and old is not None else new
        dynamodb: dict[str, Any] = {
            "ApproximateCreationDateTime": created,
            "Keys": {
                "integrationConfigurationId": {"S": keys_from["integrationConfigurationId"]},
                "resourceId": {"S": keys_from["resourceId"]},
            },
            "SequenceNumber": str(FIRST_SEQUENCE_NUMBER + index),
            "StreamViewType": "NEW_AND_OLD_IMAGES",
        }
        if event_name != "REMOVE":
            dynamodb["NewImage"] = dynamodb_image(new)
        if old is not None:
            dynamodb["OldImage"] = dynamodb_image(old)
        dynamodb["SizeBytes"] = len(json.dumps([dynamodb.get("NewImage"), dynamodb.get("OldImage")]))
        get_records_record = {"eventID": f"{index + 1:032d}", "eventName": event_name, "dynamodb": dynamodb}
        records.append(stream_record(get_records_record, STREAM_ARN))
    return records


def inserts(
    installation_id: str, count: int, *, start: int = 0, secrets_arn: str | None = None
) -> list[dict[str, Any]]:
    """``count`` INSERT stream records of distinct resources."""
    return stream_records(
        [("INSERT", partner_item(installation_id, start + n, secrets_arn=secrets_arn), None) for n in range(count)]
    )


# -- case 2: changes of which some are invisible to Vercel ---------------------------------------


@dataclass(frozen=True)
class Change:
    event_name: str  # INSERT or MODIFY
    new: dict[str, Any]
    old: dict[str, Any] | None
    visible: bool  # whether it changes what Vercel sees (the first change of a resource always does)


def mixed_changes(
    installation_id: str, *, changes: int, resources: int, invisible_fraction: float, seed: int = 5
) -> list[Change]:
    """``changes`` changes over ``resources`` resources, in a shuffled but per-resource ordered
    sequence: each resource's first change is its INSERT; of the MODIFYs, exactly
    ``round(changes * invisible_fraction)`` touch only fields outside the import body (a note),
    the rest move a field Vercel sees. Every change bumps ``version``, as a partner's write would."""
    if changes < resources:
        raise ValueError("need at least one change per resource")
    rng = random.Random(seed)  # noqa: S311 - a reproducible workload, not a secret
    per_resource = [changes // resources + (1 if n < changes % resources else 0) for n in range(resources)]
    modifies = changes - resources
    invisible = round(changes * invisible_fraction)
    if invisible > modifies:
        raise ValueError("too many invisible changes for the MODIFYs available")
    kinds = [False] * invisible + [True] * (modifies - invisible)  # visible?
    rng.shuffle(kinds)
    order = [n for n in range(resources) for _ in range(per_resource[n])]
    rng.shuffle(order)
    state: dict[int, dict[str, Any]] = {}
    counters: dict[int, tuple[int, int, int]] = {}  # revision, note, version
    result: list[Change] = []
    for number in order:
        old = state.get(number)
        if old is None:
            item = partner_item(installation_id, number)
            counters[number] = (0, 0, 1)
            result.append(Change("INSERT", item, None, True))
        else:
            revision, note, version = counters[number]
            visible = kinds.pop()
            revision, note = (revision + 1, note) if visible else (revision, note + 1)
            counters[number] = (revision, note, version + 1)
            item = partner_item(installation_id, number, revision=revision, note=note, version=version + 1)
            result.append(Change("MODIFY", item, old, vercel_view(item) != vercel_view(old)))
        state[number] = item
    return result


def minimum_calls(changes: Sequence[Change], batch_size: int) -> int:
    """The fewest imports that keep Vercel exact when the changes arrive in order, in batches of
    ``batch_size``: a sync cannot wait for later batches, so per batch, each resource whose
    newest change in the batch shows Vercel something other than what it last received (nothing,
    before its first import) needs one call; any other change needs none."""
    last_sent: dict[str, str] = {}
    calls = 0
    for start in range(0, len(changes), batch_size):
        newest: dict[str, str] = {}
        for change in changes[start : start + batch_size]:
            newest[change.new["resourceId"]] = vercel_view(change.new)
        for resource_id, view in newest.items():
            if last_sent.get(resource_id) != view:
                calls += 1
                last_sent[resource_id] = view
    return calls


def final_views(changes: Sequence[Change]) -> dict[str, str]:
    """What Vercel must hold at the end, per resource: the view of its newest change."""
    return {change.new["resourceId"]: vercel_view(change.new) for change in changes}


# -- delivery, as an event source mapping does it -------------------------------------------------

Handler = Callable[[dict[str, Any], Any], Any]


@dataclass
class Delivery:
    """How a run of invocations went."""

    invocations: int = 0
    records_delivered: int = 0  # records handed to the handler, redeliveries included
    reported: int = 0  # invocations whose response reported a failure
    errors: list[str] = field(default_factory=list)  # invocations that failed as a whole
    left: int = 0  # records never processed (the run gave up)

    def as_dict(self) -> dict[str, Any]:
        return {
            "invocations": self.invocations,
            "recordsDelivered": self.records_delivered,
            "reportedInvocations": self.reported,
            "errors": self.errors,
            "left": self.left,
        }


def deliver_stream(
    handler: Handler,
    records: Sequence[dict[str, Any]],
    *,
    batch_size: int,
    timeout_seconds: float,
    function_name: str = "stream_sync",
    max_attempts_without_progress: int = 3,
) -> Delivery:
    """Hand ``records`` (one shard, in order) to ``handler`` in batches of at most ``batch_size``,
    as Lambda's stream mapping does with partial batch responses: after a reported failure the
    shard resumes at the reported sequence number; an invocation that fails as a whole is retried
    with the same batch. Gives up after ``max_attempts_without_progress`` invocations in a row
    that move the shard on by nothing."""
    delivery = Delivery()
    position = 0
    stalled = 0
    while position < len(records):
        batch = list(records[position : position + batch_size])
        ids = [record["dynamodb"]["SequenceNumber"] for record in batch]
        invocation = invoke(handler, {"Records": batch}, function_name=function_name, timeout_seconds=timeout_seconds)
        delivery.invocations += 1
        delivery.records_delivered += len(batch)
        failures = None if invocation.error else reported_failures(invocation.response, ids)
        if failures is None:
            delivery.errors.append(invocation.error or "invalid batch response")
            advanced = 0
        elif failures:
            delivery.reported += 1
            advanced = ids.index(failures[0])
        else:
            advanced = len(batch)
        position += advanced
        stalled = 0 if advanced else stalled + 1
        if stalled >= max_attempts_without_progress:
            break
    delivery.left = len(records) - position
    return delivery
