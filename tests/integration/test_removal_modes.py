"""How a removed resource reaches Vercel (template parameter ``RemovalMode``), through both
triggers over real HTTP: moto server's table stream and queue, the Vercel emulator."""

from __future__ import annotations

from types import ModuleType

import pytest

from tests.integration.conftest import INSTALLATION_ID, LocalStack
from tests.integration.support import delete_item, held, put_item, record, reported, send, sync_queue, sync_stream

pytestmark = pytest.mark.integration

DELETE_MODE = pytest.mark.parametrize("template_parameters", [{"RemovalMode": "delete"}])


def at_vercel(stack: LocalStack, *resource_ids: str) -> dict[str, str | None]:
    """Each resource's status as the emulator holds it (None: GET answers 404). Compared whole, so a
    failure shows these values and not the stack (which holds the fixture's secret values)."""
    return {resource_id: (held(stack, resource_id) or {}).get("status") for resource_id in resource_ids}


def deletions(stack: LocalStack, resource_id: str) -> dict[str, int]:
    return stack.emulator.call_count(INSTALLATION_ID, resource_id, "DELETE").by_status


@DELETE_MODE
def test_delete_mode_a_stream_remove_deletes_the_resource_at_vercel(
    local_stack: LocalStack, handlers: dict[str, ModuleType]
) -> None:
    put_item(local_stack, record("db_gone", "active"))
    put_item(local_stack, record("db_kept", "active"))
    assert reported(sync_stream(local_stack, handlers)) == []
    assert at_vercel(local_stack, "db_gone", "db_kept") == {"db_gone": "ready", "db_kept": "ready"}

    delete_item(local_stack, "db_gone")
    assert reported(sync_stream(local_stack, handlers)) == []

    assert at_vercel(local_stack, "db_gone", "db_kept") == {"db_gone": None, "db_kept": "ready"}
    assert deletions(local_stack, "db_gone") == {"204": 1}


@DELETE_MODE
def test_delete_mode_a_removal_message_deletes_and_a_later_import_brings_it_back(
    local_stack: LocalStack, handlers: dict[str, ModuleType]
) -> None:
    send(local_stack, record("q_1", version=1), group="q_1")
    assert reported(sync_queue(local_stack, handlers)) == []
    send(local_stack, record("q_1", version=2, deleted=True), group="q_1")
    send(local_stack, record("q_never", version=1, deleted=True), group="q_never")  # Vercel's 404: done
    assert reported(sync_queue(local_stack, handlers)) == []

    assert at_vercel(local_stack, "q_1") == {"q_1": None}
    assert deletions(local_stack, "q_1") == {"204": 1}
    assert deletions(local_stack, "q_never") == {"404": 1}

    # An older change after the deletion is not applied; a newer one imports the resource again.
    send(local_stack, record("q_1", version=1, name="late"), group="q_1")
    assert reported(sync_queue(local_stack, handlers)) == []
    assert at_vercel(local_stack, "q_1") == {"q_1": None}
    send(local_stack, record("q_1", version=3), group="q_1")
    assert reported(sync_queue(local_stack, handlers)) == []
    assert at_vercel(local_stack, "q_1") == {"q_1": "ready"}


def test_default_mode_a_removal_is_imported_uninstalled_through_both_triggers(
    local_stack: LocalStack, handlers: dict[str, ModuleType]
) -> None:
    put_item(local_stack, record("s_1", "active"))
    assert reported(sync_stream(local_stack, handlers)) == []
    delete_item(local_stack, "s_1")
    send(local_stack, record("q_1", version=1, deleted=True), group="q_1")
    assert reported(sync_stream(local_stack, handlers)) == []
    assert reported(sync_queue(local_stack, handlers)) == []

    assert at_vercel(local_stack, "s_1", "q_1") == {"s_1": "uninstalled", "q_1": "uninstalled"}
    assert (deletions(local_stack, "s_1"), deletions(local_stack, "q_1")) == ({}, {})


@pytest.mark.parametrize("template_parameters", [{"RemovalMode": "delete", "VercelRateLimit": "2/3"}])
def test_delete_mode_deletions_keep_under_vercels_limit_through_the_rate_limiter(
    local_stack: LocalStack, handlers: dict[str, ModuleType]
) -> None:
    """Vercel (the emulator) allows 2 imports and, apart, 2 deletions per 3 s: none is answered 429."""
    resource_ids = [f"lim_{n}" for n in range(4)]
    for resource_id in resource_ids:
        put_item(local_stack, record(resource_id))
    assert reported(sync_stream(local_stack, handlers)) == []
    for resource_id in resource_ids:
        delete_item(local_stack, resource_id)
    assert reported(sync_stream(local_stack, handlers)) == []

    assert at_vercel(local_stack, *resource_ids) == dict.fromkeys(resource_ids)
    assert [deletions(local_stack, resource_id) for resource_id in resource_ids] == [{"204": 1}] * 4
