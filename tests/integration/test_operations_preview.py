"""python -m operations preview against moto server: a sample of the partner table (a Scan with a
limit), and a peek at the partner events queue that leaves every message there."""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import pytest

from operations import preview
from tests.integration.conftest import INSTALLATION_ID, LocalStack
from tests.integration.support import message_count, partner_item, put_items, send

pytestmark = pytest.mark.integration

DEFAULT_MAPPING = str(Path(__file__).resolve().parents[2] / "layers/sync_core/vercel_sync/mapping/default.yaml")


def run(stack: LocalStack, **source: object) -> tuple[int, str]:
    args = argparse.Namespace(mapping=DEFAULT_MAPPING, items=None, table=None, queue=None, limit=25)
    for name, value in source.items():
        setattr(args, name, value)
    out = io.StringIO()
    code = preview.run(args, out=out, err=io.StringIO())
    return code, out.getvalue()


def test_a_sample_of_the_table(local_stack: LocalStack) -> None:
    put_items(local_stack, [partner_item(n, INSTALLATION_ID) for n in range(5)])
    put_items(local_stack, [partner_item(9, INSTALLATION_ID, status="exploding")])
    table = local_stack.resources.tables["PartnerTable"].name

    code, out = run(local_stack, table=table, limit=3)
    assert code == 0
    assert out.endswith("preview: 3 item(s): 3 would send, 0 invalid, 0 not a resource\n")

    code, out = run(local_stack, table=table, limit=100)
    assert code == 1
    assert out.endswith("preview: 6 item(s): 5 would send, 1 invalid, 0 not a resource\n")
    assert "unknown partner status 'exploding'" in out


def test_a_peek_at_the_queue_consumes_nothing(local_stack: LocalStack) -> None:
    for n in range(4):
        send(local_stack, partner_item(n, INSTALLATION_ID), group=f"g{n}")
    send(local_stack, "not json", group="g9")
    url = local_stack.queue_url("PartnerEventsQueue")

    code, out = run(local_stack, queue=url, limit=10)

    assert code == 1
    assert out.endswith("preview: 5 item(s): 4 would send, 1 invalid, 0 not a resource\n")
    assert "message body is not valid JSON" in out
    assert message_count(local_stack, "PartnerEventsQueue") == 5
    # Peeked again, the same messages are there to see.
    assert run(local_stack, queue=url, limit=10) == (code, out)
