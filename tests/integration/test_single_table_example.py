"""The worked example (examples/single-table) through both triggers, against moto server and the
Vercel emulator: each database item imported as its mapping says (the preview's payload), each item
of another type ignored without a failed record, the soft delete imported as ``uninstalled``."""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from demo.mapped import single_table as create_single_table
from local_runner import Runner, StreamPoller
from operations.preview import preview_item
from tests.integration.conftest import LocalStack
from tests.integration.support import add_installation, message_count, send, sync_queue
from tests.leak_scan import register_secret
from vercel_sync import wiring
from vercel_sync.mapping import read_mapping_file

pytestmark = pytest.mark.integration

EXAMPLE = Path(__file__).resolve().parents[2] / "examples/single-table"
ITEMS: list[dict[str, Any]] = json.loads((EXAMPLE / "items.json").read_text())
INSTALLATION = "icfg_demo01"


@pytest.fixture
def example(local_stack: LocalStack, monkeypatch: pytest.MonkeyPatch) -> LocalStack:
    """The stack's functions read the example's mapping; Vercel knows the example's installation."""
    monkeypatch.setenv("PARTNER_MAPPING_FILE", str(EXAMPLE / "mapping.yaml"))
    wiring.sync_service.set(None)
    token = "vrcl_it_" + secrets.token_urlsafe(24)
    register_secret(token, label="an installation token (single-table example)")
    add_installation(local_stack, INSTALLATION, token)
    return local_stack


def expected_imports() -> dict[str, dict[str, Any]]:
    """resource id -> the payload the preview says each resource item makes."""
    mapping = read_mapping_file(EXAMPLE / "mapping.yaml")
    verdicts = {item["sk"]: preview_item(item, mapping) for item in ITEMS}
    assert sorted(v.outcome for v in verdicts.values()) == ["not a resource"] * 2 + ["would send"] * 4
    return {sk: json.loads(v.detail) for sk, v in verdicts.items() if v.outcome == "would send"}


def assert_imported_as_mapped(stack: LocalStack) -> None:
    expected = expected_imports()
    for resource_id, body in expected.items():
        assert stack.emulator.imported_body(INSTALLATION, resource_id) == body, resource_id
    assert expected["DB#legacy"]["status"] == "uninstalled"  # the soft delete
    for item in ITEMS:
        if item["sk"] not in expected:
            assert stack.emulator.held_resource(INSTALLATION, item["sk"]) is None
    assert message_count(stack, "FailedRecordsQueue") == 0


def single_table(stack: LocalStack) -> str:
    """A table of the example's own design (pk/sk) with a stream; its stream ARN."""
    name = f"{stack.resources.tables['PartnerTable'].name}-single"
    return create_single_table(stack.aws["dynamodb"], name, ITEMS)


def test_the_example_through_the_stream(example: LocalStack, handlers: dict[str, ModuleType]) -> None:
    poller = StreamPoller(example.aws["dynamodbstreams"], single_table(example), handlers["stream_sync"].lambda_handler)
    results = list(Runner([poller]).run_until_idle(idle_seconds=0.3, timeout_seconds=30))

    assert not [r for r in results if r.error or r.reported]
    assert_imported_as_mapped(example)


def test_the_example_through_the_queue(example: LocalStack, handlers: dict[str, ModuleType]) -> None:
    for item in ITEMS:
        send(example, item, group=item["sk"].replace("#", "-"))
    results = sync_queue(example, handlers)

    assert not [r for r in results if r.error or r.reported]
    assert_imported_as_mapped(example)
