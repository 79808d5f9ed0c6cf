"""The chaos suite's machinery: a partner that makes changes, a world of real servers, and a driver
that delivers the changes to the real handlers as Lambda's event source mappings would.

- :class:`Partner` is the oracle. It makes seeded changes to its resources (puts, deletes,
  ``deleted: true``, a ``version`` per resource), some of them permanently bad on purpose, and
  knows each resource's latest state and what Vercel should then hold. It never imports the
  sync core: its status table and expected Vercel view are written here, on their own.
- :class:`ChaosWorld` is one scenario's stack: the template's queues and tables in moto server
  (a process of its own, see ``conftest.py``), installation tokens and resource secrets in its
  Secrets Manager, a Vercel emulator (on a thread, so it can be stopped and started again on
  the same port), and the functions' environment pointing at both.
- :class:`ChaosDriver` runs ``local_runner`` pollers (the stream with its retry limit, bisection
  and on-failure destination; queues with redelivery after a visibility timeout and the redrive
  policy's dead-letter queue) while a writer feeds the partner's changes in, fires the
  scenario's events (faults, token rotation, outages) at fixed points of progress, and, when
  everything is quiet, redrives dead-lettered messages to their queue as an operator would.
- :func:`assess` compares Vercel's end state with the partner's, reads every failure queue, and
  returns the scenario's :class:`Figures`.

Nothing here prints a token or a secret value; the tests check that nothing else did either.
"""

from __future__ import annotations

import hashlib
import json
import random
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import pytest
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

from local_aws.provision import LocalResources, provision, store_installation_token, store_resource_secret
from local_aws.template import Template
from local_runner import PollResult, QueuePoller, StreamPoller, send_to_queue
from local_runner.events import reported_failures
from vercel_emulator import EmulatorServer
from vercel_sync import wiring

SERIALIZER = TypeSerializer()

# The partner's status words this suite uses, and what Vercel should show for each: written here,
# independently of the core's table, so the two check each other.
VERCEL_STATUS_OF = {
    "active": "ready",
    "running": "ready",
    "provisioning": "pending",
    "paused": "suspended",
    "degraded": "error",
    "resumed": "resumed",
    "onboarding": "onboarding",
}
STATUS_WORDS = tuple(VERCEL_STATUS_OF)
INVALID_STATUS = "exploding"  # no partner status table knows it: an invalid record

# The emulator's rate limit and the functions' are set out of the way: these scenarios are about
# faults, not about the limit (the rate-limit work has its own tests).
UNLIMITED_RATE = "1000000/60"

# Outcomes the emulator counts per call that another try can fix (a 401 is followed by a token
# re-read and another call; "aborted" is a call whose client gave up: a timeout).
TRANSIENT_OUTCOMES = frozenset({"401", "408", "425", "429", "500", "502", "503", "504", "dropped", "aborted"})
# What a call to an installation Vercel does not know (404) or that the token does not own (403)
# is parked as: vercel_rejected today, installation_unavailable once 403/404/410 stop the
# installation for the rest of the batch (CONTRACT.md).
INSTALLATION_GONE_REASONS = frozenset({"vercel_rejected", "installation_unavailable"})
INVALID_REASONS = frozenset({"invalid_record"})


def message_group(resource: tuple[str, str]) -> str:
    """A FIFO message group per resource. SQS takes only letters, digits and punctuation, up to 128
    characters, and an id may hold anything: a digest of the length-prefixed ids, as the
    failed-records adapter does."""
    installation, resource_id = resource
    return hashlib.sha256(f"{len(installation)}:{installation}/{resource_id}".encode()).hexdigest()


def new_token() -> str:
    return "vrcl_chaos_" + secrets.token_urlsafe(24)


# ---------------------------------------------------------------------------------------- partner


@dataclass
class PartnerResource:
    installation: str
    resource_id: str
    product: str
    secret_name: str | None = None  # the resource secret it names (secretsArn), if any
    secrets_prefix: str | None = None
    bad_reasons: frozenset[str] | None = None  # every change of it is permanently bad, parked with one of these
    source: str = "table"  # where the partner writes its changes: "table" or "queue" (never both)
    version: int = 0
    latest: dict[str, Any] | None = None  # the partner's record as last written or sent
    removed: bool = False  # the latest change is a DynamoDB REMOVE
    exists_in_table: bool = False

    @property
    def key(self) -> tuple[str, str]:
        return self.installation, self.resource_id


@dataclass(frozen=True)
class Change:
    """One partner change as the partner makes it."""

    resource: tuple[str, str]
    version: int
    record: dict[str, Any]  # the partner record (for a table delete: the old image)
    kind: str  # "put" | "delete" (table) or "send" (queue)
    bad_reasons: frozenset[str] | None = None


@dataclass(frozen=True)
class Permanent:
    """A change the suite expects in the failed-records queue."""

    installation: str
    resource_id: str
    version: int
    reasons: frozenset[str]


class Partner:
    """The partner: its resources, the changes it makes (seeded), and what Vercel should end up holding."""

    def __init__(
        self,
        *,
        seed: int,
        installations: list[str],
        resources: int,
        secret_names: Mapping[str, list[str]],
        invalid_resources: int = 0,
        gone_installation: str | None = None,
        gone_resources: int = 0,
        delete_rate: float = 0.05,
        sources: tuple[str, ...] = ("table",),
    ) -> None:
        """``sources``: where changes go ("table", "queue"); each resource has one, round-robin,
        since two sources are two independent orders and one resource must live in one.
        ``secret_names``: each installation's resource secrets (a record names only its own)."""
        self.rng = random.Random(seed)
        self.delete_rate = delete_rate
        self.resources: dict[tuple[str, str], PartnerResource] = {}
        for index in range(resources):
            installation = installations[index % len(installations)]
            resource = PartnerResource(installation, self._resource_id(index), ("postgres", "redis", "kv")[index % 3])
            own_secrets = secret_names.get(installation, [])
            if own_secrets and index % 5 == 0:  # a fifth name a resource secret: values flow through
                resource.secret_name = own_secrets[index % len(own_secrets)]
                resource.secrets_prefix = "DB" if index % 2 else None
            self.resources[resource.key] = resource
        for index in range(invalid_resources):
            installation = installations[index % len(installations)]
            resource = PartnerResource(installation, f"bad-{index:03d}", "postgres", bad_reasons=INVALID_REASONS)
            self.resources[resource.key] = resource
        if gone_installation is not None:
            for index in range(gone_resources):
                resource = PartnerResource(
                    gone_installation, f"gone-{index:03d}", "kv", bad_reasons=INSTALLATION_GONE_REASONS
                )
                self.resources[resource.key] = resource
        for index, resource in enumerate(self.resources.values()):
            resource.source = sources[index % len(sources)]
        self.keys = {source: [key for key, r in self.resources.items() if r.source == source] for source in sources}
        self.changes: list[Change] = []

    @staticmethod
    def _resource_id(index: int) -> str:
        # Ids are any characters, each one path segment: a few hold '/', '%2F', '#' and spaces.
        if index % 23 == 5:
            return f"tenant/{index:04d} eu#1"
        if index % 29 == 7:
            return f"db%2F{index:04d}"
        return f"res-{index:04d}"

    def next_change(self, *, source: str) -> Change:
        """The next change, to a resource picked at random (bad ones as often as any)."""
        resource = self.resources[self.rng.choice(self.keys[source])]
        resource.version += 1
        version = resource.version
        deletable = resource.exists_in_table and resource.bad_reasons is None
        if source == "table" and deletable and self.rng.random() < self.delete_rate:
            assert resource.latest is not None
            change = Change(resource.key, version, dict(resource.latest), "delete", resource.bad_reasons)
            resource.removed, resource.exists_in_table = True, False
        else:
            record = self._record(resource, version)
            if source == "queue" and resource.bad_reasons is None and self.rng.random() < self.delete_rate:
                record["deleted"] = True
            change = Change(resource.key, version, record, "put" if source == "table" else "send", resource.bad_reasons)
            resource.latest, resource.removed = record, False
            resource.exists_in_table = source == "table"
        self.changes.append(change)
        return change

    def _record(self, resource: PartnerResource, version: int) -> dict[str, Any]:
        bad = resource.bad_reasons is INVALID_REASONS
        record: dict[str, Any] = {
            "integrationConfigurationId": resource.installation,
            "resourceId": resource.resource_id,
            "productId": resource.product,
            "name": f"{resource.product}-{version}",
            "status": INVALID_STATUS if bad else self.rng.choice(STATUS_WORDS),
            "metadata": {"rev": version, "region": self.rng.choice(["iad1", "fra1", "sfo1"]), "replicas": version % 4},
            "version": version,
        }
        if resource.secret_name is not None:
            record["secretsArn"] = resource.secret_name
            if resource.secrets_prefix is not None:
                record["secretsPrefix"] = resource.secrets_prefix
        return record

    # -- what Vercel should hold ------------------------------------------------------------------

    def good_resources(self) -> list[PartnerResource]:
        return [r for r in self.resources.values() if r.bad_reasons is None and r.latest is not None]

    def expected_view(self, resource: PartnerResource, secret_names: Mapping[str, list[str]]) -> dict[str, Any]:
        """Vercel's view (``GET .../resources/{id}``, less its ids) of the partner's latest state."""
        record = resource.latest
        assert record is not None
        uninstalled = resource.removed or record.get("deleted") is True
        view: dict[str, Any] = {
            "productId": record["productId"],
            "name": record["name"],
            "status": "uninstalled" if uninstalled else VERCEL_STATUS_OF[record["status"]],
            "metadata": record["metadata"],
            "secrets": [],
        }
        if record.get("secretsArn") and not uninstalled:
            prefix = record.get("secretsPrefix")
            view["secrets"] = [
                {"name": name, **({"prefix": prefix} if prefix is not None else {})}
                for name in secret_names[record["secretsArn"]]
            ]
        return view

    def expected_permanent(self) -> list[Permanent]:
        return [
            Permanent(c.resource[0], c.resource[1], c.version, c.bad_reasons)
            for c in self.changes
            if c.bad_reasons is not None
        ]


# ------------------------------------------------------------------------------------------ world


@dataclass
class ResourceSecret:
    name: str  # its name in Secrets Manager, as records give it in secretsArn
    names: list[str]  # the secret names it holds, in order
    values: list[str]  # every value in it (for the leak check)


class ChaosWorld:
    """One scenario's stack: template resources in moto server, tokens, resource secrets, an emulator."""

    _stacks = 0

    def __init__(
        self,
        *,
        name: str,
        aws: dict[str, Any],
        aws_endpoint: str,
        monkeypatch: pytest.MonkeyPatch,
        installations: list[str],
        template_parameters: Mapping[str, str] | None = None,
        http_timeout_seconds: float = 2.0,
        gone_installation: str | None = None,
    ) -> None:
        ChaosWorld._stacks += 1
        self.name = name
        self.aws = aws
        self.resources: LocalResources = provision(
            Template.load(dict(template_parameters or {})),
            sqs=aws["sqs"],
            dynamodb=aws["dynamodb"],
            stack_name=f"chaos{ChaosWorld._stacks}-{name}",
        )
        self.emulator = EmulatorServer(rate_limit=UNLIMITED_RATE).start()
        self.sent = 0  # records written to the table and messages sent to the queue
        self.vercel_down = False  # the emulator is stopped for an outage
        self.tokens: dict[str, str] = {}
        self.every_secret_value: set[str] = set()
        for installation in installations:
            self.rotate_token(installation, in_vercel=True, in_secrets_manager=True)
        if gone_installation is not None:
            # Vercel does not know this installation (404); the secret holds a token Vercel knows,
            # one of an installation of its own that no record names.
            holder = gone_installation + "_elsewhere"
            token = self.rotate_token(holder, in_vercel=True, in_secrets_manager=False)
            self._store_token(gone_installation, token)
        # Two resource secrets per installation: one in its folder, one outside it carrying its tag
        # (the two ways a secret belongs to an installation; the second costs a DescribeSecret).
        self.resource_secrets: dict[str, ResourceSecret] = {}
        self.secret_names_by_installation: dict[str, list[str]] = {}
        for installation in installations:
            for index, (name, owner) in enumerate(
                [(f"{installation}/chaos-0", None), (f"chaos-1-{installation}", installation)]
            ):
                password, api_key, preview = (secrets.token_urlsafe(18) for _ in range(3))
                database_url = f"postgres://app:{password}@db{index}.internal:5432/app"
                document = {"DATABASE_URL": database_url, "API_KEY": {"value": api_key, "preview": preview}}
                secret_name = store_resource_secret(aws["secretsmanager"], self.resources, name, document, owner=owner)
                values = [database_url, password, api_key, preview]
                self.resource_secrets[secret_name] = ResourceSecret(secret_name, ["DATABASE_URL", "API_KEY"], values)
                self.secret_names_by_installation.setdefault(installation, []).append(secret_name)
                self.every_secret_value.update(values)

        environment = self.resources.local_function_environment(
            aws_endpoint=aws_endpoint,
            vercel_api_url=self.emulator.url,
            HTTP_TIMEOUT_SECONDS=f"{http_timeout_seconds:g}",
            VERCEL_RATE_LIMIT=UNLIMITED_RATE,
            POWERTOOLS_TRACE_DISABLED="true",
            POWERTOOLS_METRICS_NAMESPACE="VercelResourceSyncChaos",
        )
        # The sync-state table is on, as deployed (the version guard and change suppression use it).
        assert environment.get("SYNC_STATE_TABLE") == self.resources.tables["SyncStateTable"].name
        for variable, value in environment.items():
            monkeypatch.setenv(variable, value)
        wiring.sync_service.set(None)  # the next invocation builds its service from this environment

    # -- tokens -------------------------------------------------------------------------------------

    def _store_token(self, installation: str, token: str) -> None:
        store_installation_token(self.aws["secretsmanager"], self.resources, installation, token)

    def rotate_token(
        self, installation: str, *, in_vercel: bool, in_secrets_manager: bool, keep_previous: bool = False
    ) -> str:
        """A new token for the installation: accepted by Vercel and/or stored where the functions read it."""
        token = new_token()
        self.every_secret_value.add(token)
        if in_vercel:
            self.emulator.set_token(installation, token, keep_previous=keep_previous)
        if in_secrets_manager:
            self._store_token(installation, token)
        self.tokens[installation] = token
        return token

    def use_short_lived_tokens(self, *, lifetime_seconds: int, announced_seconds: int | None = None) -> None:
        """TOKEN_MODE short-lived (the template's parameters say so): the integration's credentials in
        Secrets Manager, the emulator checking them and issuing tokens that expire after
        ``lifetime_seconds``. Vercel no longer takes the long-lived tokens the secrets hold."""
        client_id, client_secret = "oac_chaos_" + uuid.uuid4().hex[:8], "chaos-client-" + secrets.token_urlsafe(24)
        self.every_secret_value.add(client_secret)
        name = self.resources.template.parameters["IntegrationCredentialsSecretName"]
        document = json.dumps({"client_id": client_id, "client_secret": client_secret})
        self.aws["secretsmanager"].create_secret(Name=name, SecretString=document)
        self.emulator.state.tokens.on_issue = self.every_secret_value.add
        self.emulator.set_client_credentials(client_id, client_secret)
        self.emulator.set_token_lifetime(lifetime_seconds, announced=announced_seconds)
        for installation in list(self.tokens):
            self.rotate_token(installation, in_vercel=True, in_secrets_manager=False)  # the stored one refused

    def revoke_all_but(self, installation: str, token: str) -> None:
        """Vercel accepts only ``token`` for the installation from now on."""
        self.emulator.set_token(installation, token)

    def store_in_secrets_manager(self, installation: str, token: str) -> None:
        self._store_token(installation, token)

    @property
    def secret_names(self) -> dict[str, list[str]]:
        return {name: secret.names for name, secret in self.resource_secrets.items()}

    # -- the partner's sources --------------------------------------------------------------------

    def queue_url(self, logical_id: str) -> str:
        return self.resources.queues[logical_id].url

    @property
    def table_name(self) -> str:
        return self.resources.tables["PartnerTable"].name

    @property
    def stream_arn(self) -> str:
        arn = self.resources.tables["PartnerTable"].stream_arn
        assert arn is not None
        return arn

    def write(self, changes: list[Change]) -> None:
        """The partner writes changes to its table, in order (batches of up to 25, one change per item each)."""
        batch: list[dict[str, Any]] = []
        keys: set[tuple[str, str]] = set()
        for change in changes:
            if change.resource in keys or len(batch) == 25:
                self._write_batch(batch)
                batch, keys = [], set()
            keys.add(change.resource)
            if change.kind == "delete":
                installation, resource_id = change.resource
                key = {"integrationConfigurationId": {"S": installation}, "resourceId": {"S": resource_id}}
                batch.append({"DeleteRequest": {"Key": key}})
            else:
                item = {k: SERIALIZER.serialize(v) for k, v in change.record.items()}
                batch.append({"PutRequest": {"Item": item}})
        if batch:
            self._write_batch(batch)
        self.sent += len(changes)

    def _write_batch(self, requests: list[dict[str, Any]]) -> None:
        pending = {self.table_name: requests}
        while pending:
            pending = self.aws["dynamodb"].batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}

    def send(self, changes: list[Change], queue: str = "PartnerEventsQueue") -> None:
        """The partner sends changes to its queue, in order, in batches of up to 10 (FIFO: the
        resource is the message group; each send is a new message, never deduplicated)."""
        url = self.queue_url(queue)
        fifo = url.endswith(".fifo")
        for start in range(0, len(changes), 10):
            entries = []
            for index, change in enumerate(changes[start : start + 10]):
                entry: dict[str, Any] = {"Id": str(index), "MessageBody": json.dumps(change.record)}
                if fifo:
                    entry["MessageGroupId"] = message_group(change.resource)
                    entry["MessageDeduplicationId"] = uuid.uuid4().hex
                entries.append(entry)
            response = self.aws["sqs"].send_message_batch(QueueUrl=url, Entries=entries)
            if response.get("Failed"):
                raise RuntimeError(f"the partner queue refused {len(response['Failed'])} message(s)")
        self.sent += len(changes)

    def stop(self) -> None:
        self.emulator.stop()
        wiring.sync_service.set(None)


# ----------------------------------------------------------------------------------------- driver

# Stream batches of 10 rather than the template's 100: the same semantics (a batch stops at its
# first failure and resumes there), but moto server's GetRecords costs 2 to 3 ms a record here,
# and a batch is read again after every transient failure, so 100 would spend the CI budget on
# reading records that are not processed. ``stream_batch_size=None`` takes the template's.
STREAM_BATCH_SIZE = 10
# The partner writes while at most this many records wait for the functions: moto server's SQS
# scans a queue's every message on each receive (1.5 s a receive at 2,500 messages here), so a
# partner far ahead of the functions would measure moto rather than the sync.
MAX_BACKLOG = 200


@dataclass
class Event:
    """Something the scenario does once the handlers have finished with ``after_records`` records
    (imported or parked: progress, which redeliveries during an outage do not make)."""

    after_records: int
    action: Callable[[], None]
    name: str
    fired_at: float | None = None
    fired_after_records: int | None = None  # records finished with when it fired


ChangeKey = tuple[str, str, int, bool]  # installation, resource, version, removed (a stream REMOVE)


@dataclass
class RunLog:
    results: list[PollResult] = field(default_factory=list)
    handled: set[ChangeKey] = field(default_factory=set)  # changes an invocation finished with (not returned)
    finished: int = 0  # records invocations finished with, repeats included
    redriven: int = 0  # dead-lettered messages sent back to their queue (an operator's redrive)
    events: list[str] = field(default_factory=list)

    @property
    def records_delivered(self) -> int:
        return sum(result.records for result in self.results)

    @property
    def invocations(self) -> int:
        return len(self.results)

    @property
    def reported(self) -> int:
        return sum(len(result.reported) for result in self.results)

    @property
    def returned(self) -> int:
        """Records handed back to their source: reported in a partial response, or a whole failed batch."""
        return sum(len(result.reported) if result.error is None else result.records for result in self.results)

    @property
    def failed_invocations(self) -> int:
        return sum(result.error is not None for result in self.results)

    def describe_lines(self) -> list[str]:
        return [result.describe() for result in self.results]


_DESERIALIZER = TypeDeserializer()


def _change_key(record: Mapping[str, Any]) -> ChangeKey | None:
    """The partner change a Lambda event record carries (this suite's records only)."""
    try:
        if "dynamodb" in record:
            removed = record.get("eventName") == "REMOVE"
            image = record["dynamodb"]["OldImage" if removed else "NewImage"]
            item = {name: _DESERIALIZER.deserialize(value) for name, value in image.items()}
        else:
            item, removed = json.loads(record["body"]), False
        return (str(item["integrationConfigurationId"]), str(item["resourceId"]), int(item["version"]), removed)
    except (KeyError, TypeError, ValueError):
        return None


class TracingHandler:
    """Calls the real handler and notes which changes each invocation finished with: for a stream
    batch, those before the first reported failure; for a queue batch, those not reported (an
    import or a parked record: either way the source lets them go)."""

    def __init__(self, handler: Callable[[dict[str, Any], Any], Any], log: RunLog) -> None:
        self._handler = handler
        self._log = log

    def lambda_handler(self, event: dict[str, Any], context: Any) -> Any:
        response = self._handler(event, context)  # an exception is the poller's to see
        records = event["Records"]
        ids = [r["dynamodb"]["SequenceNumber"] if "dynamodb" in r else r["messageId"] for r in records]
        reported = reported_failures(response, ids)
        if reported is None:
            return response
        if records and "dynamodb" in records[0]:
            done = records[: ids.index(reported[0])] if reported else records
        else:
            done = [record for record, identifier in zip(records, ids, strict=True) if identifier not in reported]
        self._log.handled.update(key for key in map(_change_key, done) if key is not None)
        self._log.finished += len(done)
        return response


class ChaosDriver:
    """Delivers a scenario's changes to the handlers as Lambda's event source mappings would."""

    def __init__(
        self,
        world: ChaosWorld,
        handlers: Mapping[str, Any],
        *,
        stream: bool = False,
        queue: bool = False,
        retry_visibility_seconds: int = 1,
        stream_retry_delay_seconds: float = 0.0,
        stream_batch_size: int | None = STREAM_BATCH_SIZE,
    ) -> None:
        self.world = world
        self.log = RunLog()
        self.handlers = {name: TracingHandler(module.lambda_handler, self.log) for name, module in handlers.items()}
        self.pollers: list[Any] = []
        template = world.resources.template
        if stream:
            properties = template.event_source("StreamSyncFunction", "PartnerTableStream")
            self.pollers.append(self.stream_poller(properties, stream_retry_delay_seconds, stream_batch_size))
        if queue:
            properties = template.event_source("QueueSyncFunction", "PartnerEvents")
            self.pollers.append(
                QueuePoller(
                    world.aws["sqs"],
                    world.queue_url("PartnerEventsQueue"),
                    self.handlers["queue_sync"].lambda_handler,
                    batch_size=int(properties["BatchSize"]),
                    wait_time_seconds=0,
                    retry_visibility_timeout=retry_visibility_seconds,
                    timeout_seconds=template.function_timeout_seconds(),
                )
            )

    def stream_poller(
        self,
        properties: Mapping[str, Any],
        delay: float,
        batch_size: int | None = STREAM_BATCH_SIZE,
    ) -> StreamPoller:
        """The template's stream mapping: its retry limit, bisection and on-failure queue; its batch
        size unless told (see ``STREAM_BATCH_SIZE``)."""
        template = self.world.resources.template
        return StreamPoller(
            self.world.aws["dynamodbstreams"],
            self.world.stream_arn,
            self.handlers["stream_sync"].lambda_handler,
            batch_size=batch_size or int(properties["BatchSize"]),
            starting_position=properties.get("StartingPosition", "TRIM_HORIZON"),
            max_retry_attempts=int(properties.get("MaximumRetryAttempts", -1)),
            retry_delay_seconds=delay,
            bisect_batch_on_function_error=bool(properties.get("BisectBatchOnFunctionError", False)),
            on_failure=send_to_queue(self.world.aws["sqs"], self.world.queue_url("StreamFailureQueue")),
            timeout_seconds=template.function_timeout_seconds(),
        )

    def run(
        self,
        writer: Iterator[object] | None,
        *,
        events: Iterable[Event] = (),
        timeout_seconds: float,
        idle_seconds: float = 0.5,
        max_backlog: int = MAX_BACKLOG,
    ) -> RunLog:
        """Feed the writer's changes in (one step per round, while fewer than ``max_backlog``
        records wait to be finished with) as the pollers deliver them; fire
        each event once its point of progress is reached (or once the writer is done, if sooner);
        stop when the writer is done, every event has fired and every source has stayed drained
        for ``idle_seconds``. Then redrive what the partner queue dead-lettered (an operator's
        replay) and run again, up to 3 times."""
        pending = sorted(events, key=lambda event: event.after_records)
        deadline = time.monotonic() + timeout_seconds
        for redrive in range(4):
            self._run_until_quiet(writer, pending, deadline, idle_seconds, max_backlog)
            writer = None
            if redrive == 3 or not self._redrive_dead_letters():
                break
        return self.log

    def _run_until_quiet(
        self,
        writer: Iterator[object] | None,
        pending: list[Event],
        deadline: float,
        idle_seconds: float,
        max_backlog: int,
    ) -> None:
        idle_since: float | None = None
        while True:
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"scenario {self.world.name} did not settle in time: {self.log.invocations} invocations, "
                    f"{self.log.records_delivered} records delivered, events left: {[e.name for e in pending]}"
                )
            wrote = False
            if writer is not None and self.world.sent - self.log.finished < max_backlog:
                wrote = next(writer, None) is not None
                writer = writer if wrote else None
            while pending and self.log.finished >= pending[0].after_records:
                self._fire(pending.pop(0))
            delivered = False
            for poller in list(self.pollers):  # an event may add one (a replaying stream reader)
                result = poller.poll_once()
                if result.delivered:
                    self.log.results.append(result)
                    delivered = True
            if wrote or delivered:
                idle_since = None
                continue
            if writer is not None:  # the partner waits for the backlog to shrink (a retry is due)
                time.sleep(0.01)
                continue
            if all(poller.is_drained() for poller in self.pollers):
                if pending:  # all quiet before an event's point of progress: fire it now, not never
                    self._fire(pending.pop(0))
                    continue
                idle_since = idle_since if idle_since is not None else time.monotonic()
                if time.monotonic() - idle_since >= idle_seconds:
                    return
            else:
                idle_since = None
            time.sleep(0.01)

    def _fire(self, event: Event) -> None:
        event.fired_at = time.monotonic()
        event.fired_after_records = self.log.finished
        event.action()
        self.log.events.append(f"{event.name} after {self.log.finished} records finished with")

    def _redrive_dead_letters(self) -> int:
        """Send what the partner queue's dead-letter queue holds back to the queue; how many."""
        queues = self.world.resources.queues
        if "PartnerEventsDeadLetterQueue" not in queues or "PartnerEventsQueue" not in queues:
            return 0
        sqs = self.world.aws["sqs"]
        source, dead_letters = (
            self.world.queue_url("PartnerEventsQueue"),
            self.world.queue_url("PartnerEventsDeadLetterQueue"),
        )
        moved = 0
        while messages := sqs.receive_message(
            QueueUrl=dead_letters, MaxNumberOfMessages=10, AttributeNames=["All"], WaitTimeSeconds=0
        ).get("Messages", []):
            for message in messages:
                request: dict[str, Any] = {"QueueUrl": source, "MessageBody": message["Body"]}
                if source.endswith(".fifo"):
                    request["MessageGroupId"] = message["Attributes"]["MessageGroupId"]
                    request["MessageDeduplicationId"] = uuid.uuid4().hex
                sqs.send_message(**request)
                sqs.delete_message(QueueUrl=dead_letters, ReceiptHandle=message["ReceiptHandle"])
                moved += 1
        self.log.redriven += moved
        return moved


def restart_after(world: ChaosWorld, seconds: float, done: threading.Event) -> Callable[[], None]:
    """An action that stops the emulator (connection refused) and starts it again ``seconds`` later."""

    def action() -> None:
        if world.vercel_down:
            raise RuntimeError("an outage began while Vercel was still down from the last one")
        world.vercel_down = True
        world.emulator.stop()

        def start() -> None:
            world.emulator.start()
            world.vercel_down = False
            done.set()

        timer = threading.Timer(seconds, start)
        timer.daemon = True
        timer.start()

    return action


# ----------------------------------------------------------------------------------------- assess


@dataclass
class Figures:
    """What one scenario did, for the closing note."""

    scenario: str
    scale: str
    seed: int
    resources: int  # the partner's resources (the ones Vercel must end up holding)
    bad_resources: int  # resources whose every change is permanently bad (invalid, or a gone installation)
    changes: int  # partner changes made, to all of them
    deliveries: int  # records written to the table or messages sent (resends and replays included)
    invocations: int
    records_delivered: int  # records handed to the handlers, redeliveries included
    redelivered: int  # records handed to the handlers more than once (the sources' retries, replays)
    returned_to_source: int  # records the handlers reported failed (a stream batch reports its first only)
    vercel_calls: int
    vercel_calls_by_status: dict[str, int]
    retries: int  # Vercel calls with a transient outcome, each tried again (a refused connection never reaches it)
    failed_records: int
    expected_permanent: int
    dead_lettered: int  # partner-queue messages redriven from its DLQ, and stream on-failure batches
    final_state_mismatches: int
    records_lost: int
    wall_seconds: float
    events: list[str] = field(default_factory=list)
    mismatch_examples: list[str] = field(default_factory=list)
    notes: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def drain(sqs: Any, queue_url: str) -> list[str]:
    """Every message body in a queue (received and deleted)."""
    bodies: list[str] = []
    while messages := sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get(
        "Messages", []
    ):
        for message in messages:
            bodies.append(message["Body"])
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    return bodies


@dataclass
class Assessment:
    figures: Figures
    failed_records: list[dict[str, Any]]
    unexpected_failed_records: list[str]  # "reason installation/resource v" of each message nobody expected
    missing_permanent: list[str]
    wrong_reasons: list[str]
    emitted_text: str  # every queue message body, for the leak check


def assess(
    world: ChaosWorld,
    partner: Partner,
    log: RunLog,
    *,
    scenario: str,
    scale: str,
    seed: int,
    deliveries: int,
    started: float,
) -> Assessment:
    sqs = world.aws["sqs"]
    failed_bodies = drain(sqs, world.queue_url("FailedRecordsQueue"))
    stream_failures = drain(sqs, world.queue_url("StreamFailureQueue"))
    dead_letter_bodies = (
        drain(sqs, world.queue_url("PartnerEventsDeadLetterQueue"))
        if "PartnerEventsDeadLetterQueue" in world.resources.queues
        else []
    )
    failed = [json.loads(body) for body in failed_bodies]

    # Every expected permanent change once at least (a whole-batch redelivery may park it again),
    # with one of its reasons; nothing else.
    expected = {(p.installation, p.resource_id, p.version): p for p in partner.expected_permanent()}
    seen: set[tuple[str, str, int]] = set()
    unexpected, wrong = [], []
    for message in failed:
        record = message.get("record") or {}
        key = (message.get("integrationConfigurationId"), message.get("resourceId"), record.get("version"))
        described = f"{message.get('reason')} {key[0]}/{key[1]} v{key[2]}"
        permanent = expected.get(key)  # type: ignore[arg-type]
        if permanent is None:
            unexpected.append(described)
            continue
        seen.add((permanent.installation, permanent.resource_id, permanent.version))
        if message.get("reason") not in permanent.reasons:
            wrong.append(f"{described} (expected one of {sorted(permanent.reasons)})")
    # Changes to one resource in a batch are coalesced: when the newest fails for good, it alone is
    # parked (its record replays the resource's latest state), and the older ones it superseded
    # are not parked apart. An expected permanent change counts as held when it, or a newer
    # change of the same resource, is in the failed-records queue.
    newest_parked: dict[tuple[str, str], int] = {}
    for i, r, v in seen:
        newest_parked[(i, r)] = max(v, newest_parked.get((i, r), v))
    missing = [f"{i}/{r} v{v}" for (i, r, v) in expected if newest_parked.get((i, r), -1) < v]

    # Vercel's end state against the partner's latest, resource by resource. A mismatch is "lost"
    # when no invocation ever finished with the latest change and no dead-letter path holds it;
    # otherwise the latest change was imported and something older overwrote it afterwards.
    mismatches: list[str] = []
    in_dead_letter_paths = {
        (record.get("integrationConfigurationId"), record.get("resourceId"), record.get("version"))
        for record in (json.loads(body) for body in dead_letter_bodies)
        if isinstance(record, dict)
    }
    lost = 0
    secret_names = world.secret_names
    fields = ("productId", "name", "status", "metadata", "secrets")
    for resource in partner.good_resources():
        held = world.emulator.held_resource(resource.installation, resource.resource_id)
        want = partner.expected_view(resource, secret_names)
        got = {name: held.get(name, [] if name == "secrets" else None) for name in fields} if held else None
        if got == want:
            continue
        assert resource.latest is not None
        latest = (resource.installation, resource.resource_id, int(resource.latest["version"]), resource.removed)
        if latest not in log.handled and latest[:3] not in in_dead_letter_paths:
            lost += 1
        held_state = "nothing" if got is None else f"rev {(got['metadata'] or {}).get('rev')} ({got['status']})"
        mismatches.append(
            f"{resource.installation}/{resource.resource_id} ({resource.source}): partner v{resource.version} "
            f"({want['status']}), Vercel {held_state}, {'lost' if latest not in log.handled else 'overwritten'}"
        )
    for resource in partner.resources.values():
        if resource.bad_reasons is not None and world.emulator.held_resource(
            resource.installation, resource.resource_id
        ):
            mismatches.append(f"{resource.installation}/{resource.resource_id}: Vercel holds a resource it must not")
    lost += len(missing)

    calls = world.emulator.calls()
    by_status = dict(sorted(calls["byStatus"].items()))
    figures = Figures(
        scenario=scenario,
        scale=scale,
        seed=seed,
        resources=sum(resource.bad_reasons is None for resource in partner.resources.values()),
        bad_resources=sum(resource.bad_reasons is not None for resource in partner.resources.values()),
        changes=len(partner.changes),
        deliveries=deliveries,
        invocations=log.invocations,
        records_delivered=log.records_delivered,
        redelivered=max(0, log.records_delivered - deliveries),
        returned_to_source=log.returned,
        vercel_calls=int(calls["total"]),
        vercel_calls_by_status=by_status,
        retries=sum(count for outcome, count in by_status.items() if outcome in TRANSIENT_OUTCOMES),
        failed_records=len(failed),
        expected_permanent=len(expected),
        dead_lettered=log.redriven + len(dead_letter_bodies) + len(stream_failures),
        final_state_mismatches=len(mismatches),
        records_lost=lost,
        wall_seconds=round(time.monotonic() - started, 1),
        events=list(log.events),
        mismatch_examples=mismatches[:10],
    )
    emitted = "\n".join([*failed_bodies, *stream_failures, *dead_letter_bodies, *log.describe_lines()])
    return Assessment(figures, failed, unexpected, missing, wrong, emitted)


def leaked(values: Iterable[str], *texts: str) -> list[str]:
    """Which secret values appear in any of the texts (described by length, never shown)."""
    found = []
    for value in values:
        if any(value in text for text in texts):
            found.append(f"a secret value of {len(value)} characters")
    return found
