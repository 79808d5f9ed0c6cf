"""The partner mapping engine: every kind of source, condition, removal form and version, applied to items."""

from __future__ import annotations

import subprocess
import sys
from decimal import Decimal
from typing import Any

import pytest

from vercel_sync.errors import InvalidRecordError
from vercel_sync.mapping import NOT_A_RESOURCE, NotAResourceError, PartnerMapping, default_mapping, parse_mapping
from vercel_sync.transform import build_import_body, parse_partner_record

MAPPING = """
schemaVersion: 1
resources:
  - {attribute: entityType, equals: DATABASE}
  - {attribute: pk, startsWith: "RES#"}
fields:
  integrationConfigurationId: {attribute: installation.id}
  resourceId: {attribute: id}
  productId: {constant: prod_postgres}
  name: {template: "{attrs.region}/{displayName}"}
  status: {attribute: state, words: {ready: [active, live], suspended: [paused]}}
  billingPlan: {attribute: plan, plans: {pro: {id: pro, type: subscription, name: Pro}}}
  metadata:
    attributes:
      region: attrs.region
      tier: {attribute: plan, type: string}
      nodes: {attribute: attrs.nodes, type: number}
      ha: {attribute: attrs.ha, type: boolean}
      firstZone: attrs.zones.0
  secretsArn: {attribute: secrets.arn}
version: {attribute: updatedAt}
removal:
  - {attribute: deletedAt, present: true}
  - {attribute: state, equals: deleted}
  - {flag: gone}
"""


def item(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "pk": "RES#db-1",
        "entityType": "DATABASE",
        "installation": {"id": "icfg_1"},
        "id": "db-1",
        "displayName": "orders",
        "state": "live",
        "plan": "pro",
        "attrs": {"region": "iad1", "nodes": "3", "ha": "true", "zones": ["a", "b"]},
        "updatedAt": "2026-11-26T10:00:00Z",
    }
    return {**base, **changes}


@pytest.fixture(scope="module")
def mapping() -> PartnerMapping:
    return parse_mapping(MAPPING, "mapping.yaml")


def test_each_field_from_its_source(mapping: PartnerMapping) -> None:
    record = parse_partner_record(item(), mapping=mapping)
    body = build_import_body(record)[1]

    assert (record.integration_configuration_id, record.resource_id) == ("icfg_1", "db-1")
    assert body == {
        "productId": "prod_postgres",
        "name": "iad1/orders",
        "status": "ready",
        "billingPlan": {"id": "pro", "type": "subscription", "name": "Pro"},
        "metadata": {"region": "iad1", "tier": "pro", "nodes": 3, "ha": True, "firstZone": "a"},
    }
    assert str(record.version) == "2026-11-26 10:00:00+00:00"


def test_a_nested_path_into_maps_and_lists(mapping: PartnerMapping) -> None:
    record = parse_partner_record(item(secrets={"arn": "arn:aws:secretsmanager:x"}), mapping=mapping)
    assert record.secrets_arn == "arn:aws:secretsmanager:x"
    # A path past the end of a list, or through a missing key, is an attribute the item does not have.
    metadata = parse_partner_record(item(attrs={"region": "iad1", "zones": []}), mapping=mapping).metadata
    assert metadata == {"region": "iad1", "tier": "pro"}


@pytest.mark.parametrize(("word", "status"), [("live", "ready"), (" ACTIVE ", "ready"), ("paused", "suspended")])
def test_status_words_are_the_mappings_own(mapping: PartnerMapping, word: str, status: str) -> None:
    assert parse_partner_record(item(state=word), mapping=mapping).vercel_status == status


def test_vercel_words_always_mean_themselves(mapping: PartnerMapping) -> None:
    assert parse_partner_record(item(state="onboarding"), mapping=mapping).vercel_status == "onboarding"


def test_an_unknown_status_word_is_an_invalid_record_naming_it(mapping: PartnerMapping) -> None:
    # "running" means ready by the default mapping, not by this one.
    with pytest.raises(InvalidRecordError, match="unknown partner status 'running'"):
        parse_partner_record(item(state="running"), mapping=mapping)


def test_an_unknown_plan_is_an_invalid_record_naming_it(mapping: PartnerMapping) -> None:
    with pytest.raises(InvalidRecordError, match="billingPlan: unknown plan 'enterprise'; expected one of: pro"):
        parse_partner_record(item(plan="enterprise"), mapping=mapping)


@pytest.mark.parametrize(
    ("attrs", "reason"),
    [
        ({"region": "iad1", "nodes": "three"}, "metadata.nodes: not a number"),
        ({"region": "iad1", "ha": "maybe"}, "metadata.ha: not a boolean"),
        ({"nodes": 3}, "name: the template's attribute 'attrs.region' is missing"),
        ({"region": {"x": 1}}, "name: the template's attribute 'attrs.region' is not text"),
    ],
)
def test_metadata_types_and_templates_refuse_what_they_cannot_make(
    mapping: PartnerMapping, attrs: dict[str, Any], reason: str
) -> None:
    with pytest.raises(InvalidRecordError, match=reason):
        parse_partner_record(item(attrs=attrs), mapping=mapping)


def test_metadata_typing_of_numbers_and_booleans(mapping: PartnerMapping) -> None:
    attrs = {"region": "iad1", "nodes": Decimal("2.5"), "ha": False}
    assert parse_partner_record(item(attrs=attrs, plan="pro"), mapping=mapping).metadata == {
        "region": "iad1",
        "tier": "pro",
        "nodes": 2.5,
        "ha": False,
    }


@pytest.mark.parametrize(
    "changes",
    [
        {"entityType": "PROFILE"},
        {"pk": "PROFILE#settings"},
        {"pk": 7},
        {"entityType": None},
    ],
)
def test_items_the_predicate_leaves_out_are_not_resources(mapping: PartnerMapping, changes: dict[str, Any]) -> None:
    assert mapping.apply(item(**changes)) is NOT_A_RESOURCE
    with pytest.raises(NotAResourceError):
        parse_partner_record(item(**changes), mapping=mapping)


def test_a_removed_item_is_checked_by_the_predicate_too(mapping: PartnerMapping) -> None:
    assert mapping.apply(item(entityType="PROFILE"), removed=True) is NOT_A_RESOURCE


@pytest.mark.parametrize(
    "changes",
    [{"deletedAt": "2026-11-26T11:00:00Z"}, {"state": "deleted"}, {"gone": True}],
)
def test_each_removal_form_imports_uninstalled(mapping: PartnerMapping, changes: dict[str, Any]) -> None:
    record = parse_partner_record(item(**changes), mapping=mapping)
    assert record.deleted is True
    assert build_import_body(record)[1]["status"] == "uninstalled"


@pytest.mark.parametrize("changes", [{"deletedAt": None}, {"gone": False}, {"state": "paused"}])
def test_what_does_not_mark_a_removal(mapping: PartnerMapping, changes: dict[str, Any]) -> None:
    assert parse_partner_record(item(**changes), mapping=mapping).deleted is False


def test_a_flag_that_is_not_a_boolean_is_an_invalid_record(mapping: PartnerMapping) -> None:
    with pytest.raises(InvalidRecordError, match="deleted: Input should be a valid boolean"):
        parse_partner_record(item(gone="yes"), mapping=mapping)


def test_a_stream_remove_imports_uninstalled_whatever_the_status_word(mapping: PartnerMapping) -> None:
    record = parse_partner_record(item(state="melting"), mapping=mapping, removed=True)
    assert build_import_body(record, removed=True)[1]["status"] == "uninstalled"


def test_equals_keeps_booleans_apart_from_numbers() -> None:
    mapping = parse_mapping(MAPPING.replace("equals: DATABASE", "equals: 1"), "m.yaml")
    assert mapping.apply(item(entityType=Decimal(1))) is not NOT_A_RESOURCE
    assert mapping.apply(item(entityType=True)) is NOT_A_RESOURCE


@pytest.mark.parametrize(("value", "version"), [(Decimal(7), "7"), (2.5, "2.5"), ("2026-11-26T10:00:00", None)])
def test_the_version_attribute_holds_a_number_or_an_iso_time(
    mapping: PartnerMapping, value: Any, version: str | None
) -> None:
    parsed = parse_partner_record(item(updatedAt=value), mapping=mapping).version
    assert str(parsed) == (version or "2026-11-26 10:00:00+00:00")


def test_the_stream_order_as_version() -> None:
    mapping = parse_mapping(MAPPING.replace("version: {attribute: updatedAt}", "version: {streamOrder: true}"), "m")
    assert parse_partner_record(item(version=3), mapping=mapping).version is None


def test_a_constant_and_the_attributes_the_mapping_reads(mapping: PartnerMapping) -> None:
    assert mapping.source_attributes == {
        "pk", "entityType", "installation", "id", "displayName", "state", "plan", "attrs",
        "secrets", "updatedAt", "deletedAt", "gone",
    }  # fmt: skip


def test_the_default_mapping_reads_todays_record_fields() -> None:
    assert default_mapping().source_attributes == {
        "integrationConfigurationId", "resourceId", "productId", "name", "status", "ownership", "metadata",
        "billingPlan", "notification", "extras", "secretsArn", "secretsPrefix", "version", "deleted",
    }  # fmt: skip


def test_the_engine_is_pure_core() -> None:
    code = (
        "import sys, vercel_sync.mapping; print(sorted(m for m in ('boto3', 'botocore', 'httpx') if m in sys.modules))"
    )
    command = [sys.executable, "-c", code]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout  # noqa: S603 - this interpreter

    assert out.strip() == "[]"


@pytest.mark.parametrize("nodes", ["9" * 5000, "1e400", "1e999999999", "-1e309"])
def test_a_metadata_number_beyond_what_vercel_holds_is_invalid_not_a_crash(mapping: PartnerMapping, nodes: str) -> None:
    """Vercel reads JSON numbers as doubles: a larger one is an invalid record, never a huge integer that
    fails later (a bug: the record would go back to its source again and again) or takes the memory."""
    attrs = {"region": "iad1", "nodes": nodes, "ha": "true", "zones": ["a"]}
    with pytest.raises(InvalidRecordError, match=r"metadata\.nodes: not a number"):
        parse_partner_record(item(attrs=attrs), mapping=mapping)


@pytest.mark.parametrize("changes", [{"state": "z" * 1_000_000}, {"plan": "z" * 1_000_000}])
def test_an_unknown_word_is_named_but_a_huge_one_is_cut(mapping: PartnerMapping, changes: dict[str, Any]) -> None:
    """The reason is logged whole (the failed record cuts its copy): a megabyte word made a megabyte line."""
    with pytest.raises(InvalidRecordError) as raised:
        parse_partner_record(item(**changes), mapping=mapping)
    assert "'zzzzzzzzzz" in raised.value.message
    assert len(raised.value.message) < 1_000


# ---------------------------------------------------------------- what mutation testing found untested

SMALL = """
schemaVersion: 1
fields:
  integrationConfigurationId: {attribute: inst}
  resourceId: {attribute: id}
  productId: {constant: p}
  name: {template: "{label}"}
  status: {attribute: state, words: {ready: [" Live "]}}
  billingPlan: {attribute: plan, plans: {pro: {id: pro, type: subscription, name: Pro}}}
  metadata:
    attributes:
      flagText: {attribute: flag, type: string}
      flagBool: {attribute: flagWord, type: boolean}
      maybe: optional
removal:
  - {flag: archived}
  - {flag: gone}
"""


def small(**changes: Any) -> dict[str, Any]:
    return {"inst": "icfg_1", "id": "r1", "label": "orders", "state": "live", **changes}


def small_body(**changes: Any) -> dict[str, Any]:
    return build_import_body(parse_partner_record(small(**changes), mapping=parse_mapping(SMALL, "m")))[1]


@pytest.mark.parametrize("word", ["live", "LIVE", " Live "])
def test_a_word_the_mapping_spells_in_capitals_or_with_spaces_matches_any_case(word: str) -> None:
    assert small_body(state=word)["status"] == "ready"


def test_a_true_flag_removes_even_when_another_flag_is_not_a_boolean() -> None:
    """A removal wins: a bad value in one soft-delete flag must not keep a deleted resource alive."""
    assert small_body(archived="yes", gone=True)["status"] == "uninstalled"


def test_a_template_attribute_that_is_a_boolean_is_not_text() -> None:
    with pytest.raises(InvalidRecordError, match="the template's attribute 'label' is not text"):
        small_body(label=True)


def test_metadata_typed_string_and_boolean_read_booleans_and_words() -> None:
    assert small_body(flag=True, flagWord=" TRUE ")["metadata"] == {"flagText": "true", "flagBool": True}
    assert small_body(flag=False, flagWord="false")["metadata"] == {"flagText": "false", "flagBool": False}


def test_a_null_attribute_is_left_out_of_metadata_and_a_null_plan_is_no_plan() -> None:
    body = small_body(optional=None, plan=None)
    assert "metadata" not in body or "maybe" not in body["metadata"]
    assert "billingPlan" not in body


def test_a_stream_remove_imports_uninstalled_whatever_a_soft_delete_flag_holds(mapping: PartnerMapping) -> None:
    """The item is gone: a flag that is not a boolean must not park its removal (and keep the resource alive)."""
    record = parse_partner_record(item(gone="yes"), mapping=mapping, removed=True)
    assert build_import_body(record, removed=True)[1]["status"] == "uninstalled"
