"""One resource's sync (``sync/resource.py``) on a state store: the version guard (stale changes
skipped, a REMOVE newer than what it deletes), change suppression, claims waited for and released."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.builders import INSTALLATION, Sleeps, make_service, record_without_secret, sqs, stream
from tests.fakes import FakeStateStore, FakeVercel, sync_one, vercel_unavailable
from vercel_sync.calls import RetryPolicy
from vercel_sync.errors import TransientSyncError


def test_a_change_not_newer_than_the_applied_version_is_skipped_as_stale() -> None:
    vercel = FakeVercel()
    state = FakeStateStore()
    service = make_service(vercel, state=state)

    assert sync_one(service, sqs(record_without_secret(name="v5", version=5))) == "imported"
    assert sync_one(service, sqs(record_without_secret(name="v4", version=4))) == "stale"
    assert sync_one(service, sqs(record_without_secret(name="v5 again", version=5))) == "stale"  # equal counts as stale
    assert sync_one(service, sqs(record_without_secret(name="v6", version=6))) == "imported"

    assert [c.body["name"] for c in vercel.calls] == ["v5", "v6"]


def test_iso_times_are_versions_too() -> None:
    vercel = FakeVercel()
    service = make_service(vercel, state=FakeStateStore())

    assert sync_one(service, sqs(record_without_secret(version="2026-11-26T10:05:00Z"))) == "imported"
    assert sync_one(service, sqs(record_without_secret(version="2026-11-26T10:00:00+00:00"))) == "stale"
    assert (
        sync_one(service, sqs(record_without_secret(version="2026-11-26T10:05:00.000001Z", name="later"))) == "imported"
    )


def test_stream_sequence_numbers_order_changes_without_a_version() -> None:
    vercel = FakeVercel()
    service = make_service(vercel, state=FakeStateStore())

    assert sync_one(service, stream(record_without_secret(name="new"), "200")) == "imported"
    # A redelivered older record (e.g. after a bisected batch) does not go back.
    assert sync_one(service, stream(record_without_secret(name="old"), "100")) == "stale"
    assert [c.body["name"] for c in vercel.calls] == ["new"]


def test_an_unchanged_payload_costs_no_call_but_moves_the_version_on() -> None:
    vercel = FakeVercel()
    state = FakeStateStore()
    service = make_service(vercel, state=state)

    assert sync_one(service, sqs(record_without_secret(version=1))) == "imported"
    # A change to a field the payload does not carry: same payload, no call.
    assert sync_one(service, sqs(record_without_secret(version=2, internalNote="x"))) == "unchanged"
    # Version 2 was recorded, so a late version 1.5 with another payload is stale, not applied.
    assert sync_one(service, sqs(record_without_secret(version=Decimal("1.5"), name="late"))) == "stale"
    assert len(vercel.calls) == 1


def test_a_busy_resource_is_waited_for_then_synced() -> None:
    vercel = FakeVercel()
    state = FakeStateStore()
    state.busy["r1"] = 2  # another invocation holds the claim for two more tries
    sleeps = Sleeps()
    service = make_service(vercel, state=state, sleeps=sleeps)

    assert sync_one(service, sqs(record_without_secret())) == "imported"
    assert len(sleeps.seconds) == 2


def test_a_failed_call_releases_its_claim() -> None:
    vercel = FakeVercel(failing={"r1": vercel_unavailable(503)})
    state = FakeStateStore()
    service = make_service(vercel, state=state, retry_policy=RetryPolicy(max_calls=1))

    with pytest.raises(TransientSyncError):
        sync_one(service, sqs(record_without_secret(version=1)))

    assert "claim" not in state.items[(INSTALLATION, "r1")]
    assert "partner" not in state.items[(INSTALLATION, "r1")]  # nothing recorded: it was not applied


def test_a_remove_is_newer_than_the_state_it_deletes() -> None:
    vercel = FakeVercel()
    service = make_service(vercel, state=FakeStateStore())

    assert sync_one(service, stream(record_without_secret(version=7), "100")) == "imported"
    # The REMOVE's old image still says version 7: the deletion must not be taken as stale.
    assert sync_one(service, stream(record_without_secret(version=7), "200", removed=True)) == "imported"
    assert vercel.calls[-1].body["status"] == "uninstalled"
    # A redelivered older change stays stale; the partner's next version applies.
    assert sync_one(service, stream(record_without_secret(version=7), "100")) == "stale"
    assert sync_one(service, stream(record_without_secret(version=8), "300")) == "imported"
