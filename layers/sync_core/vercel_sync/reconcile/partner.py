"""The partner's side of a reconcile run: the partner table read through the partner mapping, one entry
per resource with the Import Resource body its record makes and the backfill's message that repairs it."""

from __future__ import annotations

from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from typing import Any

from vercel_sync.backfill.checkpoints import INSTALLATION_FIELD, BackfillPlan
from vercel_sync.backfill.engine import ItemSource, OutboundMessage, ScannedItem, classify
from vercel_sync.errors import InvalidRecordError, PermanentSyncError
from vercel_sync.mapping import PartnerMapping
from vercel_sync.ports import SecretStore
from vercel_sync.sync_state import VersionKey, partner_version
from vercel_sync.transform import build_import_body, needs_secrets, parse_partner_record

PAGE_SIZE = 500


@dataclass(frozen=True)
class PartnerResource:
    body: dict[str, Any]  # the Import Resource body its record makes, its secrets by name only
    message: OutboundMessage  # the partner events queue message a repair sends (the backfill's)
    version: VersionKey | None = None  # the record's ``version``: of two items of one resource, the newer counts


@dataclass
class PartnerView:
    """Per installation, per partner id: what the partner holds. ``unreadable``: items the sync would
    park (an invalid record, a secret not the installation's), by installation, which cannot be compared."""

    resources: dict[str, dict[str, PartnerResource]] = field(default_factory=dict)
    unreadable: dict[str, list[str]] = field(default_factory=dict)

    def installations(self) -> list[str]:
        return sorted(set(self.resources) | set(self.unreadable))

    def expected(self, installation_id: str) -> dict[str, dict[str, Any]]:
        return {rid: entry.body for rid, entry in self.resources.get(installation_id, {}).items()}


def scan(source: ItemSource) -> Iterator[ScannedItem]:
    """Every item of the table, page by page (one segment: a reconcile run reads the table once)."""
    start = None
    while True:
        page = source.scan_page(0, 1, start, PAGE_SIZE)
        yield from page.items
        if page.last_key is None:
            return
        start = page.last_key


def read_partner_view(
    source: ItemSource,
    *,
    table_name: str,
    queue_url: str,
    mapping: PartnerMapping,
    secrets: SecretStore,
    only: Collection[str] = (),
) -> PartnerView:
    """The table's resources (only the installations in ``only``, when given)."""
    plan = BackfillPlan(table_name=table_name, queue_url=queue_url, total_segments=1)
    view = PartnerView()
    for scanned in scan(source):
        verdict, message = classify(scanned.item, plan, mapping)
        item = scanned.item
        installation, resource = mapping.text(item, INSTALLATION_FIELD), mapping.text(item, "resourceId")
        if verdict == "not_a_resource" or not installation or resource is None or (only and installation not in only):
            continue
        try:
            if message is None:  # the backfill cannot send it (too big, a number JSON cannot hold)
                raise InvalidRecordError("the record cannot be sent through the partner events queue")
            version, body = _body(scanned.item, mapping, secrets)
        except (InvalidRecordError, PermanentSyncError):
            # Held by the partner all the same: never an orphan, never removed (docs/operations.md).
            view.unreadable.setdefault(installation, []).append(resource)
            continue
        _keep(view, installation, resource, PartnerResource(body, message, version))
    return view


def _keep(view: PartnerView, installation: str, resource: str, entry: PartnerResource) -> None:
    """One entry per resource: of two items, the newer by ``version``, as the sync applies it. Two that no
    version orders are unreadable: which the sync applies depends on their order, and the scan's is none."""
    held = view.resources.setdefault(installation, {})
    other = held.get(resource)
    if other is None:
        held[resource] = entry
        return
    if entry.version is not None and other.version is not None and entry.version != other.version:
        held[resource] = entry if entry.version.newer_than(other.version) else other
        return
    del held[resource]
    view.unreadable.setdefault(installation, []).append(resource)


def _body(item: Any, mapping: PartnerMapping, secrets: SecretStore) -> tuple[VersionKey | None, dict[str, Any]]:
    """The body the sync would import for ``item``, its resource secret read as the sync reads it
    (owner checked first). A transient failure (AWS throttling) propagates: the run stops and resumes."""
    record = parse_partner_record(item, mapping=mapping)
    document = None
    if needs_secrets(record, removed=False):
        assert record.secrets_arn is not None
        installation_id = record.integration_configuration_id
        secrets.check_owner(record.secrets_arn, installation_id)
        document = secrets.resource_secrets(record.secrets_arn, installation_id=installation_id)
    _, body = build_import_body(record, secret_document=document)
    if "secrets" in body:
        # Only names compare (Vercel cannot give values back): the values are not kept for the run.
        body["secrets"] = [{"name": secret.get("name")} for secret in body["secrets"]]
    return (None if record.version is None else partner_version(record.version)), body
