"""The rate limiter's buckets as items of the sync-state table, shared by every instance (the item
and how it is written: docs/rate-limiter.md)."""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from vercel_sync.adapters.aws_clients import LazyClient
from vercel_sync.adapters.dynamodb import ConditionFailed, number, write
from vercel_sync.ratelimit.bucket import (
    MICROSECONDS,
    BucketParameters,
    Reservation,
    ReservationFailedError,
    next_free_slot,
    plan_reservation,
)
from vercel_sync.ratelimit.limiter import InProcessRateLimiter, SlotRateLimiter
from vercel_sync.settings import RateLimit, Settings

PK_PREFIX = "ratelimit#"
ITEM_KIND = "ratelimit"
ITEM_TTL_SECONDS = 86_400
# Optimistic writes: attempts per reservation, and the jitter between them.
MAX_WRITE_ATTEMPTS = 8
CONFLICT_JITTER_SECONDS = 0.01
# Slots are planned from when a write's answer is expected (its last round trip, at most this):
# from when it left, every slot would lapse on arrival once a round trip outlasts the late grace.
MAX_ROUND_TRIP_LEAD_SECONDS = 2.0
_NAMES = {
    "#tat": "tatUs",
    "#paused": "pausedUntilUs",
    "#exp": "expiresAt",
    "#kind": "kind",
    "#installation": "installationId",
}
# Set by every write that may create the item (``_update`` adds their values).
_IDENTITY = ", #kind = :kind, #installation = :installation"


@dataclass(frozen=True)
class _ItemState:
    tat: int
    paused_until: int


@dataclass(eq=False)
class DynamoDbBucketStore:
    """Each reservation one conditional UpdateItem: an atomic increment while a backlog keeps the
    bucket empty, else a write against the state last seen, retried from what a conflict returns."""

    remote: ClassVar[bool] = True

    table_name: str
    params: BucketParameters
    client: Callable[[], Any]
    count: Callable[..., None]
    sleep: Callable[[float], None]
    rng: random.Random
    # The last state seen per installation: the next write is tried against it, without a read.
    known: dict[str, _ItemState | None] = field(default_factory=dict)
    round_trip_us: int = 0  # the last write's, measured

    def reserve(self, installation_id: str, now_us: Callable[[], int], deadlines: Sequence[int]) -> Reservation:
        state = self.known.get(installation_id)
        interval = self.params.interval_us
        for attempt in range(MAX_WRITE_ATTEMPTS):
            if attempt:
                self.sleep(self.rng.uniform(0, CONFLICT_JITTER_SECONDS))
            sent = now_us()
            now = sent + self.round_trip_us  # when the answer should be back
            tat = None if state is None else state.tat
            plan = plan_reservation(self.params, tat, now, deadlines)
            if not plan.slots:
                return Reservation((), next_free_slot(self.params, tat, now), state.paused_until if state else 0)
            try:
                if plan.queued:
                    new_state = self._increment(installation_id, len(plan.slots), plan.lo, plan.hi, now)
                    first = new_state.tat - len(plan.slots) * interval - self.params.tolerance_us
                    slots = tuple(first + j * interval for j in range(len(plan.slots)))
                else:
                    new_state = self._replace(installation_id, state, plan.new_tat, now)
                    slots = plan.slots
            except ConditionFailed as failure:
                state = self.known[installation_id] = _item_state(failure.item)
                continue
            finally:
                lead = min(now_us() - sent, int(MAX_ROUND_TRIP_LEAD_SECONDS * MICROSECONDS))
                self.round_trip_us = max(0, lead)
            self.known[installation_id] = new_state
            return Reservation(slots, next_free_slot(self.params, new_state.tat, now), new_state.paused_until)
        raise ReservationFailedError("conflicting writes")

    def pause(self, installation_id: str, until: int, now: int) -> None:
        floor = until + self.params.tolerance_us
        values = {":tat": number(floor), ":paused": number(until), ":exp": number(_expires_at(max(floor, now)))}
        try:
            self.known[installation_id] = self._update(
                installation_id,
                "SET #tat = :tat, #paused = :paused, #exp = :exp" + _IDENTITY,
                "attribute_not_exists(pk) OR #tat < :tat",
                values,
            )
        except ConditionFailed:
            # tat is already past the pause (a deeper queue): only record the pause, for the
            # instances holding slots inside it (no change if someone paused for longer).
            with contextlib.suppress(ConditionFailed):
                self.known[installation_id] = self._update(
                    installation_id,
                    "SET #paused = :paused",
                    "attribute_not_exists(#paused) OR #paused < :paused",
                    {":paused": values[":paused"]},
                )

    def _increment(self, installation_id: str, count: int, lo: int, hi: int, now: int) -> _ItemState:
        step = number(count * self.params.interval_us)
        values = {":step": step, ":lo": number(lo), ":hi": number(hi), ":exp": number(_expires_at(now))}
        return self._update(installation_id, "SET #tat = #tat + :step, #exp = :exp", "#tat BETWEEN :lo AND :hi", values)

    def _replace(self, installation_id: str, state: _ItemState | None, tat: int, now: int) -> _ItemState:
        values = {":tat": number(tat), ":exp": number(_expires_at(now))}
        if state is None or state.tat <= now:
            # Every full bucket (tat not after now) gives the slots a missing item gives, so the
            # write holds for any such item: a cold container's first write needs no failed one.
            condition = "attribute_not_exists(pk) OR #tat <= :now"
            values[":now"] = number(now)
        else:
            condition = "#tat = :old"
            values[":old"] = number(state.tat)
        return self._update(installation_id, "SET #tat = :tat, #exp = :exp" + _IDENTITY, condition, values)

    def _update(self, installation_id: str, update: str, condition: str, values: dict[str, Any]) -> _ItemState:
        used = update + " " + condition
        if ":kind" in update:
            values = {**values, ":kind": {"S": ITEM_KIND}, ":installation": {"S": installation_id}}
        self.count(dynamodb_calls=1)
        try:
            answer = write(
                self.client(),
                "update_item",
                lambda code: ReservationFailedError(code or "ClientError"),
                TableName=self.table_name,
                Key={"pk": {"S": PK_PREFIX + installation_id}},
                UpdateExpression=update,
                ConditionExpression=condition,
                ExpressionAttributeNames={k: v for k, v in _NAMES.items() if k in used},
                ExpressionAttributeValues=values,
                ReturnValues="ALL_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ConditionFailed:
            self.count(conflicts=1)
            raise
        state = _item_state(answer.get("Attributes") if isinstance(answer, dict) else None)
        if state is None:
            raise ReservationFailedError("no attributes returned")
        return state


def _expires_at(now_us: int) -> int:
    return now_us // MICROSECONDS + ITEM_TTL_SECONDS


def _item_state(item: Any) -> _ItemState | None:
    try:
        tat = int(item["tatUs"]["N"])
        paused = int(item["pausedUntilUs"]["N"]) if "pausedUntilUs" in item else 0
    except (KeyError, TypeError, ValueError):
        return None
    return _ItemState(tat, paused)


class DynamoDbRateLimiter(SlotRateLimiter):
    """The limiter on the sync-state table's buckets (a low-level, thread-safe boto3 client, or the factory's)."""

    def __init__(
        self,
        table_name: str,
        limit: RateLimit,
        *,
        dynamodb_client: Any = None,
        client_factory: Callable[[], Any] | None = None,
        params: BucketParameters | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.table_name = table_name
        self._dynamodb = LazyClient("dynamodb", dynamodb_client, factory=client_factory)

        def store(params: BucketParameters) -> DynamoDbBucketStore:  # called once the limiter's sleep and rng are set
            return DynamoDbBucketStore(table_name, params, self._dynamodb, self._count, self._sleep, self._rng)

        super().__init__(limit, store, params=params, clock=clock, sleep=sleep, rng=rng)


def build_rate_limiter(
    settings: Settings, *, client_factory: Callable[[], Any] | None = None
) -> DynamoDbRateLimiter | InProcessRateLimiter:
    """The shared limiter when the sync-state table is configured, else the per-container one."""
    if settings.sync_state_table:
        return DynamoDbRateLimiter(settings.sync_state_table, settings.rate_limit, client_factory=client_factory)
    return InProcessRateLimiter(settings.rate_limit)
