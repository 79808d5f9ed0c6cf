"""A run with the root logger at DEBUG (as ``logging.basicConfig(level=DEBUG)`` or Lambda's log
level would set it): the real handlers over moto server and the emulator, every log record of every
logger captured, and no token or secret value in any of them.

At DEBUG, botocore logs whole requests and answers: GetSecretValue's ``SecretString`` would carry
every resource secret value and the installation token into the function's logs. The SDK loggers
are pinned (``observability.pin_sdk_loggers``), so the root's level does not reach them.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest
from boto3.dynamodb.types import TypeSerializer

from local_aws.provision import drain_json_messages
from local_runner import QueuePoller, Runner, StreamPoller
from tests.integration.conftest import INSTALLATION_ID, LocalStack
from tests.integration.support import record
from vercel_sync.observability import SDK_LOGGERS, logger

pytestmark = pytest.mark.integration

SERIALIZER = TypeSerializer()


class EveryRecord:
    """Every log record any logger hands to its handlers (whatever handlers, propagation or
    filters then do with it): its logger, level, message and all its fields."""

    def __init__(self) -> None:
        self.records: list[tuple[str, int, str]] = []

    def text(self) -> str:
        return "\n".join(text for _, _, text in self.records)


@pytest.fixture
def every_record(monkeypatch: pytest.MonkeyPatch) -> Iterator[EveryRecord]:
    captured = EveryRecord()
    call_handlers = logging.Logger.callHandlers  # the leak scan's, which scans and then hands on

    def capture(self: logging.Logger, record: logging.LogRecord) -> None:
        fields = json.dumps(record.__dict__, default=repr, ensure_ascii=False)
        captured.records.append((record.name, record.levelno, record.getMessage() + "\n" + fields))
        call_handlers(self, record)

    monkeypatch.setattr(logging.Logger, "callHandlers", capture)
    root = logging.getLogger()
    root_level, service_level = root.level, logger.log_level
    # What logging.basicConfig(level=DEBUG) does to a root logger that has handlers already (here,
    # pytest's; in Lambda, the runtime's): its level. The service's own logger at DEBUG too.
    root.setLevel(logging.DEBUG)
    logger.setLevel("DEBUG")
    try:
        yield captured
    finally:
        root.setLevel(root_level)
        logger.setLevel(service_level)


def partner_record(resource_id: str, secret_name: str, status: str = "active") -> dict[str, Any]:
    return record(resource_id, status, secretsArn=secret_name, secretsPrefix="ORDERS")


@pytest.mark.parametrize("template_parameters", [{"CreatedPartnerQueueType": "standard"}])
def test_a_root_debug_run_logs_no_token_or_secret_value(
    local_stack: LocalStack, handlers: dict[str, ModuleType], every_record: EveryRecord
) -> None:
    secret_name = local_stack.resource_secret_name
    table = local_stack.resources.tables["PartnerTable"]
    for resource_id in ("db_debug_1", "db_debug_2"):
        local_stack.aws["dynamodb"].put_item(
            TableName=table.name,
            Item={k: SERIALIZER.serialize(v) for k, v in partner_record(resource_id, secret_name).items()},
        )
    queue_url = local_stack.queue_url("PartnerEventsQueue")
    local_stack.aws["sqs"].send_message(QueueUrl=queue_url, MessageBody=json.dumps(partner_record("q_1", secret_name)))
    # One record parked too (its failed-records message is sent through botocore).
    local_stack.aws["sqs"].send_message(
        QueueUrl=queue_url, MessageBody=json.dumps(partner_record("q_bad", secret_name, status="melting"))
    )
    streams = local_stack.aws["dynamodbstreams"]
    pollers = [
        StreamPoller(streams, table.stream_arn, handlers["stream_sync"].lambda_handler, retry_delay_seconds=0.1),
        QueuePoller(local_stack.aws["sqs"], queue_url, handlers["queue_sync"].lambda_handler),
    ]

    results = list(Runner(pollers).run_until_idle(idle_seconds=0.3, timeout_seconds=30))

    assert [identifier for result in results for identifier in result.reported] == []
    for resource_id in ("db_debug_1", "db_debug_2", "q_1"):
        assert local_stack.emulator.held_resource(INSTALLATION_ID, resource_id) is not None
    parked = drain_json_messages(local_stack.aws["sqs"], local_stack.queue_url("FailedRecordsQueue"))
    assert [message["resourceId"] for message in parked] == ["q_bad"]
    # The run was logged at DEBUG (the service's own lines), and the SDKs said nothing below WARNING.
    assert any(level == logging.DEBUG for _, level, _ in every_record.records)
    sdk_chatter = [
        name for name, level, _ in every_record.records if name.split(".")[0] in SDK_LOGGERS and level < logging.WARNING
    ]
    assert sdk_chatter == []
    everything = every_record.text()
    for value in local_stack.secret_values:
        for form in (value, json.dumps(value)[1:-1]):
            assert form not in everything, "a token or secret value was logged"
