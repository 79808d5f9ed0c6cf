"""A loaded partner mapping applied to one item: the partner record ``PartnerRecord`` validates, or
:data:`NOT_A_RESOURCE`. Pure: no AWS, no HTTP."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from vercel_sync.errors import InvalidRecordError
from vercel_sync.mapping.model import PLACEHOLDER, Flag, MappingDocument, MetadataSource, NameSource, PlanSource, Source
from vercel_sync.mapping.values import MISSING, holds, quoted, render, resolve, typed
from vercel_sync.payload import RESOURCE_STATUSES, BillingPlan


class NotAResource:
    """An item the mapping's ``resources`` conditions leave out: ignored, never a failure."""

    def __repr__(self) -> str:
        return "NOT_A_RESOURCE"


NOT_A_RESOURCE: Final = NotAResource()


class NotAResourceError(Exception):
    """Raised for an item that is not a resource where a record was expected: ignored, never parked."""


class PartnerMapping:
    """A validated mapping document, with what every item's mapping needs worked out once."""

    def __init__(self, document: MappingDocument, *, origin: str = "") -> None:
        self.document = document
        self.origin = origin  # where it was read from, for messages
        self.sources = document.fields.sources()
        # Vercel's own words always mean themselves; the partner's words (case-insensitive) add to them.
        self.status_table: dict[str, str] = {word: word for word in RESOURCE_STATUSES}
        for vercel_status, words in (document.fields.status.words or {}).items():
            self.status_table.update({word.strip().lower(): vercel_status for word in words})
        self.source_attributes: frozenset[str] = frozenset(_top_attributes(document))

    def is_resource(self, item: Mapping[str, Any]) -> bool:
        return all(holds(condition, item) for condition in self.document.resources)

    def text(self, item: Mapping[str, Any], name: str) -> str | None:
        """Field ``name`` of ``item`` when it is text (an id, for routing and filters), else None."""
        source = self.sources.get(name)
        try:
            value = _value(source, item, name) if source is not None else None
        except InvalidRecordError:
            return None
        return value if isinstance(value, str) else None

    def apply(self, item: Mapping[str, Any], *, removed: bool = False) -> dict[str, Any] | NotAResource:
        """The partner record of ``item`` (``removed``: a stream REMOVE's old image), before validation."""
        if not self.is_resource(item):
            return NOT_A_RESOURCE
        record: dict[str, Any] = {}
        for name, source in self.sources.items():
            value = _value(source, item, name)
            if value is not MISSING:
                record[name] = value
        version = self.document.version.attribute
        if version is not None and (value := resolve(item, version)) is not MISSING:
            record["version"] = value
        deleted = self._removal(item)
        if removed and deleted is not True:
            deleted = None  # the item is gone: a flag's bad value must not park its removal
        if deleted is not None:
            record["deleted"] = deleted
        if removed or deleted is True:
            # A removal's status is not read: an unknown word must not keep a deleted resource alive.
            record["status"] = "uninstalled"
        return record

    def _removal(self, item: Mapping[str, Any]) -> Any:
        """True when a removal form marks the item; a flag's value that is not a boolean as it is
        (the record's validation names it); None when nothing marks it."""
        marked: Any = None
        for form in self.document.removal:
            if isinstance(form, Flag):
                value = resolve(item, form.flag)
                if value is True:
                    return True
                if value is not MISSING and value is not False and marked is None:
                    marked = value
            elif holds(form, item):
                return True
        return marked


def _value(source: Source, item: Mapping[str, Any], name: str) -> Any:
    if isinstance(source, NameSource) and source.template is not None:
        return render(source.template, item, name)
    if isinstance(source, MetadataSource) and source.attributes is not None:
        return _metadata(source.attributes, item)
    if source.attribute is None:
        return source.constant
    value = resolve(item, source.attribute)
    if isinstance(source, PlanSource) and source.plans is not None and value is not MISSING and value is not None:
        return _plan(source.plans, value, name)
    return value


def _plan(plans: Mapping[str, BillingPlan], value: Any, name: str) -> dict[str, Any]:
    plan = plans.get(str(value)) if isinstance(value, str | int) and not isinstance(value, bool) else None
    if plan is None:
        known = ", ".join(sorted(plans))
        raise InvalidRecordError(
            f"invalid partner record: {name}: unknown plan {quoted(value)}; expected one of: {known}"
        )
    return plan.model_dump(exclude_unset=True)


def _metadata(entries: Mapping[str, Any], item: Mapping[str, Any]) -> dict[str, Any]:
    metadata = {}
    for key, entry in entries.items():
        path, kind = (entry, None) if isinstance(entry, str) else (entry.attribute, entry.type)
        value = resolve(item, path)
        if value is not MISSING and value is not None:
            metadata[key] = typed(value, kind, key)
    return metadata


def _top_attributes(document: MappingDocument) -> set[str]:
    """The item's top-level attributes the mapping reads (what a failed record and the backfill keep)."""
    paths: list[str] = []
    for source in document.fields.sources().values():
        if source.attribute is not None:
            paths.append(source.attribute)
        if isinstance(source, NameSource) and source.template is not None:
            paths.extend(PLACEHOLDER.findall(source.template))
        if isinstance(source, MetadataSource):
            paths.extend(
                entry if isinstance(entry, str) else entry.attribute for entry in (source.attributes or {}).values()
            )
    if document.version.attribute is not None:
        paths.append(document.version.attribute)
    for form in [*document.resources, *document.removal]:
        paths.append(form.flag if isinstance(form, Flag) else form.attribute)
    return {path.split(".", 1)[0] for path in paths}
