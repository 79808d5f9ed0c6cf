"""Ordering edges a version guard must get right. They pass today (there is no guard yet); they
are here so that the guard, when it lands, keeps them passing.

A DynamoDB REMOVE carries the item's OLD image, and so the version of the put it removes: a
guard that skips a change whose version is not newer than the one stored would skip every
deletion made after a versioned put, and Vercel would keep showing the resource as it was.
"""

from __future__ import annotations

from types import ModuleType

import pytest

from tests.integration.conftest import LocalStack
from tests.integration.support import delete_item, held, put_item, record, reported, sync_stream

pytestmark = pytest.mark.integration


def test_a_remove_after_a_versioned_put_in_the_same_batch_uninstalls(
    local_stack: LocalStack, handlers: dict[str, ModuleType]
) -> None:
    put_item(local_stack, record("ver_same_batch", "active", version=5))
    delete_item(local_stack, "ver_same_batch")  # its OldImage says version 5 too

    assert reported(sync_stream(local_stack, handlers)) == []
    assert (held(local_stack, "ver_same_batch") or {}).get("status") == "uninstalled"


def test_a_remove_in_a_later_batch_than_its_versioned_put_uninstalls(
    local_stack: LocalStack, handlers: dict[str, ModuleType]
) -> None:
    put_item(local_stack, record("ver_later_batch", "active", version=5))
    assert reported(sync_stream(local_stack, handlers)) == []
    assert (held(local_stack, "ver_later_batch") or {}).get("status") == "ready"

    delete_item(local_stack, "ver_later_batch")  # version 5 is now the one stored as applied
    assert reported(sync_stream(local_stack, handlers)) == []
    assert (held(local_stack, "ver_later_batch") or {}).get("status") == "uninstalled"


def test_a_resource_put_again_after_its_removal_comes_back(
    local_stack: LocalStack, handlers: dict[str, ModuleType]
) -> None:
    put_item(local_stack, record("ver_back", "active", version=5))
    delete_item(local_stack, "ver_back")
    put_item(local_stack, record("ver_back", "paused", version=6))

    assert reported(sync_stream(local_stack, handlers)) == []
    assert (held(local_stack, "ver_back") or {}).get("status") == "suspended"
