"""The sync through a partner mapping: items that are not resources are ignored (counted, no failed
record), a soft delete is imported uninstalled, a failed record keeps the attributes the mapping reads."""

from __future__ import annotations

import json
from typing import Any

from tests.builders import sqs, stream
from tests.fakes import FakeFailedRecords, FakeSecrets, FakeVercel, make_sync_service
from vercel_sync.changes import SourceChange
from vercel_sync.mapping import parse_mapping
from vercel_sync.ports import NullObserver, Skip

MAPPING_TEXT = """
schemaVersion: 1
resources: [{attribute: sk, startsWith: "RES#"}]
fields:
  integrationConfigurationId: {attribute: tenant.installation}
  resourceId: {attribute: sk}
  productId: {constant: prod_x}
  name: {attribute: label}
  status: {attribute: state, words: {ready: [live]}}
removal: [{attribute: deletedAt, present: true}]
"""
MAPPING = parse_mapping(MAPPING_TEXT, "test mapping")


def item(sk: str, **changes: Any) -> dict[str, Any]:
    return {"pk": "T#1", "sk": sk, "tenant": {"installation": "icfg_1"}, "label": sk, "state": "live", **changes}


class Skips(NullObserver):
    def __init__(self) -> None:
        self.skips: list[Skip] = []

    def skipped(self, change: SourceChange, why: Skip) -> None:
        self.skips.append(why)


def test_items_of_other_types_are_ignored_without_a_failed_record() -> None:
    vercel, failed, observer = FakeVercel(), FakeFailedRecords(), Skips()
    service = make_sync_service(
        vercel=vercel, secrets=FakeSecrets(), failed_records=failed, observer=observer, mapping=MAPPING
    )

    results = service.sync_batch([sqs(item("RES#db-1"), "m1"), sqs(item("PROFILE#settings"), "m2")])

    assert [r.outcome for r in results] == ["imported", "ignored"]
    assert [(c.resource_id, c.body["status"]) for c in vercel.calls] == [("RES#db-1", "ready")]
    assert failed.messages == []
    assert observer.skips == ["not_a_resource"]


def test_a_stream_remove_of_another_type_is_ignored_too() -> None:
    vercel, failed = FakeVercel(), FakeFailedRecords()
    service = make_sync_service(vercel=vercel, secrets=FakeSecrets(), failed_records=failed, mapping=MAPPING)

    results = service.sync_batch([stream(item("PROFILE#x"), "100", removed=True)])

    assert [r.outcome for r in results] == ["ignored"]
    assert vercel.calls == []
    assert failed.messages == []


def test_a_soft_delete_is_imported_uninstalled() -> None:
    vercel = FakeVercel()
    service = make_sync_service(
        vercel=vercel, secrets=FakeSecrets(), failed_records=FakeFailedRecords(), mapping=MAPPING
    )

    service.sync_batch([sqs(item("RES#db-1", deletedAt="2026-11-26T10:00:00Z", state="whatever"))])

    assert [c.body["status"] for c in vercel.calls] == ["uninstalled"]


def test_an_unknown_word_parks_the_item_with_the_attributes_the_mapping_reads() -> None:
    failed = FakeFailedRecords()
    service = make_sync_service(vercel=FakeVercel(), secrets=FakeSecrets(), failed_records=failed, mapping=MAPPING)

    service.sync_batch([sqs(item("RES#db-1", state="melting", unrelated="x"))])

    (message,) = failed.messages
    assert message["reason"] == "invalid_record"
    assert "unknown partner status 'melting'" in message["detail"]
    assert set(message["record"]) == {"sk", "tenant", "label", "state"}


def test_the_observer_counts_items_not_resources_in_one_metric(monkeypatch: Any) -> None:
    from vercel_sync import observability

    counted: list[tuple[str, float]] = []
    monkeypatch.setattr(observability.metrics, "add_metric", lambda name, unit, value: counted.append((name, value)))
    observer = observability.PowertoolsObserver()

    for _ in range(3):
        observer.skipped(sqs(item("PROFILE#x")), "not_a_resource")
    observer.batch_finished(3)

    assert counted == [("ItemsNotResources", 3)]


def test_a_failed_record_names_the_ids_the_mapping_reads() -> None:
    failed = FakeFailedRecords()
    service = make_sync_service(vercel=FakeVercel(), secrets=FakeSecrets(), failed_records=failed, mapping=MAPPING)

    service.sync_batch([sqs(item("RES#db-9", state="melting"))])

    (message,) = failed.messages
    assert (message["integrationConfigurationId"], message["resourceId"]) == ("icfg_1", "RES#db-9")


def test_log_lines_name_the_ids_the_mapping_reads(captured_logs: Any) -> None:
    from vercel_sync.observability import PowertoolsObserver

    failed = FakeFailedRecords()
    observer = PowertoolsObserver(mapping=MAPPING)
    service = make_sync_service(
        vercel=FakeVercel(), secrets=FakeSecrets(), failed_records=failed, observer=observer, mapping=MAPPING
    )

    service.sync_batch([sqs(item("RES#db-9", state="melting"))])

    (line,) = [json.loads(line) for line in captured_logs.lines if "failed-records" in line]
    assert (line["integrationConfigurationId"], line["resourceId"]) == ("icfg_1", "RES#db-9")


def test_the_deployed_observer_reads_ids_through_the_deployed_mapping(tmp_path: Any, captured_logs: Any) -> None:
    from vercel_sync.settings import SyncSettings
    from vercel_sync.wiring import build_sync_service

    mapping_file = tmp_path / "mapping.yaml"
    mapping_file.write_text(MAPPING_TEXT, encoding="utf-8")
    given = {"vercel": FakeVercel(), "secrets": FakeSecrets(), "failed_records": FakeFailedRecords()}
    given |= {"state_store": None, "rate_limiter": None, "source_queue": None, "wrap_task": None}
    service = build_sync_service(SyncSettings(partner_mapping_file=str(mapping_file)), **given)

    service.sync_batch([sqs(item("RES#db-9", state="melting"))])

    (line,) = [json.loads(line) for line in captured_logs.lines if "failed-records" in line]
    assert (line["integrationConfigurationId"], line["resourceId"]) == ("icfg_1", "RES#db-9")


def test_a_mapped_secret_of_another_installation_is_refused_unread() -> None:
    """The mapping says where secretsArn comes from; issue 13's rule still binds it to the record's installation."""
    from tests.fakes import DB_PASSWORD

    status = "  status: {attribute: state, words: {ready: [live]}}\n"
    mapping = parse_mapping(MAPPING_TEXT.replace(status, status + "  secretsArn: {attribute: refs.secret}\n"), "m")
    read: list[str] = []
    vercel, failed = FakeVercel(), FakeFailedRecords()
    secrets = FakeSecrets(on_resource_read=read.append)
    service = make_sync_service(vercel=vercel, secrets=secrets, failed_records=failed, mapping=mapping)

    others = {"secret": "partner/resources/icfg_demo01/db_primary"}  # icfg_demo01's, named by icfg_1's item
    service.sync_batch([sqs(item("RES#db-1", refs=others))])

    assert (read, vercel.calls) == ([], [])
    (message,) = failed.messages
    assert message["reason"] == "invalid_record"
    assert DB_PASSWORD not in json.dumps(message)
