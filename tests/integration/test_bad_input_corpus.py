"""The bad-input corpus (``tests/corpus/bad_inputs``), through the real handlers over real HTTP.

Each corpus file holds event record(s) as Lambda hands them over (an SQS record's ``body``, or a
DynamoDB stream record's ``eventName`` and ``dynamodb``; the test fills in the rest: ids,
ARNs, sequence numbers, attributes) and what must come of them: ``parked`` in the
failed-records queue with a ``reason`` and a ``detail`` naming what is wrong, or, for inputs
that look odd but are valid (ids with ``/``, ``%2F``, spaces or control characters), ``synced``:
Vercel (the emulator) holds that exact id. ``tests/corpus/README.md`` describes the format.

All the queue cases go to the queue handler in one batch, mixed with valid records, once as a
standard queue and once as a FIFO queue with every record in one message group; all the stream
cases go to the stream handler in one batch, mixed likewise. Each batch must end with: the
handler not raising, nothing reported back (every bad case is permanent), exactly one
failed-records message per parked case with its reason and a clear detail, every valid record
and every ``synced`` case in Vercel, and no token or secret value in any log line or message.

A case whose file names a ``known_bug`` runs on its own (it would hold a stream batch back) and is
an expected failure until the core is fixed.
"""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from local_aws.moto_server import SECRETS_MANAGER_REQUESTS
from local_aws.provision import drain_json_messages
from local_runner.invocation import invoke
from tests.conftest import LogCapture
from tests.integration.conftest import INSTALLATION_ID, LocalStack
from tests.leak_scan import register_secret

pytestmark = pytest.mark.integration

CORPUS = Path(__file__).resolve().parent.parent / "corpus" / "bad_inputs"
FUNCTION_TIMEOUT_SECONDS = 60.0  # the template's; the handlers see a context counting down from it
MAX_DETAIL = 2048


# ----------------------------------------------------------------------------------------- loading


class Absent:
    """Where a record's key is ``{"$absent": true}``: the key is left out of the event record."""


ABSENT = Absent()


def without_absent(record: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in record.items() if value is not ABSENT}


def expand(node: Any) -> Any:
    """The corpus files' few generators, so large or awkward inputs stay short and readable:
    ``{"$json": X}`` (X as JSON text), ``{"$repeat": "ab", "times": N}``, ``{"$concat": [...]}``,
    ``{"$keys": {"prefix": "k", "count": N, "value": X}}`` (an object of N keys), ``{"$absent": true}``
    (the key it is the value of is left out)."""
    if isinstance(node, list):
        return [expand(item) for item in node]
    if not isinstance(node, dict):
        return node
    if node.get("$absent") is True:
        return ABSENT
    if "$json" in node:
        return json.dumps(expand(node["$json"]))
    if "$repeat" in node:
        return str(node["$repeat"]) * int(node["times"])
    if "$concat" in node:
        return "".join(expand(part) for part in node["$concat"])
    if "$keys" in node:
        spec = node["$keys"]
        return {f"{spec['prefix']}{index:05d}": expand(spec["value"]) for index in range(int(spec["count"]))}
    return {key: expand(value) for key, value in node.items()}


@dataclass(frozen=True)
class Case:
    name: str
    description: str
    source: str  # "sqs" or "stream"
    records: list[dict[str, Any]]
    expect: dict[str, Any]
    known_bug: str | None
    secrets: list[dict[str, Any]] = field(default_factory=list)  # stored in moto before the batch

    @property
    def parked(self) -> bool:
        return self.expect["outcome"] == "parked"


def load_corpus() -> list[Case]:
    cases = []
    for path in sorted(CORPUS.glob("*.json")):
        document = json.loads(path.read_text(encoding="utf-8"))
        assert document["source"] in ("sqs", "stream"), path.name
        assert document["expect"]["outcome"] in ("parked", "synced"), path.name
        cases.append(
            Case(
                name=path.stem,
                description=document["description"],
                source=document["source"],
                records=expand(document["records"]),
                expect=document["expect"],
                known_bug=document.get("known_bug"),
                secrets=expand(document.get("secrets", [])),
            )
        )
    return cases


CASES = load_corpus()


def test_the_corpus_has_at_least_30_cases_of_both_sources() -> None:
    assert len(CASES) >= 30
    assert {case.source for case in CASES} == {"sqs", "stream"}
    assert len({case.name.split("_", 1)[0] for case in CASES}) == len(CASES), "file numbers must be unique"


# ----------------------------------------------------------------------------------- the events


def valid_record(resource_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "integrationConfigurationId": INSTALLATION_ID,
        "resourceId": resource_id,
        "productId": "postgres",
        "name": f"{resource_id}-name",
        "status": "active",
        **extra,
    }


def sqs_record(body: str | Absent, queue_arn: str, message_id: str, overrides: dict[str, Any]) -> dict[str, Any]:
    attributes = {
        "ApproximateReceiveCount": "1",
        "SentTimestamp": "1795651200000",
        "SenderId": "AIDAEXAMPLE",
        "ApproximateFirstReceiveTimestamp": "1795651200001",
    }
    if queue_arn.endswith(".fifo"):  # one message group for the whole batch
        attributes |= {"MessageGroupId": "corpus", "MessageDeduplicationId": message_id, "SequenceNumber": "1"}
    record = {
        "messageId": message_id,
        "receiptHandle": "corpus-" + message_id,
        "body": body,
        "attributes": attributes,
        "messageAttributes": {},
        "md5OfBody": hashlib.md5(
            body.encode("utf-8", "surrogatepass") if isinstance(body, str) else b"", usedforsecurity=False
        ).hexdigest(),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": "us-east-1",
    }
    record.update({key: value for key, value in overrides.items() if key != "body"})
    return without_absent(record)


def stream_record(partial: dict[str, Any], stream_arn: str, sequence_number: int) -> dict[str, Any]:
    change = dict(partial["dynamodb"])
    image = change.get("NewImage") or change.get("OldImage") or {}
    keys = {name: image[name] for name in ("integrationConfigurationId", "resourceId") if name in image}
    dynamodb = {
        "ApproximateCreationDateTime": 1795651200,
        "Keys": keys,
        "SequenceNumber": str(sequence_number),
        "SizeBytes": len(json.dumps(change)),
        "StreamViewType": "NEW_AND_OLD_IMAGES",
    }
    dynamodb.update(change)
    return without_absent(
        {
            "eventID": uuid.uuid4().hex,
            "eventName": partial.get("eventName", "INSERT"),
            "eventVersion": "1.1",
            "eventSource": "aws:dynamodb",
            "awsRegion": "us-east-1",
            "dynamodb": without_absent(dynamodb),
            "eventSourceARN": stream_arn,
        }
    )


def stream_image(record: dict[str, Any]) -> dict[str, Any]:
    return {name: {"S": value} for name, value in record.items()}


@dataclass
class Batch:
    """One event built from cases and valid records, and where each record came from."""

    event: dict[str, Any]
    case_of: dict[str, Case]  # item identifier (message id or sequence number) -> its case
    valid_ids: list[str]  # resource ids of the valid records mixed in


def build_batch(cases: list[Case], source: str, stack: LocalStack, *, valid_every: int = 5) -> Batch:
    """Cases in file order, known-bug cases last, with a valid record before every ``valid_every``."""
    ordered = [c for c in cases if not c.known_bug] + [c for c in cases if c.known_bug]
    records: list[dict[str, Any]] = []
    case_of: dict[str, Case] = {}
    valid_ids: list[str] = []
    if source == "stream":
        arn = stack.resources.tables["PartnerTable"].stream_arn
        assert arn is not None
    else:
        arn = stack.resources.queues["PartnerEventsQueue"].arn

    def add(partial: dict[str, Any], case: Case | None) -> None:
        if source == "stream":
            record = stream_record(partial, arn, 1_000_000 + 100 * len(records))
            identifier = record["dynamodb"]["SequenceNumber"]
        else:
            identifier = f"corpus-{len(records):03d}"
            record = sqs_record(partial["body"], arn, identifier, partial)
        records.append(record)
        if case is not None:
            case_of[identifier] = case

    for index, case in enumerate(ordered):
        if index % valid_every == 0:
            extra = {"secretsArn": stack.resource_secret_name} if index == 0 else {}
            valid = valid_record(f"corpus-valid-{source}-{len(valid_ids)}", **extra)
            valid_ids.append(valid["resourceId"])
            add(
                {"dynamodb": {"NewImage": stream_image(valid)}} if source == "stream" else {"body": json.dumps(valid)},
                None,
            )
        for partial in case.records:
            add(partial, case)
    return Batch({"Records": records}, case_of, valid_ids)


# --------------------------------------------------------------------------------------- checking


def source_identifier(message: dict[str, Any]) -> str | None:
    source = message.get("source") or {}
    return source.get("sequenceNumber") or source.get("messageId")


def store_secrets(cases: list[Case], stack: LocalStack) -> list[str]:
    """Store the cases' secrets in moto server (as they are, tags included); returns the values in
    them, for the leak check (a value read and sent would show there)."""
    client = stack.aws["secretsmanager"]
    values: list[str] = []
    for case in cases:
        for secret in case.secrets:
            name, tags = secret["name"], [{"Key": k, "Value": v} for k, v in secret.get("tags", {}).items()]
            value: dict[str, Any] = (
                {"SecretBinary": base64.b64decode(secret["binary_base64"])}
                if "binary_base64" in secret
                else {"SecretString": secret["string"]}
            )
            try:
                client.create_secret(Name=name, Tags=tags, **value)
            except client.exceptions.ResourceExistsException:  # from an earlier test of the session
                client.put_secret_value(SecretId=name, **value)
            values.extend(secret.get("values", []))
    register_secret(*values, label="a bad-input corpus secret")
    return values


def secret_reads(stack: LocalStack) -> list[str]:
    """The ``SecretId`` of every GetSecretValue moto server has answered in this session."""
    return SECRETS_MANAGER_REQUESTS[stack.aws["secretsmanager"].meta.endpoint_url].named("GetSecretValue")


def check_batch(
    batch: Batch,
    stack: LocalStack,
    response: dict[str, Any],
    captured_logs: LogCapture,
    emitted: str,
    *,
    reads: Sequence[str] = (),
    scanned: Sequence[str] = (),
) -> dict[str, list[str]]:
    """Problems found, by case name (``"batch"`` for the batch as a whole); empty when all is well.
    ``reads``: the secrets read while the batch ran; ``scanned``: more values no output may hold."""
    problems: dict[str, list[str]] = {}

    def problem(name: str, text: str) -> None:
        problems.setdefault(name, []).append(text)

    if response.get("batchItemFailures"):
        reported = [item.get("itemIdentifier") for item in response["batchItemFailures"]]
        for identifier in reported:
            case = batch.case_of.get(identifier)
            problem(case.name if case else "batch", f"reported back to the source ({identifier})")
    messages = drain_json_messages(stack.aws["sqs"], stack.queue_url("FailedRecordsQueue"))
    by_identifier: dict[str, list[dict[str, Any]]] = {}
    for message in messages:
        by_identifier.setdefault(source_identifier(message) or "?", []).append(message)
    for identifier in by_identifier.keys() - batch.case_of.keys():
        problem("batch", f"a failed-records message for a record that is not a parked case ({identifier})")

    for identifier, case in batch.case_of.items():
        got = by_identifier.get(identifier, [])
        expect = case.expect
        if not case.parked:
            if got:
                problem(case.name, f"parked ({got[0].get('reason')}: {got[0].get('detail')!r:.200}) but is valid")
            held = stack.emulator.held_resource(INSTALLATION_ID, expect["resourceId"])
            if held is None:
                problem(case.name, "not in Vercel under its exact id")
                continue
            if held["partnerId"] != expect["resourceId"] or held["status"] != expect["status"]:
                problem(case.name, f"Vercel holds status {held['status']!r} under {held['partnerId']!r:.80}")
            if "metadata" in expect and held.get("metadata") != expect["metadata"]:
                problem(case.name, f"metadata {held.get('metadata')!r:.200}")
            if "metadata_keys" in expect and len(held.get("metadata") or {}) != expect["metadata_keys"]:
                problem(case.name, "metadata keys lost")
            if "name_length" in expect and len(held.get("name", "")) != expect["name_length"]:
                problem(case.name, "name not kept whole")
            continue
        for unread in expect.get("unread", []):
            if any(unread in secret_id for secret_id in reads):
                problem(case.name, f"the value of {unread} was read")
        if "resourceId" in expect and stack.emulator.held_resource(INSTALLATION_ID, expect["resourceId"]) is not None:
            problem(case.name, "expected parked, yet Vercel holds the resource")
        if len(got) != 1:
            problem(case.name, f"{len(got)} failed-records messages, expected exactly one")
            continue
        message = got[0]
        detail = message.get("detail")
        if message.get("reason") != expect["reason"]:
            problem(case.name, f"reason {message.get('reason')!r}, expected {expect['reason']!r} ({detail!r:.300})")
        if message.get("schemaVersion") != 1:
            problem(case.name, "no schemaVersion 1")
        if not isinstance(detail, str) or not detail.strip():
            problem(case.name, "no detail")
            continue
        if len(detail) > expect.get("detail_max", MAX_DETAIL):
            problem(case.name, f"detail of {len(detail)} characters")
        for needle in expect.get("detail", []):
            if needle not in detail:
                problem(case.name, f"detail does not mention {needle!r}: {detail!r:.300}")
        for needle in expect.get("excludes", []):
            if needle in detail:
                problem(case.name, f"detail quotes a value ({needle!r})")

    for resource_id in batch.valid_ids:
        held = stack.emulator.held_resource(INSTALLATION_ID, resource_id)
        if held is None or held["status"] != "ready":
            problem("batch", f"the valid record {resource_id} is not in Vercel")

    everything = "\n".join([*captured_logs.lines, json.dumps(messages), emitted])
    for value in [*stack.secret_values, *scanned]:
        if value in everything:
            problem("batch", "a token or secret value was logged, printed or sent")
    return problems


def run_batch(
    cases: list[Case],
    source: str,
    stack: LocalStack,
    handlers: dict[str, ModuleType],
    captured_logs: LogCapture,
    capfd: pytest.CaptureFixture[str],
) -> dict[str, list[str]]:
    scanned = store_secrets(cases, stack)
    batch = build_batch(cases, source, stack)
    handler = handlers["stream_sync" if source == "stream" else "queue_sync"].lambda_handler
    reads_before = len(secret_reads(stack))
    invocation = invoke(handler, batch.event, function_name=source, timeout_seconds=FUNCTION_TIMEOUT_SECONDS)
    if invocation.error is not None:
        return {"batch": [f"the handler {invocation.error}"]}
    assert isinstance(invocation.response, dict)
    reads = secret_reads(stack)[reads_before:]
    out, err = capfd.readouterr()
    return check_batch(batch, stack, invocation.response, captured_logs, out + err, reads=reads, scanned=scanned)


def describe(problems: dict[str, list[str]]) -> str:
    return "\n".join(f"{name}: {'; '.join(texts)}" for name, texts in sorted(problems.items()))


# ------------------------------------------------------------------------------------------ tests


@pytest.mark.parametrize(
    "template_parameters",
    [{"CreatedPartnerQueueType": "standard"}, {"CreatedPartnerQueueType": "fifo"}],
    ids=["standard", "fifo-one-group"],
)
def test_queue_cases_in_one_batch_with_valid_records(
    template_parameters: dict[str, str],
    local_stack: LocalStack,
    handlers: dict[str, ModuleType],
    captured_logs: LogCapture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    cases = [case for case in CASES if case.source == "sqs" and not case.known_bug]
    problems = run_batch(cases, "sqs", local_stack, handlers, captured_logs, capfd)
    assert not problems, describe(problems)


def test_stream_cases_in_one_batch_with_valid_records(
    local_stack: LocalStack,
    handlers: dict[str, ModuleType],
    captured_logs: LogCapture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    cases = [case for case in CASES if case.source == "stream" and not case.known_bug]
    problems = run_batch(cases, "stream", local_stack, handlers, captured_logs, capfd)
    assert not problems, describe(problems)


def known_bug_cases() -> Iterator[Any]:
    for case in CASES:
        if case.known_bug:
            yield pytest.param(case, id=case.name, marks=pytest.mark.xfail(strict=False, reason=case.known_bug))


@pytest.mark.parametrize(
    "case",
    list(known_bug_cases()) or [pytest.param(None, marks=pytest.mark.skip("no corpus case is marked as a known bug"))],
)
def test_known_bug_case_on_its_own(
    case: Case,
    local_stack: LocalStack,
    handlers: dict[str, ModuleType],
    captured_logs: LogCapture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    problems = run_batch([case], case.source, local_stack, handlers, captured_logs, capfd)
    assert not problems, describe(problems)


def test_files_decode_to_what_they_describe() -> None:
    """A few generated inputs are what their names say (the generators work)."""
    by_name = {case.name.split("_", 1)[1]: case for case in CASES}
    assert len(json.loads(by_name["resource_id_10kb"].records[0]["body"])["resourceId"]) == 10240
    assert "\udce9" in by_name["raw_surrogates_in_body"].records[0]["body"]
    assert by_name["deeply_nested_body"].records[0]["body"].startswith("[" * 1000)
    sets = by_name["stream_sets_and_binary_in_metadata"].records[0]["dynamodb"]["NewImage"]["metadata"]["M"]
    assert base64.b64decode(sets["blob"]["B"]) == b"\x00\xff\xfe"
