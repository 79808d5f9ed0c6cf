"""One resource's sync (``sync/resource.py``) on a state store: the version guard (stale changes
skipped, a REMOVE newer than what it deletes), change suppression, claims waited for and released."""

from __future__ import annotations

import json
import time
from decimal import Decimal

import pytest

from tests.builders import INSTALLATION, Sleeps, make_service, record_with_secret, record_without_secret, sqs, stream
from tests.fakes import (
    ROTATED_TOKEN,
    TOKEN,
    FakeFailedRecords,
    FakeSecrets,
    FakeStateStore,
    FakeVercel,
    make_sync_service,
    sync_one,
    vercel_rejects,
    vercel_unavailable,
)
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


def rereading_secrets() -> FakeSecrets:
    """Answers TOKEN, and ROTATED_TOKEN once the token is re-read after a 401."""
    secrets = FakeSecrets()

    def token(installation_id: str, *, force_fetch: bool = False) -> str:
        return ROTATED_TOKEN if force_fetch else TOKEN

    secrets.installation_token = token  # type: ignore[method-assign]
    return secrets


def test_a_failure_after_a_token_reread_is_parked_without_the_new_token() -> None:
    echo = f'{{"error":{{"code":"bad_request","message":"Authorization: Bearer {ROTATED_TOKEN}"}}}}'
    vercel = FakeVercel(valid_tokens={ROTATED_TOKEN}, script={"r1": [vercel_rejects(400, echo)]})
    failed = FakeFailedRecords()
    service = make_sync_service(vercel=vercel, secrets=rereading_secrets(), failed_records=failed)

    assert sync_one(service, sqs(record_without_secret("r1"), "a")) == "parked"

    (message,) = failed.messages
    assert "Bearer [redacted]" in message["vercelError"]
    assert ROTATED_TOKEN not in str(message)


def test_a_failure_after_a_token_reread_goes_back_without_the_new_token() -> None:
    echo = TransientSyncError(f"Vercel answered 503 to Bearer {ROTATED_TOKEN}", http_status=503)
    vercel = FakeVercel(valid_tokens={ROTATED_TOKEN}, script={"r1": [echo]})
    service = make_sync_service(
        vercel=vercel,
        secrets=rereading_secrets(),
        failed_records=FakeFailedRecords(),
        retry_policy=RetryPolicy(max_calls=1),
    )

    (result,) = service.sync_batch([sqs(record_without_secret("r1"), "a")])

    assert result.error is not None
    assert result.error.message == "Vercel answered 503 to Bearer [redacted]"


def test_a_claim_whose_lease_has_lapsed_is_tried_again_no_sooner_than_a_floor() -> None:
    state = FakeStateStore(clock=lambda: 0.0)  # every busy answer's lease ended long ago
    state.busy["r1"] = 1
    sleeps = Sleeps()
    service = make_service(FakeVercel(), state=state, sleeps=sleeps)

    assert sync_one(service, sqs(record_without_secret())) == "imported"
    assert sleeps.seconds == [pytest.approx(0.05 + 0.05)]  # the floor, plus the jitter at its ceiling


def test_after_a_new_token_an_unchanged_payload_is_imported_once_more() -> None:
    """Digests are keyed by the installation token (docs/operations.md): after a rotation the next
    change is imported even if its payload is the one last imported."""
    state = FakeStateStore()
    first = FakeVercel()
    assert sync_one(make_service(first, state=state), sqs(record_without_secret(version=1))) == "imported"

    rotated = FakeVercel(valid_tokens={ROTATED_TOKEN})
    service = make_sync_service(
        vercel=rotated, secrets=FakeSecrets(token=ROTATED_TOKEN), failed_records=FakeFailedRecords(), state_store=state
    )
    assert sync_one(service, sqs(record_without_secret(version=2))) == "imported"
    assert sync_one(service, sqs(record_without_secret(version=3))) == "unchanged"
    assert [c.token for c in first.calls + rotated.calls] == [TOKEN, ROTATED_TOKEN]


def test_a_claim_held_longer_than_the_longest_backoff_sends_the_record_back_at_once() -> None:
    state = FakeStateStore(clock=lambda: time.time() + 600)  # the other invocation's lease: 10 more minutes
    state.busy["r1"] = 1
    sleeps = Sleeps()
    service = make_service(FakeVercel(), state=state, sleeps=sleeps)  # no time budget: only the cap stops it

    with pytest.raises(TransientSyncError, match="another invocation is syncing this resource"):
        sync_one(service, sqs(record_without_secret()))
    assert sleeps.seconds == []


def test_a_remove_records_no_secret_for_rotation_to_push() -> None:
    """The deletion's body carries no secrets: rotation must not find the resource by its old secret."""
    state = FakeStateStore()
    service = make_service(FakeVercel(), state=state)
    item = record_with_secret(version=1)

    assert sync_one(service, stream(item, "100")) == "imported"
    assert state.items[("icfg_1", "db_primary")]["secret_name"] == item["secretsArn"]
    assert sync_one(service, stream(item, "200", removed=True)) == "imported"
    assert state.items[("icfg_1", "db_primary")]["secret_name"] is None


def test_a_refused_installation_parks_its_record_with_vercels_error() -> None:
    refused = '{"error":{"code":"forbidden","message":"The installation was removed"}}'
    vercel = FakeVercel(script={"r1": [vercel_rejects(403, refused)]})
    failed = FakeFailedRecords()
    service = make_sync_service(vercel=vercel, secrets=FakeSecrets(), failed_records=failed)

    assert sync_one(service, sqs(record_without_secret("r1"), "a")) == "parked"

    (message,) = failed.messages
    assert message["reason"] == "installation_unavailable"
    assert message["httpStatus"] == 403
    assert json.loads(message["vercelError"]) == json.loads(refused)


# -- removal by DELETE (REMOVAL_MODE=delete) -------------------------------------------------------


class RecordingLimiter:
    """The rate limiter's buckets, as the calls take them."""

    def __init__(self) -> None:
        self.acquired: list[str] = []
        self.paused: list[str] = []

    def acquire(self, installation_id: str, *, max_wait_seconds: float) -> bool:
        self.acquired.append(installation_id)
        return True

    def pause(self, installation_id: str, seconds: float) -> None:
        self.paused.append(installation_id)


def test_in_delete_mode_a_removal_is_a_delete_under_the_deletions_own_buckets() -> None:
    vercel, limiter = FakeVercel(), RecordingLimiter()
    service = make_service(vercel, state=FakeStateStore(), removal_mode="delete", rate_limiter=limiter)

    assert sync_one(service, stream(record_without_secret("r1"), "100")) == "imported"
    assert sync_one(service, stream(record_without_secret("r1"), "200", removed=True)) == "imported"
    assert sync_one(service, sqs(record_without_secret("r2", deleted=True))) == "imported"
    # A partner status that maps to uninstalled is a status, not a removal: it is imported.
    assert sync_one(service, sqs(record_without_secret("r3", status="terminated"))) == "imported"

    assert [(c.method, c.resource_id) for c in vercel.calls] == [
        ("PUT", "r1"),
        ("DELETE", "r1"),
        ("DELETE", "r2"),
        ("PUT", "r3"),
    ]
    assert limiter.acquired == [INSTALLATION, f"delete/{INSTALLATION}", f"delete/{INSTALLATION}", INSTALLATION]


def test_in_the_default_mode_a_removal_is_imported_uninstalled() -> None:
    vercel = FakeVercel()
    service = make_service(vercel, state=FakeStateStore())

    assert sync_one(service, sqs(record_without_secret("r2", deleted=True))) == "imported"

    assert [(c.method, c.body["status"]) for c in vercel.calls] == [("PUT", "uninstalled")]


def test_a_delete_keeps_the_version_guard_both_ways() -> None:
    vercel = FakeVercel()
    state = FakeStateStore()
    service = make_service(vercel, state=state, removal_mode="delete")

    assert sync_one(service, sqs(record_without_secret(version=5))) == "imported"
    # A deletion older than the applied version is not sent.
    assert sync_one(service, sqs(record_without_secret(version=4, deleted=True))) == "stale"
    assert sync_one(service, sqs(record_without_secret(version=6, deleted=True))) == "imported"
    # An older change after the deletion is not applied; a newer one brings the resource back.
    assert sync_one(service, sqs(record_without_secret(version=Decimal("5.5"), name="late"))) == "stale"
    assert sync_one(service, sqs(record_without_secret(version=7))) == "imported"

    assert [(c.method, c.body.get("name")) for c in vercel.calls] == [
        ("PUT", "name-r1"),
        ("DELETE", None),
        ("PUT", "name-r1"),
    ]
    assert state.items[(INSTALLATION, "r1")]["status"] == "ready"


def test_suppression_never_swallows_a_delete_nor_the_import_after_one() -> None:
    vercel = FakeVercel()
    service = make_service(vercel, state=FakeStateStore(), removal_mode="delete")

    assert sync_one(service, sqs(record_without_secret(version=1))) == "imported"
    assert sync_one(service, sqs(record_without_secret(version=2, deleted=True))) == "imported"
    # The same deletion again (e.g. the resource came back at Vercel by another way): sent again.
    assert sync_one(service, sqs(record_without_secret(version=3, deleted=True))) == "imported"
    # The same body as before the deletion: not unchanged, the resource must be imported again.
    assert sync_one(service, sqs(record_without_secret(version=4))) == "imported"

    assert [c.method for c in vercel.calls] == ["PUT", "DELETE", "DELETE", "PUT"]


def test_a_deleted_resource_is_recorded_as_deleted_without_its_secret() -> None:
    state = FakeStateStore()
    service = make_service(FakeVercel(), state=state, removal_mode="delete")
    item = record_with_secret(version=1)

    assert sync_one(service, stream(item, "100")) == "imported"
    assert sync_one(service, stream(item, "200", removed=True)) == "imported"

    held = state.items[("icfg_1", "db_primary")]
    assert (held["status"], held["secret_name"]) == ("deleted", None)


def test_a_failed_delete_goes_back_or_is_parked_as_an_import_would() -> None:
    vercel = FakeVercel(script={"r1": [vercel_unavailable(503), None], "r2": [vercel_rejects(400)]})
    failed = FakeFailedRecords()
    service = make_service(vercel, state=FakeStateStore(), failed=failed, removal_mode="delete")

    assert sync_one(service, sqs(record_without_secret("r1", deleted=True))) == "imported"  # retried
    assert sync_one(service, sqs(record_without_secret("r2", deleted=True))) == "parked"

    assert [(c.method, c.resource_id) for c in vercel.calls] == [("DELETE", "r1"), ("DELETE", "r1"), ("DELETE", "r2")]
    assert failed.reasons() == ["vercel_rejected"]


def test_in_delete_mode_a_removal_with_a_status_no_rule_knows_is_still_deleted() -> None:
    vercel = FakeVercel()
    service = make_service(vercel, state=FakeStateStore(), removal_mode="delete")

    assert sync_one(service, stream(record_without_secret("r1", status="weird"), "200", removed=True)) == "imported"
    assert sync_one(service, sqs(record_without_secret("r2", status="weird", deleted=True))) == "imported"

    assert [(c.method, c.resource_id) for c in vercel.calls] == [("DELETE", "r1"), ("DELETE", "r2")]


def test_a_429_on_delete_waits_the_reset_and_pauses_the_deletions_buckets() -> None:
    limited = TransientSyncError("Vercel answered 429", http_status=429, retry_after_seconds=7.0)
    vercel = FakeVercel(script={"r1": [limited, None]})
    limiter, sleeps = RecordingLimiter(), Sleeps()
    service = make_service(vercel, state=FakeStateStore(), removal_mode="delete", rate_limiter=limiter, sleeps=sleeps)

    assert sync_one(service, sqs(record_without_secret("r1", deleted=True))) == "imported"

    assert [c.method for c in vercel.calls] == ["DELETE", "DELETE"]
    assert limiter.paused == [f"delete/{INSTALLATION}"]
    assert sleeps.seconds == [7.0]


def test_a_delete_of_a_dot_segment_id_is_parked_without_a_call() -> None:
    vercel, failed = FakeVercel(), FakeFailedRecords()
    service = make_service(vercel, state=FakeStateStore(), failed=failed, removal_mode="delete")

    assert sync_one(service, sqs(record_without_secret("..", deleted=True))) == "parked"

    assert vercel.calls == []
    assert failed.reasons() == ["invalid_record"]


def test_a_delete_then_an_older_import_then_a_newer_one_of_the_same_id() -> None:
    vercel, state = FakeVercel(), FakeStateStore()
    service = make_service(vercel, state=state, removal_mode="delete")

    assert sync_one(service, stream(record_without_secret("r/1%.."), "300", removed=True)) == "imported"
    assert sync_one(service, stream(record_without_secret("r/1%.."), "200")) == "stale"
    assert sync_one(service, stream(record_without_secret("r/1%.."), "400")) == "imported"

    assert [(c.method, c.resource_id) for c in vercel.calls] == [("DELETE", "r/1%.."), ("PUT", "r/1%..")]
