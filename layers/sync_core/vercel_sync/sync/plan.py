"""A batch's plan: its changes parsed, coalesced per resource, grouped per FIFO group. Pure."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, get_args

from vercel_sync.changes import SourceChange
from vercel_sync.errors import InvalidRecordError, PermanentSyncError, TransientSyncError
from vercel_sync.mapping import NotAResourceError, PartnerMapping, default_mapping
from vercel_sync.partner_schema import PartnerRecord
from vercel_sync.sync_state import VersionKey, partner_version, sequence_version
from vercel_sync.transform import parse_partner_record

Outcome = Literal["imported", "unchanged", "stale", "coalesced", "parked", "ignored"]


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

    changes: list[ParsedChange]

    def indexes(self) -> list[int]:
        return [c.index for c in self.changes]

    def newest(self) -> ParsedChange:
        """By ``version`` when every change has one (later in the batch wins a tie), else the last."""
        versions = [c.version for c in self.changes]
        if all(v is not None and v.kind == "partner" for v in versions):
            return max(self.changes, key=lambda c: (c.version.value if c.version else 0, c.index))
        return self.changes[-1]


@dataclass(slots=True)
class Parking:
    """A unit of work: a record that can never make a payload, to park."""

    index: int
    change: SourceChange
    error: PermanentSyncError

    def indexes(self) -> list[int]:
        return [self.index]


@dataclass(slots=True)
class Broken:
    """A unit of work: a change whose parsing hit a bug; it goes back to its source (its FIFO group stops)."""

    index: int
    change: SourceChange
    error: Exception

    def indexes(self) -> list[int]:
        return [self.index]


@dataclass(slots=True)
class Ignored:
    """A unit of work: an item the mapping says is not a resource (done, counted, never a failure)."""

    index: int
    change: SourceChange

    def indexes(self) -> list[int]:
        return [self.index]


Unit = ResourceWork | Parking | Broken | Ignored
Task = Unit | list[Unit]  # a list: a FIFO group's units, run in batch order up to its first failure


def plan(changes: Sequence[SourceChange], mapping: PartnerMapping | None = None) -> list[Task]:
    """The batch's tasks in batch order (docs/architecture.md, step 2), each item read through ``mapping``
    (by default the default mapping). A resource's unit stands at its first change; a FIFO group's at its first unit."""
    mapping = mapping or default_mapping()
    tasks: list[Task] = []
    groups: dict[str, list[Unit]] = {}
    works: dict[tuple[str | None, str, str], ResourceWork] = {}
    for index, change in enumerate(changes):
        group = change.position.message_group_id
        unit: Unit
        try:
            parsed = parse(index, change, mapping)
        except NotAResourceError:
            unit = Ignored(index, change)
        except PermanentSyncError as error:
            unit = Parking(index, change, error)
        except Exception as error:  # noqa: BLE001 - a bug in parsing: this record goes back
            unit = Broken(index, change, error)
        else:
            key = (group, parsed.record.integration_configuration_id, parsed.record.resource_id)
            if key in works:
                works[key].changes.append(parsed)
                continue
            unit = works[key] = ResourceWork([parsed])
        if group is None:
            tasks.append(unit)
        elif group in groups:
            groups[group].append(unit)
        else:
            tasks.append(groups.setdefault(group, [unit]))
    return tasks


def parse(index: int, change: SourceChange, mapping: PartnerMapping) -> ParsedChange:
    """The change's parsed record; :class:`NotAResourceError` when the mapping leaves the item out."""
    if change.decode_error is not None or change.item is None:
        raise InvalidRecordError(change.decode_error or "the change carries no record")
    record = parse_partner_record(change.item, json_ready=change.json_ready, removed=change.removed, mapping=mapping)
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
