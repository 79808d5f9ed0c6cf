"""The backfill through a partner mapping: which items it sends (the mapping's resources), what it
sends (the attributes the mapping reads), its filters and groups by the mapped ids; the command's mapping."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from operations.backfill_cli import partner_mapping
from vercel_sync.backfill.checkpoints import BackfillError, BackfillPlan
from vercel_sync.backfill.engine import classify
from vercel_sync.mapping import default_mapping, parse_mapping

TEXT = """
schemaVersion: 1
resources: [{attribute: sk, startsWith: "RES#"}]
fields:
  integrationConfigurationId: {attribute: tenant.installation}
  resourceId: {attribute: sk}
  productId: {attribute: kind}
  name: {attribute: label}
  status: {attribute: state}
"""
MAPPING = parse_mapping(TEXT, "test mapping")


def item(sk: str, **changes: Any) -> dict[str, Any]:
    return {
        "pk": "T#1",
        "sk": sk,
        "tenant": {"installation": "icfg_1"},
        "kind": "pg",
        "label": "x",
        "state": "live",
        **changes,
    }


def plan(**filters: Any) -> BackfillPlan:
    return BackfillPlan(table_name="t", queue_url="https://sqs/q.fifo", **filters)


def test_a_resource_item_is_sent_with_the_attributes_the_mapping_reads() -> None:
    verdict, message = classify(item("RES#db-1", unrelated="y"), plan(), MAPPING)
    assert verdict == "send"
    assert message is not None
    assert (message.installation_id, message.resource_id, message.group_id) == ("icfg_1", "RES#db-1", "icfg_1/RES#db-1")
    assert json.loads(message.body) == {key: value for key, value in item("RES#db-1").items() if key != "pk"}


def test_other_items_are_not_resources() -> None:
    assert classify(item("PROFILE#settings"), plan(), MAPPING)[0] == "not_a_resource"
    assert classify(item("RES#db-1", tenant={}), plan(), MAPPING)[0] == "not_a_resource"


def test_the_filters_compare_the_mapped_values() -> None:
    assert classify(item("RES#db-1"), plan(installation_id="icfg_1", product_id="pg"), MAPPING)[0] == "send"
    assert classify(item("RES#db-1"), plan(installation_id="icfg_2"), MAPPING)[0] == "filtered"
    assert classify(item("RES#db-1"), plan(product_id="redis"), MAPPING)[0] == "filtered"


def test_the_command_reads_the_mapping_given_else_the_environments_else_the_default(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(TEXT)
    assert partner_mapping(str(path), {}).origin == str(path)
    assert partner_mapping(None, {"PARTNER_MAPPING_FILE": str(path)}).origin == str(path)
    assert partner_mapping(None, {}) is default_mapping()
    path.write_text("schemaVersion: 2")
    with pytest.raises(BackfillError, match="line 1: schemaVersion"):
        partner_mapping(str(path), {})
