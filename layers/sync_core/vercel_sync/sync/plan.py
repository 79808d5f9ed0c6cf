"""A batch's plan: its changes parsed, coalesced per resource, grouped per FIFO group. Pure."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, get_args

from vercel_sync.changes import SourceChange
from vercel_sync.errors import InvalidRecordError, PermanentSyncError, TransientSyncError
from vercel_sync.partner_schema import PartnerRecord
from vercel_sync.sync_state import VersionKey, partner_version, sequence_version
from vercel_sync.transform import parse_partner_record

Outcome = Literal["imported", "unchanged", "stale", "coalesced", "parked"]


@dataclass(frozen=True, slots=True)
class RecordResult:
    """One change's fate in its batch: an outcome, or the transient error that sends it back."""

    outcome: Outcome | None
    error: TransientSyncError | None = None

    @property
    def failed(self) -> bool:
        return self.outcome is None


# The results without an error, shared (they are immutable): one object per outcome, not per record.
DONE: dict[Outcome, RecordResult] = {outcome: RecordResult(outcome) for outcome in get_args(Outcome)}


@dataclass(slots=True)
class ParsedChange:
    """A parsed change of the batch, with its place in the batch."""

    index: int
    change: SourceChange
    record: PartnerRecord
    version: VersionKey | None


@dataclass(slots=True)
class ResourceWork:
    """A unit of work: one resource's changes in the batch (within one FIFO group), coalesced."""

    group: str | None
    changes: list[ParsedChange] = field(default_factory=list)

    def indexes(self) -> list[int]:
        return [c.index for c in self.changes]

    def newest(self) -> ParsedChange:
        """By ``version`` when every change has one (later in the batch wins a tie), else the
        last in source order (a stream shard's order; a queue's arrival order)."""
        versions = [c.version for c in self.changes]
        if all(v is not None and v.kind == "partner" for v in versions):
            return max(self.changes, key=lambda c: (c.version.value if c.version else 0, c.index))
        return self.changes[-1]


@dataclass(slots=True)
class Parking:
    """A unit of work: a record that can never make a payload, to park."""

    group: str | None
    index: int
    change: SourceChange
    error: PermanentSyncError

    def indexes(self) -> list[int]:
        return [self.index]


@dataclass(slots=True)
class FifoGroup:
    """A FIFO message group's units, run one after another in batch order."""

    members: list[ResourceWork | Parking]


Unit = ResourceWork | Parking
Task = ResourceWork | Parking | FifoGroup


def plan(changes: Sequence[SourceChange]) -> tuple[list[Task], list[tuple[int, Exception]]]:
    """The batch's tasks in batch order, and the changes whose parsing hit a bug (by index).

    A resource's changes make one unit, placed at its first change; a FIFO group keeps its own
    order, so a resource is coalesced within its group only, and the group's units make one task."""
    units: list[Unit] = []
    works: dict[tuple[str | None, str, str], ResourceWork] = {}
    broken: list[tuple[int, Exception]] = []
    for index, change in enumerate(changes):
        group = change.position.message_group_id
        try:
            parsed = parse(index, change)
        except PermanentSyncError as error:
            units.append(Parking(group, index, change, error))
            continue
        except Exception as error:  # noqa: BLE001 - a bug in parsing: this record goes back
            broken.append((index, error))
            continue
        key = (group, parsed.record.integration_configuration_id, parsed.record.resource_id)
        work = works.get(key)
        if work is None:
            work = works[key] = ResourceWork(group)
            units.append(work)
        work.changes.append(parsed)
    return _tasks(units), broken


def parse(index: int, change: SourceChange) -> ParsedChange:
    if change.decode_error is not None or change.item is None:
        raise InvalidRecordError(change.decode_error or "the change carries no record")
    record = parse_partner_record(change.item, json_ready=change.json_ready, removed=change.removed)
    version: VersionKey | None = None
    stream = change.position.kind == "dynamodb-stream"
    if change.removed and stream:
        # A REMOVE carries the old image: its ``version`` is the state the deletion ends, so
        # the deletion is ordered by its sequence number (else it would be as old as that state).
        version = sequence_version(change.position.item_identifier)
    elif record.version is not None:
        version = partner_version(record.version)
    elif stream:
        version = sequence_version(change.position.item_identifier)
    return ParsedChange(index, change, record, version)


def _tasks(units: list[Unit]) -> list[Task]:
    """One task per unit; a FIFO group's units make one task, run in batch order and stopping at the
    group's first failure, as SQS FIFO would have it (nothing behind it is sent or parked now)."""
    tasks: list[Task] = []
    groups: dict[str, FifoGroup] = {}
    for unit in units:
        if unit.group is None:
            tasks.append(unit)
            continue
        fifo = groups.get(unit.group)
        if fifo is None:
            fifo = groups[unit.group] = FifoGroup([])
            tasks.append(fifo)
        fifo.members.append(unit)
    return tasks
