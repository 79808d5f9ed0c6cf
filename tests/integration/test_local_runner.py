"""The local triggers against moto server (real HTTP), with fake handlers recording what they get."""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

from local_runner import QueuePoller, Runner, RunnerTimeout, StreamPoller, send_to_queue
from local_runner.__main__ import main

pytestmark = pytest.mark.integration

REGION = "us-east-1"
STREAM_RECORD_KEYS = {"eventID", "eventName", "eventVersion", "eventSource", "awsRegion", "dynamodb", "eventSourceARN"}
SQS_RECORD_KEYS = {
    "messageId",
    "receiptHandle",
    "body",
    "attributes",
    "messageAttributes",
    "md5OfBody",
    "eventSource",
    "eventSourceARN",
    "awsRegion",
}
Respond = Callable[[dict[str, Any], int], Any]


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto server's request log
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def aws_client(endpoint: str, service: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


@pytest.fixture(scope="module")
def dynamodb(endpoint: str) -> Any:
    return aws_client(endpoint, "dynamodb")


@pytest.fixture(scope="module")
def streams(endpoint: str) -> Any:
    return aws_client(endpoint, "dynamodbstreams")


@pytest.fixture(scope="module")
def sqs(endpoint: str) -> Any:
    return aws_client(endpoint, "sqs")


@dataclass
class PartnerTable:
    """A table shaped like the template's PartnerTable, with its NEW_AND_OLD_IMAGES stream."""

    client: Any
    name: str
    stream_arn: str

    def put(self, resource_id: str, status: str = "active", **extra: str) -> None:
        item = {
            "integrationConfigurationId": {"S": "icfg_test"},
            "resourceId": {"S": resource_id},
            "status": {"S": status},
        }
        item |= {name: {"S": value} for name, value in extra.items()}
        self.client.put_item(TableName=self.name, Item=item)

    def delete(self, resource_id: str) -> None:
        key = {"integrationConfigurationId": {"S": "icfg_test"}, "resourceId": {"S": resource_id}}
        self.client.delete_item(TableName=self.name, Key=key)


@pytest.fixture
def table(dynamodb: Any) -> PartnerTable:
    name = f"partner-{uuid.uuid4().hex[:8]}"
    created = dynamodb.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": "integrationConfigurationId", "AttributeType": "S"},
            {"AttributeName": "resourceId", "AttributeType": "S"},
        ],
        KeySchema=[
            {"AttributeName": "integrationConfigurationId", "KeyType": "HASH"},
            {"AttributeName": "resourceId", "KeyType": "RANGE"},
        ],
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )
    return PartnerTable(dynamodb, name, created["TableDescription"]["LatestStreamArn"])


def make_queue(sqs: Any, *, fifo: bool = False, visibility_timeout: int = 1, **attributes: str) -> str:
    name = f"partner-events-{uuid.uuid4().hex[:8]}" + (".fifo" if fifo else "")
    attributes = {"VisibilityTimeout": str(visibility_timeout), **attributes}
    if fifo:
        attributes["FifoQueue"] = "true"
    return str(sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"])


class Recorder:
    """A fake handler: keeps a copy of each event and the remaining time it was given; answers with ``respond``."""

    def __init__(self, respond: Respond | None = None) -> None:
        self.events: list[dict[str, Any]] = []
        self.remaining_ms: list[tuple[int, int]] = []
        self.respond = respond

    def __call__(self, event: dict[str, Any], context: Any) -> Any:
        self.events.append(copy.deepcopy(event))
        at_start = context.get_remaining_time_in_millis()
        time.sleep(0.02)
        self.remaining_ms.append((at_start, context.get_remaining_time_in_millis()))
        if self.respond is None:
            return {"batchItemFailures": []}
        return self.respond(event, len(self.events))

    def sequence_numbers(self) -> list[list[str]]:
        return [[r["dynamodb"]["SequenceNumber"] for r in event["Records"]] for event in self.events]

    def bodies(self) -> list[list[str]]:
        return [[r["body"] for r in event["Records"]] for event in self.events]


def stream_poller(streams: Any, table: PartnerTable, handler: Recorder, **options: Any) -> StreamPoller:
    return StreamPoller(streams, table.stream_arn, handler, **{"retry_delay_seconds": 0.0, **options})


def queue_poller(sqs: Any, queue_url: str, handler: Recorder, **options: Any) -> QueuePoller:
    return QueuePoller(sqs, queue_url, handler, **{"wait_time_seconds": 0, **options})


def run_until_idle(*pollers: Any, timeout: float = 10.0) -> Any:
    return Runner(pollers, idle_sleep_seconds=0.05).run_until_idle(idle_seconds=0.2, timeout_seconds=timeout)


def receive_all(sqs: Any, queue_url: str) -> list[dict[str, Any]]:
    return sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, AttributeNames=["All"]).get("Messages", [])


# ---------------------------------------------------------------------------------------- stream


def test_stream_event_has_the_lambda_shape_with_insert_modify_remove_in_order(
    streams: Any, table: PartnerTable
) -> None:
    table.put("db_1", "provisioning")
    table.put("db_1", "active")
    table.delete("db_1")
    handler = Recorder()
    poller = stream_poller(streams, table, handler)

    result = poller.poll_once()

    assert (result.records, result.outcome, result.reported) == (3, "ok", ())
    [event] = handler.events
    assert list(event) == ["Records"]
    records = event["Records"]
    assert [r["eventName"] for r in records] == ["INSERT", "MODIFY", "REMOVE"]
    now = time.time()
    for record in records:
        assert set(record) == STREAM_RECORD_KEYS
        assert record["eventVersion"] == "1.1"
        assert record["eventSource"] == "aws:dynamodb"
        assert record["awsRegion"] == REGION
        assert record["eventSourceARN"] == table.stream_arn
        change = record["dynamodb"]
        created = change["ApproximateCreationDateTime"]
        assert isinstance(created, int)
        assert not isinstance(created, bool)
        assert now - 60 < created <= now
        assert change["Keys"] == {"integrationConfigurationId": {"S": "icfg_test"}, "resourceId": {"S": "db_1"}}
        assert change["StreamViewType"] == "NEW_AND_OLD_IMAGES"
        assert isinstance(change["SizeBytes"], int)
    insert, modify, remove = (r["dynamodb"] for r in records)
    assert "OldImage" not in insert
    assert insert["NewImage"]["status"] == {"S": "provisioning"}
    assert modify["OldImage"]["status"] == {"S": "provisioning"}
    assert modify["NewImage"]["status"] == {"S": "active"}
    assert "NewImage" not in remove
    assert remove["OldImage"]["status"] == {"S": "active"}
    assert list(insert) == [
        "ApproximateCreationDateTime",
        "Keys",
        "NewImage",
        "SequenceNumber",
        "SizeBytes",
        "StreamViewType",
    ]
    sequence = [int(n) for n in handler.sequence_numbers()[0]]
    assert sequence == sorted(sequence)
    assert len(set(sequence)) == 3
    # A fresh context per invocation, counting down from the template's 60 s timeout.
    at_start, later = handler.remaining_ms[0]
    assert 59_000 < at_start <= 60_000
    assert later <= at_start - 15

    assert not poller.poll_once().delivered
    assert poller.is_drained()


def test_stream_batches_hold_at_most_batch_size_records_in_sequence_order(streams: Any, table: PartnerTable) -> None:
    for n in range(5):
        table.put(f"db_{n}")
    handler = Recorder()

    run_until_idle(stream_poller(streams, table, handler, batch_size=2))

    batches = handler.sequence_numbers()
    assert [len(batch) for batch in batches] == [2, 2, 1]
    flat = [int(n) for batch in batches for n in batch]
    assert flat == sorted(flat)
    assert len(set(flat)) == 5


def test_a_reported_sequence_number_redelivers_from_that_record_only(streams: Any, table: PartnerTable) -> None:
    for n in range(4):
        table.put(f"db_{n}")

    def fail_the_last_two_once(event: dict[str, Any], call: int) -> dict[str, Any]:
        numbers = [r["dynamodb"]["SequenceNumber"] for r in event["Records"]]
        # Reported out of order: Lambda takes the lowest as the checkpoint.
        reported = [numbers[3], numbers[2]] if call == 1 else []
        return {"batchItemFailures": [{"itemIdentifier": n} for n in reported]}

    handler = Recorder(fail_the_last_two_once)
    poller = stream_poller(streams, table, handler)

    first = poller.poll_once()
    second = poller.poll_once()

    sent = handler.sequence_numbers()
    assert first.outcome == "partial"
    assert first.reported == (sent[0][2], sent[0][3])
    assert sent[1] == sent[0][2:]
    assert second.outcome == "ok"
    assert not poller.poll_once().delivered


@pytest.mark.parametrize(
    "failure",
    [
        pytest.param(lambda event: (_ for _ in ()).throw(RuntimeError("boom")), id="raises"),
        pytest.param(lambda event: {"batchItemFailures": [{"itemIdentifier": "12345"}]}, id="unknown-identifier"),
        pytest.param(lambda event: {"batchItemFailures": [{"itemIdentifier": ""}]}, id="empty-identifier"),
        pytest.param(lambda event: {"batchItemFailures": [{"id": "x"}]}, id="bad-key"),
        pytest.param(lambda event: "done", id="not-an-object"),
    ],
)
def test_a_failed_invocation_redelivers_the_whole_stream_batch(
    streams: Any, table: PartnerTable, failure: Callable[[dict[str, Any]], Any]
) -> None:
    for n in range(3):
        table.put(f"db_{n}")
    handler = Recorder(lambda event, call: failure(event) if call == 1 else None)
    poller = stream_poller(streams, table, handler)

    first = poller.poll_once()
    second = poller.poll_once()

    assert first.outcome == "failed"
    assert first.error
    assert second.outcome == "ok"
    assert handler.sequence_numbers()[1] == handler.sequence_numbers()[0]
    assert len(handler.sequence_numbers()[0]) == 3


def test_a_handler_past_its_timeout_fails_like_a_lambda_timeout(streams: Any, table: PartnerTable) -> None:
    table.put("db_slow")
    # Generous numbers: the second, quick invocation must fit in its timeout on a loaded machine.
    handler = Recorder(lambda event, call: time.sleep(0.7) if call == 1 else None)
    poller = stream_poller(streams, table, handler, timeout_seconds=0.5)

    first = poller.poll_once()
    second = poller.poll_once()

    assert first.error == "timed out after 0.5 s"
    assert second.outcome == "ok"
    assert handler.sequence_numbers()[0] == handler.sequence_numbers()[1]
    assert handler.remaining_ms[0][0] <= 500


def test_exhausted_retries_bisect_then_send_the_position_to_the_on_failure_queue(
    streams: Any, sqs: Any, table: PartnerTable
) -> None:
    for n in range(4):
        table.put(f"db_{n}", secretsArn="partner/resources/icfg_test/db_2" if n == 2 else "")
    poison = "db_2"

    def fail_with_poison(event: dict[str, Any], call: int) -> None:
        if any(r["dynamodb"]["Keys"]["resourceId"]["S"] == poison for r in event["Records"]):
            raise RuntimeError("cannot sync")

    handler = Recorder(fail_with_poison)
    on_failure_url = make_queue(sqs)
    poller = stream_poller(streams, table, handler, max_retry_attempts=1, on_failure=send_to_queue(sqs, on_failure_url))

    run_until_idle(poller)

    # [0-3] x2, bisected: [0,1] ok, [2,3] x2, bisected: [2] x2, given up, [3] ok.
    sizes = [len(batch) for batch in handler.sequence_numbers()]
    assert sizes == [4, 4, 2, 2, 2, 1, 1, 1]
    poison_sequence = handler.sequence_numbers()[5][0]
    [message] = receive_all(sqs, on_failure_url)
    failure = json.loads(message["Body"])
    info = failure["DDBStreamBatchInfo"]
    assert info["startSequenceNumber"] == info["endSequenceNumber"] == poison_sequence
    assert info["batchSize"] == 1
    assert info["streamArn"] == table.stream_arn
    assert info["shardId"].startswith("shardId-")
    assert failure["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert failure["requestContext"]["approximateInvokeCount"] == 2
    assert failure["responseContext"]["functionError"] == "Unhandled"
    assert "partner/resources" not in message["Body"]  # the position, never the records

    # The stream moved on: the next change is delivered, in a full-size batch again.
    table.put("db_4")
    table.put("db_5")
    result = poller.poll_once()
    assert (result.records, result.outcome) == (2, "ok")


def test_without_bisecting_the_whole_failed_batch_is_given_up(streams: Any, table: PartnerTable) -> None:
    for n in range(3):
        table.put(f"db_{n}")
    given_up: list[dict[str, Any]] = []
    handler = Recorder(
        lambda event, call: {
            "batchItemFailures": [{"itemIdentifier": event["Records"][1]["dynamodb"]["SequenceNumber"]}]
        }
    )
    poller = stream_poller(
        streams, table, handler, max_retry_attempts=0, bisect_batch_on_function_error=False, on_failure=given_up.append
    )

    result = poller.poll_once()

    assert result.outcome == "gave up"
    [failure] = given_up
    sent = handler.sequence_numbers()[0]
    info = failure["DDBStreamBatchInfo"]
    assert (info["startSequenceNumber"], info["endSequenceNumber"], info["batchSize"]) == (sent[1], sent[2], 2)
    assert "functionError" not in failure["responseContext"]  # a partial response is no function error
    assert not poller.poll_once().delivered
    assert poller.is_drained()


# ---------------------------------------------------------------------------------------- queue


def test_queue_event_has_the_lambda_shape(sqs: Any) -> None:
    queue_url = make_queue(sqs)
    body = json.dumps({"resourceId": "db_1"})
    sqs.send_message(
        QueueUrl=queue_url,
        MessageBody=body,
        MessageAttributes={
            "kind": {"DataType": "String", "StringValue": "partner"},
            "attempt": {"DataType": "Number", "StringValue": "3"},
            "blob": {"DataType": "Binary", "BinaryValue": b"\x00\x01\xff"},
        },
    )
    sqs.send_message(QueueUrl=queue_url, MessageBody="plain")
    handler = Recorder()
    poller = queue_poller(sqs, queue_url, handler, wait_time_seconds=1)

    result = poller.poll_once()

    assert (result.records, result.outcome) == (2, "ok")
    [event] = handler.events
    with_attributes, plain = event["Records"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    for record in (with_attributes, plain):
        assert set(record) - {"md5OfMessageAttributes"} == SQS_RECORD_KEYS
        assert record["eventSource"] == "aws:sqs"
        assert record["eventSourceARN"] == queue_arn
        assert record["awsRegion"] == REGION
        assert record["md5OfBody"] == hashlib.md5(record["body"].encode()).hexdigest()  # noqa: S324 - SQS's digest
        assert list(record["attributes"]) == [
            "ApproximateReceiveCount",
            "SentTimestamp",
            "SenderId",
            "ApproximateFirstReceiveTimestamp",
        ]
        assert record["attributes"]["ApproximateReceiveCount"] == "1"
    assert with_attributes["body"] == body
    assert with_attributes["messageAttributes"] == {
        "kind": {"stringValue": "partner", "stringListValues": [], "binaryListValues": [], "dataType": "String"},
        "attempt": {"stringValue": "3", "stringListValues": [], "binaryListValues": [], "dataType": "Number"},
        "blob": {"binaryValue": "AAH/", "stringListValues": [], "binaryListValues": [], "dataType": "Binary"},
    }
    assert plain["messageAttributes"] == {}
    assert "md5OfMessageAttributes" not in plain
    assert poller.is_drained()  # both deleted


def test_unreported_messages_are_deleted_and_reported_ones_come_back(sqs: Any) -> None:
    queue_url = make_queue(sqs)
    for body in ("a", "b", "c"):
        sqs.send_message(QueueUrl=queue_url, MessageBody=body)

    def fail_b_once(event: dict[str, Any], call: int) -> dict[str, Any]:
        failed = [r["messageId"] for r in event["Records"] if r["body"] == "b" and call == 1]
        return {"batchItemFailures": [{"itemIdentifier": m} for m in failed]}

    handler = Recorder(fail_b_once)
    poller = queue_poller(sqs, queue_url, handler)

    first = poller.poll_once()
    assert first.outcome == "partial"
    assert first.notes == ("2 deleted", "1 left in the queue")
    assert not poller.is_drained()  # b is in flight until its visibility timeout
    run_until_idle(poller)

    assert sorted(handler.bodies()[0]) == ["a", "b", "c"]
    assert handler.bodies()[1:] == [["b"]]
    assert handler.events[1]["Records"][0]["attributes"]["ApproximateReceiveCount"] == "2"
    assert poller.is_drained()


def test_a_raised_exception_leaves_the_whole_batch_in_the_queue(sqs: Any) -> None:
    queue_url = make_queue(sqs)
    for body in ("a", "b"):
        sqs.send_message(QueueUrl=queue_url, MessageBody=body)
    handler = Recorder(lambda event, call: (_ for _ in ()).throw(ValueError("no")) if call == 1 else None)
    poller = queue_poller(sqs, queue_url, handler)

    first = poller.poll_once()
    run_until_idle(poller)

    assert first.error == "raised ValueError"
    assert first.notes == ("2 left in the queue",)
    assert [sorted(bodies) for bodies in handler.bodies()] == [["a", "b"], ["a", "b"]]
    assert {r["attributes"]["ApproximateReceiveCount"] for r in handler.events[1]["Records"]} == {"2"}


def test_fifo_groups_keep_their_order_and_a_failed_message_holds_back_its_group(sqs: Any) -> None:
    queue_url = make_queue(sqs, fifo=True)

    def send(body: str) -> None:
        sqs.send_message(QueueUrl=queue_url, MessageBody=body, MessageGroupId=body[0], MessageDeduplicationId=body)

    for body in ("a1", "b1", "a2", "a3", "b2"):
        send(body)

    def fail_a3_once(event: dict[str, Any], call: int) -> dict[str, Any]:
        if call != 1:
            return {"batchItemFailures": []}
        send("a4")  # arrives while a3 is in flight: it must wait for a3
        failed = [r["messageId"] for r in event["Records"] if r["body"] == "a3"]
        return {"batchItemFailures": [{"itemIdentifier": m} for m in failed]}

    handler = Recorder(fail_a3_once)
    poller = queue_poller(sqs, queue_url, handler)

    run_until_idle(poller)

    first = handler.events[0]["Records"]
    by_group: dict[str, list[str]] = {}
    for record in first:
        by_group.setdefault(record["attributes"]["MessageGroupId"], []).append(record["body"])
        assert {"MessageGroupId", "MessageDeduplicationId", "SequenceNumber"} <= set(record["attributes"])
    assert by_group == {"a": ["a1", "a2", "a3"], "b": ["b1", "b2"]}
    # moto 5.2.5 gives back several in-flight messages of one group in reverse order once they are
    # visible again (SQS keeps the order), so only one failed message is checked here.
    assert handler.bodies()[1:] == [["a3", "a4"]]
    assert handler.events[1]["Records"][0]["attributes"]["ApproximateReceiveCount"] == "2"


def test_a_message_that_keeps_failing_ends_in_the_dead_letter_queue(sqs: Any) -> None:
    dead_letter_url = make_queue(sqs)
    dead_letter_arn = sqs.get_queue_attributes(QueueUrl=dead_letter_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    redrive = json.dumps({"deadLetterTargetArn": dead_letter_arn, "maxReceiveCount": 2})
    queue_url = make_queue(sqs, RedrivePolicy=redrive)
    sqs.send_message(QueueUrl=queue_url, MessageBody="never")
    handler = Recorder(
        lambda event, call: {"batchItemFailures": [{"itemIdentifier": event["Records"][0]["messageId"]}]}
    )

    run_until_idle(queue_poller(sqs, queue_url, handler))

    assert handler.bodies() == [["never"], ["never"]]
    assert [m["Body"] for m in receive_all(sqs, dead_letter_url)] == ["never"]


# ---------------------------------------------------------------------------------------- runner and CLI


def test_run_until_idle_drives_stream_and_queue_then_returns(streams: Any, sqs: Any, table: PartnerTable) -> None:
    queue_url = make_queue(sqs, fifo=True, ContentBasedDeduplication="true")
    table.put("db_1")
    sqs.send_message(QueueUrl=queue_url, MessageBody="m1", MessageGroupId="g")
    stream_handler, queue_handler = Recorder(), Recorder()
    lines: list[str] = []
    runner = Runner(
        [stream_poller(streams, table, stream_handler), queue_poller(sqs, queue_url, queue_handler)],
        idle_sleep_seconds=0.05,
        on_invocation=lambda result: lines.append(result.describe()),
    )

    started = time.monotonic()
    summary = runner.run_until_idle(idle_seconds=0.2, timeout_seconds=10)

    assert time.monotonic() - started < 9  # idle well before the timeout
    assert (summary.invocations, summary.records, summary.reported_failures) == (2, 2, 0)
    assert len(stream_handler.events) == len(queue_handler.events) == 1
    assert sorted(line.split(":")[0].split()[0] for line in lines) == ["queue", "stream"]
    assert [result.describe() for result in summary] == lines  # the summary iterates over the invocations


def test_run_until_idle_gives_up_when_a_message_keeps_failing(sqs: Any) -> None:
    queue_url = make_queue(sqs)
    sqs.send_message(QueueUrl=queue_url, MessageBody="never")
    handler = Recorder(lambda event, call: (_ for _ in ()).throw(RuntimeError("down")))

    with pytest.raises(RunnerTimeout) as raised:
        Runner([queue_poller(sqs, queue_url, handler)], idle_sleep_seconds=0.05).run_until_idle(
            0.2, timeout_seconds=1.5
        )

    assert raised.value.summary.failed_invocations >= 1


def test_run_forever_stops_when_asked(sqs: Any) -> None:
    queue_url = make_queue(sqs)
    runner = Runner([queue_poller(sqs, queue_url, Recorder(), wait_time_seconds=1)], idle_sleep_seconds=0.05)
    stop = threading.Event()
    threading.Timer(0.3, stop.set).start()

    started = time.monotonic()
    summary = runner.run_forever(stop)

    assert time.monotonic() - started < 5  # at most one long poll (1 s) after the stop, with room for a slow machine
    assert summary.invocations == 0


def test_cli_runs_until_idle_printing_one_line_per_invocation_and_no_contents(
    endpoint: str, sqs: Any, table: PartnerTable, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    secret = "pw-" + uuid.uuid4().hex
    table.put("db_1", password=secret)
    table.put("db_2")
    queue_url = make_queue(sqs)
    sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps({"password": secret}))
    handlers = {"stream_sync": Recorder(), "queue_sync": Recorder()}
    lines: list[str] = []

    argv = ["--table", table.name, "--queue-url", queue_url, "--wait-time-seconds", "0"]
    code = main(
        [*argv, "--until-idle", "--idle-seconds", "0.2", "--timeout", "10"], load=handlers.__getitem__, out=lines.append
    )

    assert code == 0, lines
    invocation_lines = [line for line in lines if " records in" in line or " record in" in line]
    assert len(invocation_lines) == 2
    assert any(f"stream {table.name}" in line and "2 records in, no failures" in line for line in invocation_lines)
    assert any("1 record in, no failures, 1 deleted" in line for line in invocation_lines)
    assert lines[-1].startswith("done: 2 invocations, 3 records")
    assert all(secret not in line for line in lines)
    assert handlers["stream_sync"].events[0]["Records"][0]["eventSourceARN"] == table.stream_arn
