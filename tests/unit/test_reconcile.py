"""Reconciliation's comparison (pure) and its run over fakes: the four kinds, repairs and orphans."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pytest

from tests.fakes import DB_PASSWORD, FakeSecrets, FakeVercel
from vercel_sync.backfill.checkpoints import BackfillError
from vercel_sync.backfill.engine import OutboundMessage, Page, ScannedItem
from vercel_sync.errors import PermanentSyncError, TransientSyncError
from vercel_sync.mapping import default_mapping
from vercel_sync.reconcile.compare import compare_installation, differing_fields
from vercel_sync.reconcile.engine import Reconcile, ReconcileOptions, new_state
from vercel_sync.reconcile.partner import PartnerResource, PartnerView, read_partner_view

BODY: dict[str, Any] = {
    "productId": "postgres",
    "name": "orders-db",
    "status": "ready",
    "metadata": {"region": "iad1"},
    "billingPlan": {"id": "plan_small", "type": "subscription", "name": "Small"},
    "secrets": [{"name": "PGPASSWORD", "value": "never-compared"}],
}
HELD: dict[str, Any] = {
    "id": "res_1",
    "internalId": "res_1",
    "partnerId": "orders",
    "productId": "postgres",
    "name": "orders-db",
    "status": "ready",
    "metadata": {"region": "iad1"},
    "billingPlanId": "plan_small",
    "secrets": [{"name": "PGPASSWORD"}],
}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"name": "renamed"}, "name"),
        ({"status": "suspended"}, "status"),
        ({"productId": "redis"}, "productId"),
        ({"billingPlanId": "plan_large"}, "billingPlan"),
        ({"metadata": {"region": "fra1"}}, "metadata"),
        ({"secrets": [{"name": "PGUSER"}]}, "secrets"),
    ],
)
def test_each_compared_field_alone_makes_a_resource_different(change: dict[str, Any], field: str) -> None:
    assert differing_fields(BODY, HELD) == ()
    assert differing_fields(BODY, {**HELD, **change}) == (field,)


def test_secret_names_are_not_compared_when_vercel_reports_no_secrets() -> None:
    held = {key: value for key, value in HELD.items() if key != "secrets"}
    assert differing_fields(BODY, held) == ()


def test_the_four_kinds_and_removals_by_mode() -> None:
    expected: dict[str, Mapping[str, Any] | None] = {
        "orders": BODY,
        "missing": BODY,
        "changed": BODY,
        "removed": {**BODY, "status": "uninstalled"},
        "removed-and-gone": {**BODY, "status": "uninstalled"},
    }
    held = [
        HELD,
        {**HELD, "partnerId": "changed", "name": "old"},
        {**HELD, "partnerId": "removed", "status": "uninstalled"},
        {**HELD, "partnerId": "stray"},
        {**HELD, "partnerId": "stray-uninstalled", "status": "uninstalled"},
    ]
    kinds = {f.resource_id: f.kind for f in compare_installation("icfg", expected, held).findings}
    assert kinds == {
        "orders": "in_step",
        "missing": "missing",
        "changed": "different",
        "removed": "in_step",
        "removed-and-gone": "in_step",
        "stray": "orphaned",
        "stray-uninstalled": "in_step",
    }
    in_delete_mode = compare_installation("icfg", expected, held, removal_mode="delete")
    deleted_kinds = {f.resource_id: f.kind for f in in_delete_mode.findings}
    assert deleted_kinds["removed"] == deleted_kinds["stray-uninstalled"] == "orphaned"
    assert in_delete_mode.counts() == {"in_step": 2, "missing": 1, "different": 1, "orphaned": 3}


class ListingVercel(FakeVercel):
    def __init__(self, held: list[dict[str, Any]]) -> None:
        super().__init__()
        self.held = held
        self.lists = 0

    def list_resources(self, integration_configuration_id: str, *, token: str) -> list[dict[str, Any]]:
        self.lists += 1
        return self.held


class Sink:
    def __init__(self) -> None:
        self.sent: list[OutboundMessage] = []

    def send_batch(self, messages: Any) -> None:
        self.sent.extend(messages)


def partner_view(*resource_ids: str) -> PartnerView:
    entries = {
        rid: PartnerResource({**BODY}, OutboundMessage("icfg", rid, "{}", f"icfg/{rid}", "d")) for rid in resource_ids
    }
    return PartnerView(resources={"icfg": entries})


def test_a_dry_run_changes_nothing_and_apply_repairs_and_removes_only_when_asked() -> None:
    held = [HELD, {**HELD, "partnerId": "changed", "name": "old"}, {**HELD, "partnerId": "stray"}]
    view = partner_view("orders", "changed", "missing")

    vercel, sink = ListingVercel(held), Sink()
    dry = Reconcile(new_state("r1", ["icfg"]), view, vercel, FakeSecrets(), ReconcileOptions(), sink=sink).run()
    assert dry[0].report.counts() == {"in_step": 1, "missing": 1, "different": 1, "orphaned": 1}
    assert (sink.sent, vercel.calls) == ([], [])

    applied = Reconcile(
        new_state("r2", ["icfg"]), view, vercel, FakeSecrets(), ReconcileOptions(apply=True), sink=sink
    ).run()
    assert sorted(m.resource_id for m in sink.sent) == ["changed", "missing"]
    assert (applied[0].repairs_sent, applied[0].orphans_removed, vercel.calls) == (2, 0, [])

    options = ReconcileOptions(remove_orphans=True, removal_mode="delete")
    removed = Reconcile(new_state("r3", ["icfg"]), view, vercel, FakeSecrets(), options).run()
    assert [(c.resource_id, c.method) for c in vercel.calls] == [("stray", "DELETE")]
    assert removed[0].orphans_removed == 1


def test_an_orphan_is_imported_uninstalled_in_the_default_mode() -> None:
    vercel = ListingVercel([{**HELD, "partnerId": "stray", "name": "stray-db"}])
    options = ReconcileOptions(remove_orphans=True)
    Reconcile(new_state("r", ["icfg"]), PartnerView(), vercel, FakeSecrets(), options).run()
    assert [c.body for c in vercel.calls] == [{"productId": "postgres", "name": "stray-db", "status": "uninstalled"}]


def test_a_resumed_run_skips_finished_installations_and_retries_failed_ones() -> None:
    state = new_state("r", ["icfg", "icfg_b"])
    state.done["icfg"] = {"installationId": "icfg"}
    vercel = ListingVercel([])
    saved: list[list[str]] = []

    class Store:
        def save(self, current: Any) -> None:
            saved.append(sorted(current.done))

    Reconcile(state, PartnerView(), vercel, FakeSecrets(), ReconcileOptions(), checkpoints=Store()).run()
    assert vercel.lists == 1
    assert saved == [["icfg", "icfg_b"]]


class Table:
    """A partner table of one page."""

    def __init__(self, items: list[dict[str, Any]]) -> None:
        self.items = items

    def approximate_item_count(self) -> int:
        return len(self.items)

    def scan_page(self, segment: int, total_segments: int, start_key: Any, limit: int) -> Page:
        return Page([ScannedItem({"k": {"S": str(i)}}, item) for i, item in enumerate(self.items)], None)


def partner_item(resource_id: str, **fields: Any) -> dict[str, Any]:
    return {
        "integrationConfigurationId": "icfg",
        "resourceId": resource_id,
        "productId": "postgres",
        "name": "orders-db",
        "status": "ready",
        **fields,
    }


@pytest.mark.parametrize(
    "item",
    [
        # The sync would park it: a secret outside the installation's folder.
        partner_item("orders", secretsArn="partner/resources/icfg_other/db"),
        # The sync would park it: a field the record model refuses.
        partner_item("orders", status=7),
        # The backfill cannot send it: over SQS's message size.
        partner_item("orders", metadata={"notes": "x" * (260 * 1024)}),
    ],
    ids=["foreign-secret", "invalid-field", "too-big-to-send"],
)
@pytest.mark.parametrize("removal_mode", ["uninstalled", "delete"])
def test_a_resource_the_partner_holds_but_the_run_cannot_read_is_never_an_orphan(
    item: dict[str, Any], removal_mode: Any
) -> None:
    view = read_partner_view(
        Table([item]), table_name="partner", queue_url="-", mapping=default_mapping(), secrets=FakeSecrets()
    )
    vercel = ListingVercel([{**HELD, "partnerId": "orders"}])
    options = ReconcileOptions(remove_orphans=True, removal_mode=removal_mode)
    (outcome,) = Reconcile(new_state("r", ["icfg"]), view, vercel, FakeSecrets(), options).run()
    assert vercel.calls == []
    assert (outcome.report.counts()["orphaned"], outcome.orphans_removed, outcome.unreadable) == (0, 0, 1)


@pytest.mark.parametrize(
    "listed",
    [
        {k: v for k, v in HELD.items() if k != "partnerId"},  # ``id`` alone: in the list it is not the partner's
        {**HELD, "partnerId": None},
        {**HELD, "partnerId": 7},
    ],
    ids=["id-only", "null", "number"],
)
def test_a_listed_resource_without_a_partner_id_is_neither_compared_nor_removed(listed: dict[str, Any]) -> None:
    vercel = ListingVercel([listed])
    options = ReconcileOptions(remove_orphans=True)
    (outcome,) = Reconcile(new_state("r", ["icfg"]), PartnerView(), vercel, FakeSecrets(), options).run()
    assert (outcome.report.findings, vercel.calls) == ([], [])


def test_an_orphan_the_partner_created_after_the_view_was_read_is_not_removed() -> None:
    """The view is read once, when the run starts; an installation may be reached long after. Before a
    removal the partner table is read again for that installation: what it holds now stays."""
    vercel = ListingVercel([{**HELD, "partnerId": "late"}, {**HELD, "partnerId": "stray"}])
    rereads: list[str] = []

    def reread(installation_id: str) -> PartnerView:
        rereads.append(installation_id)
        return partner_view("late")

    options = ReconcileOptions(remove_orphans=True, removal_mode="delete")
    state = new_state("r", ["icfg"])
    (outcome,) = Reconcile(state, PartnerView(), vercel, FakeSecrets(), options, reread=reread).run()
    assert [(c.resource_id, c.method) for c in vercel.calls] == [("stray", "DELETE")]
    assert (rereads, outcome.orphans_removed) == (["icfg"], 1)


def test_no_orphan_is_removed_when_the_partner_table_cannot_be_read_again() -> None:
    def reread(installation_id: str) -> PartnerView:
        raise TransientSyncError("ProvisionedThroughputExceededException")

    vercel = ListingVercel([{**HELD, "partnerId": "stray"}])
    options = ReconcileOptions(remove_orphans=True, removal_mode="delete")
    (outcome,) = Reconcile(new_state("r", ["icfg"]), PartnerView(), vercel, FakeSecrets(), options, reread=reread).run()
    assert vercel.calls == []
    assert outcome.report.error is not None
    assert "ProvisionedThroughputExceededException" in outcome.report.error


def test_a_queue_that_refuses_repairs_fails_that_installation_only() -> None:
    class RefusingSink:
        def send_batch(self, messages: Any) -> None:
            raise BackfillError("SQS refused 1 message(s) of a batch (AccessDenied)")

    vercel = ListingVercel([])
    view = PartnerView(resources={**partner_view("missing").resources, "icfg_b": partner_view("x").resources["icfg"]})
    state = new_state("r", ["icfg", "icfg_b"])
    options = ReconcileOptions(apply=True)
    outcomes = Reconcile(state, view, vercel, FakeSecrets(), options, sink=RefusingSink()).run()
    assert [o.report.installation_id for o in outcomes] == ["icfg", "icfg_b"]
    assert all("AccessDenied" in (o.report.error or "") for o in outcomes)
    assert state.pending == ["icfg", "icfg_b"]  # tried again on resume


def test_an_installation_whose_token_is_missing_is_reported_not_compared_and_the_run_goes_on() -> None:
    class NoToken(FakeSecrets):
        def installation_token(self, integration_configuration_id: str, *, force_fetch: bool = False) -> str:
            if integration_configuration_id == "icfg_gone":
                raise PermanentSyncError("cannot read secret: ResourceNotFoundException", reason="token_unavailable")
            return super().installation_token(integration_configuration_id, force_fetch=force_fetch)

    vercel = ListingVercel([{**HELD, "partnerId": "stray"}])
    state = new_state("r", ["icfg_gone", "icfg"])
    options = ReconcileOptions(remove_orphans=True)
    outcomes = Reconcile(state, PartnerView(), vercel, NoToken(), options).run()
    errors = {o.report.installation_id: o.report.error for o in outcomes}
    assert errors["icfg"] is None
    assert "ResourceNotFoundException" in (errors["icfg_gone"] or "")
    assert state.pending == ["icfg_gone"]


def test_the_partner_view_keeps_secret_names_and_never_their_values() -> None:
    item = {**partner_item("db_primary"), "integrationConfigurationId": "icfg_1"}
    item["secretsArn"] = "partner/resources/icfg_1/db_primary"
    view = read_partner_view(
        Table([item]), table_name="partner", queue_url="-", mapping=default_mapping(), secrets=FakeSecrets()
    )
    body = view.resources["icfg_1"]["db_primary"].body
    assert sorted(secret["name"] for secret in body["secrets"]) == ["DATABASE_URL", "PGPASSWORD"]
    assert DB_PASSWORD not in json.dumps(view.resources, default=repr)


@pytest.mark.parametrize("order", [1, -1], ids=["newest-last", "newest-first"])
def test_two_items_of_one_resource_compare_by_the_newer_version_whatever_the_scan_order(order: int) -> None:
    """A table keeping a row per version: the sync applies the newest, so the run compares with it."""
    rows = [
        partner_item("orders", version=1),
        partner_item("orders", version=2, deleted=True),
        partner_item("orders", version=3, name="orders-v3"),
    ][::order]
    view = read_partner_view(
        Table(rows), table_name="partner", queue_url="-", mapping=default_mapping(), secrets=FakeSecrets()
    )
    vercel = ListingVercel([{"partnerId": "orders", "productId": "postgres", "name": "orders-v3", "status": "ready"}])
    options = ReconcileOptions(remove_orphans=True, removal_mode="delete")
    (outcome,) = Reconcile(new_state("r", ["icfg"]), view, vercel, FakeSecrets(), options).run()
    assert (view.expected("icfg")["orders"]["name"], vercel.calls) == ("orders-v3", [])
    assert outcome.report.counts()["in_step"] == 1


@pytest.mark.parametrize("versions", [(None, None), (4, 4), (4, None)], ids=["none", "equal", "one"])
def test_two_items_of_one_resource_that_no_version_orders_are_not_compared(versions: tuple[Any, Any]) -> None:
    rows = [
        partner_item("orders", **({} if versions[0] is None else {"version": versions[0]})),
        partner_item("orders", deleted=True, **({} if versions[1] is None else {"version": versions[1]})),
    ]
    for ordered in (rows, rows[::-1]):
        view = read_partner_view(
            Table(ordered), table_name="partner", queue_url="-", mapping=default_mapping(), secrets=FakeSecrets()
        )
        vercel = ListingVercel([{**HELD, "partnerId": "orders"}])
        options = ReconcileOptions(remove_orphans=True, removal_mode="delete")
        (outcome,) = Reconcile(new_state("r", ["icfg"]), view, vercel, FakeSecrets(), options).run()
        assert (outcome.report.findings, outcome.unreadable, vercel.calls) == ([], 1, [])
