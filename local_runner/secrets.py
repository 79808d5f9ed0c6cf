"""Secret changes in moto server, delivered to the rotation handler as EventBridge would deliver them.

Deployed, a change of a resource secret reaches ``RotationSyncFunction`` through CloudTrail and
EventBridge (``template.yaml``'s ``RotationEventsRule``). moto records no CloudTrail and sends no
events, so :class:`SecretRotationPoller` stands in for both: it lists the secrets under a prefix
(``ListSecrets``, whose entries carry each version's stages), and when a secret's ``AWSCURRENT``
version is not the one it saw last, it invokes the handler once, asynchronously as Lambda would,
with the event CloudTrail would give EventBridge for that ``PutSecretValue`` (detail-type
``AWS API Call via CloudTrail``; ``requestParameters.secretId`` the name, ``responseElements`` the
ARN and version id; never a value: CloudTrail logs none).

What it mirrors: one invocation per changed secret; a failed invocation (the handler raised or
timed out) is retried ``max_retry_attempts`` times (Lambda's asynchronous default, 2) after
``retry_delay_seconds``, then handed to ``on_failure`` (e.g. :func:`send_failure_to_queue`, the
rule's on-failure destination queue) in the shape of Lambda's destination record.

What it simplifies: the versions current when the poller starts are its baseline (no event for
them); a change is seen at the next poll, not after CloudTrail's delay of seconds to minutes;
several changes of one secret between two polls make one event (the handler reads the current
value anyway, as it would for a late event); ``RotationSucceeded`` is not produced (a rotation's
last step makes a new version current, which this poller reports as a ``PutSecretValue``).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from local_runner.invocation import Handler, PollResult, invoke

CURRENT_STAGE = "AWSCURRENT"
# Lambda's asynchronous invocation: two more tries after a function error.
DEFAULT_MAX_RETRY_ATTEMPTS = 2

FailureHandler = Callable[[dict[str, Any], str, int], None]
"""``on_failure(event, error, attempts)``: what happens to an event whose tries all failed."""


def put_secret_value_event(
    name: str, arn: str, version_id: str, *, account: str, region: str, now: datetime | None = None
) -> dict[str, Any]:
    """The EventBridge event of a successful ``PutSecretValue`` call, as CloudTrail gives it."""
    moment = (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "AWS API Call via CloudTrail",
        "source": "aws.secretsmanager",
        "account": account,
        "time": moment,
        "region": region,
        "resources": [],
        "detail": {
            "eventVersion": "1.09",
            "userIdentity": {"type": "AssumedRole", "accountId": account},
            "eventTime": moment,
            "eventSource": "secretsmanager.amazonaws.com",
            "eventName": "PutSecretValue",
            "awsRegion": region,
            "requestParameters": {"secretId": name, "clientRequestToken": version_id},
            "responseElements": {"arn": arn, "versionId": version_id},
            "eventID": str(uuid.uuid4()),
            "readOnly": False,
            "eventType": "AwsApiCall",
            "managementEvent": True,
            "recipientAccountId": account,
            "eventCategory": "Management",
        },
    }


@dataclass
class _Delivery:
    event: dict[str, Any]
    secret_name: str
    attempts: int = 0
    due: float = 0.0


class SecretRotationPoller:
    """Watches the secrets under ``prefix`` and invokes ``handler`` when one's current version changes."""

    def __init__(
        self,
        secretsmanager: Any,
        handler: Handler,
        *,
        prefix: str,
        function_name: str = "vercel-resource-sync-local-rotation-sync",
        timeout_seconds: float = 120.0,
        max_retry_attempts: int = DEFAULT_MAX_RETRY_ATTEMPTS,
        retry_delay_seconds: float = 1.0,
        on_failure: FailureHandler | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not prefix:
            raise ValueError("a prefix is needed: the rule matches secrets under the resource-secret prefix only")
        self.name = f"secrets {prefix}*"
        self._client = secretsmanager
        self._handler = handler
        self._prefix = prefix
        self._function_name = function_name
        self._timeout_seconds = timeout_seconds
        self._max_retry_attempts = max_retry_attempts
        self._retry_delay_seconds = retry_delay_seconds
        self._on_failure = on_failure
        self._clock = clock
        self._pending: list[_Delivery] = []
        self._seen = self._current_versions()  # the baseline: no event for what is current now

    def _current_versions(self) -> dict[str, tuple[str, str]]:
        """Secret name -> (ARN, AWSCURRENT version id), for every secret under the prefix."""
        current: dict[str, tuple[str, str]] = {}
        request: dict[str, Any] = {"Filters": [{"Key": "name", "Values": [self._prefix]}], "MaxResults": 100}
        while True:
            page = self._client.list_secrets(**request)
            for secret in page.get("SecretList", []):
                name = secret.get("Name", "")
                if not name.startswith(self._prefix):  # the name filter matches more than a prefix
                    continue
                stages = secret.get("SecretVersionsToStages") or {}
                version = next((v for v, labels in stages.items() if CURRENT_STAGE in labels), None)
                if version is not None:
                    current[name] = (secret["ARN"], version)
            token = page.get("NextToken")
            if not token:
                return current
            request["NextToken"] = token

    def _notice_changes(self) -> None:
        current = self._current_versions()
        for name, (arn, version) in sorted(current.items()):
            if self._seen.get(name) != (arn, version):
                # arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME-AbCdEf
                parts = arn.split(":")
                event = put_secret_value_event(name, arn, version, account=parts[4], region=parts[3])
                self._pending.append(_Delivery(event, name))
        self._seen = current

    def poll_once(self) -> PollResult:
        """At most one invocation: a retry that is due, else the oldest change noticed."""
        self._notice_changes()
        now = self._clock()
        delivery = next((d for d in self._pending if d.due <= now), None)
        if delivery is None:
            return PollResult(self.name)
        delivery.attempts += 1
        outcome = invoke(
            self._handler, delivery.event, function_name=self._function_name, timeout_seconds=self._timeout_seconds
        )
        label = f"{delivery.secret_name} (PutSecretValue)"
        if outcome.error is None:
            self._pending.remove(delivery)
            return PollResult(self.name, records=1, outcome="ok", notes=(label,))
        if delivery.attempts <= self._max_retry_attempts:
            delivery.due = now + self._retry_delay_seconds
            notes = (
                label,
                f"retry {delivery.attempts} of {self._max_retry_attempts} in {self._retry_delay_seconds:g} s",
            )
            return PollResult(self.name, records=1, error=outcome.error, outcome="failed", notes=notes)
        self._pending.remove(delivery)
        if self._on_failure is not None:
            self._on_failure(delivery.event, outcome.error, delivery.attempts)
        notes = (
            label,
            f"gave up after {delivery.attempts} tries" + (": on-failure destination" if self._on_failure else ""),
        )
        return PollResult(self.name, records=1, error=outcome.error, outcome="gave up", notes=notes)

    def is_drained(self) -> bool:
        """No change waiting to be delivered and no retry waiting for its time."""
        return not self._pending


def send_failure_to_queue(sqs: Any, queue_url: str, *, function_arn: str | None = None) -> FailureHandler:
    """An on-failure destination: the event, wrapped as Lambda's destination record, to an SQS queue."""

    def send(event: dict[str, Any], error: str, attempts: int) -> None:
        record = {
            "version": "1.0",
            "timestamp": datetime.now(UTC).isoformat(),
            "requestContext": {
                "requestId": str(uuid.uuid4()),
                "functionArn": function_arn or "arn:aws:lambda:us-east-1:123456789012:function:rotation-sync",
                "condition": "RetriesExhausted",
                "approximateInvokeCount": attempts,
            },
            "requestPayload": event,
            "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
            "responsePayload": {"errorType": error},
        }
        sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps(record))

    return send
