"""python -m operations preview --items: each item's payload, invalidity or non-resource, a summary,
and exit 1 when any item is invalid; a resource secret is named, never read."""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path
from typing import Any

from operations import preview

MAPPING = """\
schemaVersion: 1
resources: [{attribute: sk, startsWith: "RES#"}]
fields:
  integrationConfigurationId: {attribute: tenant}
  resourceId: {attribute: sk}
  productId: {constant: prod_x}
  name: {attribute: label}
  status: {attribute: state, words: {ready: [live]}}
  secretsArn: {attribute: secret}
"""
SECRET = "partner/resources/icfg_1/db"


def item(sk: str, **changes: Any) -> dict[str, Any]:
    return {"pk": "T#1", "sk": sk, "tenant": "icfg_1", "label": "orders", "state": "live", **changes}


def run(tmp_path: Path, items: Any) -> tuple[int, str, str]:
    (tmp_path / "mapping.yaml").write_text(MAPPING)
    (tmp_path / "items.json").write_text(json.dumps(items))
    args = argparse.Namespace(
        mapping=str(tmp_path / "mapping.yaml"), items=tmp_path / "items.json", table=None, queue=None, limit=25
    )
    out, err = io.StringIO(), io.StringIO()
    code = preview.run(args, out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def test_each_item_and_a_summary(tmp_path: Path) -> None:
    code, out, _ = run(tmp_path, [item("RES#db-1", secret=SECRET), item("PROFILE#settings")])

    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "item 1 (icfg_1/RES#db-1): would send"
    payload = json.loads(lines[1])
    assert payload["status"] == "ready"
    assert payload["secrets"] == f"(from the secret {SECRET}: not read by the preview)"
    assert lines[2] == "item 2 (icfg_1/PROFILE#settings): not a resource"
    assert lines[3] == "preview: 2 item(s): 1 would send, 0 invalid, 1 not a resource"


def test_an_invalid_item_says_why_and_fails_the_preview(tmp_path: Path) -> None:
    code, out, _ = run(tmp_path, [item("RES#db-1", state="melting"), "not an item"])

    assert code == 1
    reason = "invalid partner record: status: Value error, unknown partner status 'melting'"
    assert f"item 1 (icfg_1/RES#db-1): invalid\n  {reason}" in out
    assert "item 2: invalid\n  not an object\n" in out
    assert out.endswith("preview: 2 item(s): 0 would send, 2 invalid, 0 not a resource\n")


def test_the_output_of_aws_dynamodb_scan_is_read_as_typed_items(tmp_path: Path) -> None:
    scan = {"Items": [{k: {"S": v} for k, v in item("RES#db-2").items()}], "Count": 1}
    code, out, _ = run(tmp_path, scan)
    assert code == 0
    assert out.startswith("item 1 (icfg_1/RES#db-2): would send\n")


def test_a_file_that_is_not_items_is_a_usage_error(tmp_path: Path) -> None:
    code, out, err = run(tmp_path, {"not": "items"})
    assert code == 2
    assert out == ""
    assert "preview: cannot read the items: expected a JSON array of items" in err


def test_a_typed_item_boto3_cannot_read_is_an_invalid_item_not_a_traceback(tmp_path: Path) -> None:
    scan = {"Items": [{"sk": {"S": "RES#db-1"}, "odd": {"Q": "x"}}, 7, {"sk": "not typed"}]}
    code, out, _ = run(tmp_path, scan)

    assert code == 1
    assert out.splitlines()[-1] == "preview: 3 item(s): 0 would send, 3 invalid, 0 not a resource"
    assert "not a DynamoDB item" in out


class Refusing:
    """An AWS client whose every call fails as AWS answers for a queue or table that does not exist."""

    def __init__(self, code: str) -> None:
        self.code = code

    def __getattr__(self, operation: str) -> Any:
        from botocore.exceptions import ClientError

        def call(**_: Any) -> Any:
            raise ClientError({"Error": {"Code": self.code, "Message": "does not exist"}}, operation)

        return call


def test_a_queue_or_table_that_does_not_exist_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "mapping.yaml").write_text(MAPPING)
    for source, code in (
        (
            {"queue": "https://sqs.us-east-1.amazonaws.com/1/nope", "table": None},
            "AWS.SimpleQueueService.NonExistentQueue",
        ),
        ({"queue": None, "table": "nope"}, "ResourceNotFoundException"),
    ):
        args = argparse.Namespace(mapping=str(tmp_path / "mapping.yaml"), items=None, limit=25, **source)
        out, err = io.StringIO(), io.StringIO()

        assert preview.run(args, out=out, err=err, aws=Refusing(code)) == 2
        assert err.getvalue().startswith(f"preview: cannot read the items: {code}: does not exist")
        assert out.getvalue() == ""
