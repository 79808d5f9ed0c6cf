"""The stream filter made of a mapping's ``resources`` conditions: the pattern, the command that prints
it, and the template that passes it to the stream trigger (and grants the mapping's parameter only)."""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path
from typing import Any

from cfnlint.decode.cfn_yaml import loads

from operations import filter_pattern
from vercel_sync.mapping import default_mapping, parse_mapping
from vercel_sync.mapping.stream_filter import stream_filter_pattern

ROOT = Path(__file__).resolve().parents[2]
FIELDS = """
fields:
  integrationConfigurationId: {attribute: installation}
  resourceId: {attribute: id}
  productId: {constant: p}
  name: {attribute: name}
  status: {attribute: state}
"""


def pattern_of(resources: str) -> tuple[Any, list[str]]:
    return stream_filter_pattern(parse_mapping(f"schemaVersion: 1\nresources:\n{resources}{FIELDS}", "m.yaml"))


def both_images(image: dict[str, Any]) -> dict[str, Any]:
    return {"$or": [{"dynamodb": {"NewImage": image}}, {"dynamodb": {"OldImage": image}}]}


def test_equals_and_starts_with_on_typed_attributes_of_either_image() -> None:
    pattern, left_out = pattern_of(
        "  - {attribute: entityType, equals: DATABASE}\n"
        "  - {attribute: pk, startsWith: 'RES#'}\n"
        "  - {attribute: active, equals: true}\n"
        "  - {attribute: tier, equals: 2}\n"
        "  - {attribute: meta.kind, equals: db}\n"
    )
    assert pattern == both_images(
        {
            "entityType": {"S": ["DATABASE"]},
            "pk": {"S": [{"prefix": "RES#"}]},
            "active": {"BOOL": [True]},
            "meta": {"M": {"kind": {"S": ["db"]}}},
        }
    )
    assert [note.split(":")[0] for note in left_out] == ["resources.3 (tier)"]  # a number: see below


def test_what_a_filter_cannot_say_is_left_out_and_named() -> None:
    pattern, left_out = pattern_of(
        "  - {attribute: kind, equals: db}\n"
        "  - {attribute: deletedAt, present: false}\n"
        "  - {attribute: tags.0, equals: x}\n"
        "  - {attribute: kind, startsWith: d}\n"
        "  - {attribute: spec, equals: {a: 1}}\n"
    )
    assert pattern == both_images({"kind": {"S": ["db"]}})
    assert [note.split(":")[0] for note in left_out] == [
        "resources.1 (deletedAt)",
        "resources.2 (tags.0)",
        "resources.3 (kind)",
        "resources.4 (spec)",
    ]


def test_a_number_is_left_out_as_a_stream_carries_it_as_text() -> None:
    """A stream image holds a number as text (``{"N": "2"}``); a ``numeric`` rule matches JSON numbers
    only, so it would drop every item it should let through: the engine checks numbers instead."""
    pattern, left_out = pattern_of("  - {attribute: tier, equals: 2}\n  - {attribute: ratio, equals: 0.5}\n")
    assert pattern is None
    assert [note.split(":")[0] for note in left_out] == ["resources.0 (tier)", "resources.1 (ratio)"]
    assert "as text" in left_out[0]


def test_no_conditions_no_filter() -> None:
    assert stream_filter_pattern(default_mapping()) == (None, [])


def run(mapping: Path) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = filter_pattern.run(argparse.Namespace(mapping=str(mapping)), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def test_the_command_prints_one_line_of_json(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text("schemaVersion: 1\nresources: [{attribute: t, equals: x}, {attribute: d, present: true}]" + FIELDS)
    code, out, err = run(path)
    assert code == 0
    assert json.loads(out) == both_images({"t": {"S": ["x"]}})
    assert out.count("\n") == 1
    assert "left out of the filter: resources.1 (d)" in err


def test_the_command_says_when_there_is_nothing_to_filter_and_fails_on_a_bad_mapping(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text("schemaVersion: 1" + FIELDS)
    assert run(path)[:2] == (0, "")
    path.write_text("schemaVersion: 3" + FIELDS)
    code, _, err = run(path)
    assert code == 2
    assert "line 1: schemaVersion" in err


TEMPLATE: dict[str, Any] = loads((ROOT / "template.yaml").read_text())


def test_the_stream_trigger_takes_the_pattern_only_when_given() -> None:
    stream = TEMPLATE["Resources"]["StreamSyncFunction"]["Properties"]["Events"]["PartnerTableStream"]["Properties"]
    condition, given, absent = stream["FilterCriteria"]["Fn::If"]
    assert condition == "HasPartnerStreamFilter"
    assert given == {"Filters": [{"Pattern": {"Ref": "PartnerStreamFilterPattern"}}]}
    assert absent == {"Ref": "AWS::NoValue"}
    assert TEMPLATE["Parameters"]["PartnerStreamFilterPattern"]["Default"] == ""


def test_the_mapping_parameter_is_readable_only_when_set() -> None:
    variables = TEMPLATE["Globals"]["Function"]["Environment"]["Variables"]
    assert variables["PARTNER_MAPPING_PARAMETER"] == {"Ref": "PartnerMappingParameter"}
    assert TEMPLATE["Parameters"]["PartnerMappingParameter"]["Default"] == ""
    assert TEMPLATE["Conditions"]["HasPartnerMappingParameter"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "PartnerMappingParameter"}, ""]}]
    }
    policy = TEMPLATE["Resources"]["PartnerMappingReadPolicy"]
    assert policy["Condition"] == "HasPartnerMappingParameter"
    # Each role only where the stack has its function (a stack may have a stream or a queue alone).
    roles = {role["Fn::If"][1]["Ref"]: role["Fn::If"][0] for role in policy["Properties"]["Roles"]}
    assert roles == {
        "StreamSyncRole": "HasPartnerStream",
        "QueueSyncRole": "HasPartnerQueue",
        "BackfillRole": "HasPartnerStreamAndQueue",
    }
    assert all(role["Fn::If"][2] == {"Ref": "AWS::NoValue"} for role in policy["Properties"]["Roles"])
    (statement,) = policy["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Action"] == "ssm:GetParameter"
    assert statement["Resource"]["Fn::Sub"].endswith(":parameter${PartnerMappingParameter}")


def test_the_functions_that_map_items_wait_for_the_mapping_read_policy() -> None:
    """A policy of its own is attached after the role: the functions wait for it (through a handle that
    depends on it only when it exists), so their first invocations after a deploy can read the mapping."""
    resources = TEMPLATE["Resources"]
    for function in ("StreamSyncFunction", "QueueSyncFunction", "BackfillFunction"):
        depends = resources[function].get("DependsOn", [])
        assert "PartnerMappingReadable" in ([depends] if isinstance(depends, str) else depends), function
    handle = resources["PartnerMappingReadable"]
    assert "Condition" not in handle  # always there, so a function may depend on it
    assert handle["Metadata"]["ReadPolicy"] == {
        "Fn::If": ["HasPartnerMappingParameter", {"Ref": "PartnerMappingReadPolicy"}, ""]
    }
