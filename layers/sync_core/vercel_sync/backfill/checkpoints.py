"""A backfill run: its plan, fixed when it starts, and each scan segment's checkpoint (the key of the
last item counted, saved after every batch sent: docs/operations.md, "Resume" and "Sent twice?")."""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from pydantic import ConfigDict, TypeAdapter
from pydantic.alias_generators import to_camel
from pydantic.dataclasses import dataclass

from vercel_sync.partner_schema import PartnerRecord

INSTALLATION_FIELD = PartnerRecord.model_fields["integration_configuration_id"].alias or "integrationConfigurationId"
PRODUCT_FIELD = PartnerRecord.model_fields["product_id"].alias or "productId"
RUN_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
MAX_SEGMENTS = 1000
DEFAULT_SEGMENTS = 4
COUNT_FIELDS = ("scanned", "sent", "filtered", "skipped")

Key = dict[str, Any]
"""A DynamoDB primary key in the low-level form (``{"id": {"S": "x"}}``), JSON-safe (binary as base64)."""


class BackfillError(Exception):
    """A backfill cannot start or go on (a bad plan, a refused checkpoint, SQS refusing messages)."""


# A run's checkpoint as JSON (a file, or the checkpoint item's plan): the plan's keys in camelCase.
_CAMEL = ConfigDict(alias_generator=to_camel, populate_by_name=True)


@dataclass(frozen=True, config=_CAMEL)
class BackfillPlan:
    """What a run reads and where it sends; fixed when the run starts (a resume reuses it)."""

    table_name: str
    queue_url: str
    total_segments: int = DEFAULT_SEGMENTS
    installation_id: str | None = None
    product_id: str | None = None

    def __post_init__(self) -> None:
        if not self.table_name or not self.queue_url:
            raise BackfillError("a backfill needs the partner table and the partner events queue")
        if not 1 <= self.total_segments <= MAX_SEGMENTS:
            raise BackfillError(f"segments must be between 1 and {MAX_SEGMENTS}")

    @property
    def fifo(self) -> bool:
        return self.queue_url.endswith(".fifo")

    def matches(self, item: Mapping[str, Any]) -> bool:
        if self.installation_id is not None and item.get(INSTALLATION_FIELD) != self.installation_id:
            return False
        return self.product_id is None or item.get(PRODUCT_FIELD) == self.product_id

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = _PLAN.dump_python(self, by_alias=True)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BackfillPlan:
        return _PLAN.validate_python(data)

    def describe(self) -> str:
        filters = [f"installation {self.installation_id}"] if self.installation_id else []
        filters += [f"product {self.product_id}"] if self.product_id else []
        return f"table {self.table_name}, {self.total_segments} segments" + (
            f", only {' and '.join(filters)}" if filters else ""
        )


@dataclass
class SegmentState:
    """One scan segment: where to go on from, and what it counted up to there."""

    segment: int
    start_key: Key | None = None  # resume after this key (None: from the start, unless done)
    done: bool = False
    scanned: int = 0  # items read
    sent: int = 0  # messages sent (dry run: that would be sent)
    filtered: int = 0  # not matching the filters
    skipped: int = 0  # not a resource (no ids), or not sendable (too large, not JSON)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Counts:
    scanned: int = 0
    sent: int = 0
    filtered: int = 0
    skipped: int = 0

    @classmethod
    def of(cls, segments: Sequence[SegmentState]) -> Counts:
        return cls(**{name: sum(getattr(s, name) for s in segments) for name in COUNT_FIELDS})


@dataclass(config=_CAMEL)
class RunState:
    run_id: str
    plan: BackfillPlan
    segments: list[SegmentState]
    created_at: str = ""

    def __post_init__(self) -> None:
        self.segments.sort(key=lambda s: s.segment)
        if [s.segment for s in self.segments] != list(range(self.plan.total_segments)):
            raise BackfillError("checkpoint does not hold one state per segment")

    @classmethod
    def new(cls, run_id: str, plan: BackfillPlan, *, now: datetime | None = None) -> RunState:
        validate_run_id(run_id)
        moment = (now or datetime.now(UTC)).isoformat(timespec="seconds")
        return cls(run_id, plan, [SegmentState(i) for i in range(plan.total_segments)], moment)

    @property
    def complete(self) -> bool:
        return all(segment.done for segment in self.segments)

    def totals(self) -> Counts:
        return Counts.of(self.segments)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = _RUN.dump_python(self, by_alias=True)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunState:
        return _RUN.validate_python(data)


_PLAN = TypeAdapter(BackfillPlan)
_RUN = TypeAdapter(RunState)


def validate_run_id(run_id: str) -> str:
    if not RUN_ID_PATTERN.fullmatch(run_id):
        raise BackfillError("a run id is 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit")
    return run_id


def new_run_id(now: datetime | None = None) -> str:
    moment = now or datetime.now(UTC)
    return f"bf-{moment:%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:6]}"


class CheckpointStore(Protocol):
    def load(self, run_id: str) -> RunState | None: ...

    def create(self, state: RunState) -> None:
        """Store a new run; refuses (BackfillError) a run id that exists."""

    def save(self, run_id: str, segment: SegmentState) -> None:
        """Record one segment's progress (called from the segment's worker thread)."""


class LeaseStore(CheckpointStore, Protocol):
    """Checkpoints with a lease: one worker at a time moves a run."""

    def claim(self, run_id: str, owner: str, *, seconds: float) -> bool:
        """Take the run for ``owner`` (free, expired, or already its own) for ``seconds``."""

    def hand_over(self, run_id: str, owner: str, next_owner: str, *, seconds: float) -> bool:
        """Pass the run from ``owner`` to ``next_owner``, who must claim it within ``seconds``."""

    def release(self, run_id: str, owner: str) -> None: ...


def start_or_resume(
    checkpoints: CheckpointStore, run_id: str, plan: BackfillPlan | None
) -> tuple[RunState, Literal["new", "resumed"]]:
    """The run's state: resumed from its checkpoint, or created from ``plan``. Another plan is refused:
    a position means nothing in another segmentation, and a filter changed midway would leave items out."""
    validate_run_id(run_id)
    existing = checkpoints.load(run_id)
    if existing is not None:
        if plan is not None and plan != existing.plan:
            raise BackfillError(
                f"run {run_id} exists with another plan ({existing.plan.describe()}); resume it as it is "
                "or start a new run id"
            )
        return existing, "resumed"
    if plan is None:
        raise BackfillError(f"no checkpoint for run {run_id}")
    state = RunState.new(run_id, plan)
    checkpoints.create(state)
    return state, "new"
