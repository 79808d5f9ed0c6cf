"""In-process fakes of the adapters the pipeline is handed (unit tests only)."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from tests.leak_scan import SCANNER, register_secret
from tools.lambda_local import ROOT, LambdaContext, load_handler
from vercel_sync.calls import Clock
from vercel_sync.changes import SourceChange
from vercel_sync.errors import InvalidRecordError, PermanentSyncError, TransientSyncError
from vercel_sync.partner_schema import PartnerRecord
from vercel_sync.payload import ImportResourcePayload
from vercel_sync.rotation.events import RotationTarget
from vercel_sync.settings import Settings
from vercel_sync.sync.service import Adapters, SyncService, Tuning
from vercel_sync.transform import build_import_body

EVENTS = ROOT / "events"
__all__ = ["EVENTS", "LambdaContext", "load_handler"]

TOKEN = "vrcl_tok_UNIT_5ecret_token_value"
ROTATED_TOKEN = "vrcl_tok_UNIT_rotated_token_value"
DB_PASSWORD = "pw-UNIT-9f8e7d6c5b4a"
DB_URL = f"postgres://orders:{DB_PASSWORD}@db.internal:5432/orders"
PREVIEW_PASSWORD = "pw-UNIT-preview-1a2b3c"
ALL_SECRET_VALUES = (TOKEN, ROTATED_TOKEN, DB_PASSWORD, DB_URL, PREVIEW_PASSWORD)
register_secret(*ALL_SECRET_VALUES, label="tests.fakes' token and secret values")


class RunningOutContext(LambdaContext):
    """A context whose remaining time is each of ``answers`` in turn, then the last one from then on."""

    def __init__(self, *answers: int) -> None:
        self.answers = list(answers)

    def get_remaining_time_in_millis(self) -> int:
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]


RESOURCE_SECRET = {"DATABASE_URL": DB_URL, "PGPASSWORD": {"value": DB_PASSWORD, "preview": PREVIEW_PASSWORD}}


def load_event(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / name).read_text())


@dataclass
class VercelCall:
    installation_id: str
    resource_id: str
    body: dict[str, Any]
    token: str
    method: str = "PUT"  # DELETE: a deletion (its body is empty)


@dataclass
class ScriptedVercel:
    """Records every call; ``script`` maps a resource id to outcomes to play in turn."""

    calls: list[VercelCall] = field(default_factory=list)
    script: dict[str, list[Exception | None]] = field(default_factory=dict)
    # resource id -> the error every call for it raises once its script is played
    failing: dict[str, Exception] = field(default_factory=dict)
    valid_tokens: set[str] = field(default_factory=lambda: {TOKEN})

    def _answer(
        self, installation_id: str, resource_id: str, body: Mapping[str, Any], token: str, method: str = "PUT"
    ) -> None:
        """Records the call; raises what the token, the script or ``failing`` says it meets."""
        self.calls.append(VercelCall(installation_id, resource_id, dict(body), token, method))
        if token not in self.valid_tokens:
            raise TransientSyncError("Vercel refused the installation token (401)", http_status=401)
        outcomes = self.script.get(resource_id)
        if outcomes:
            outcome = outcomes.pop(0)
            if outcome is not None:
                raise outcome
            return
        if resource_id in self.failing:
            raise self.failing[resource_id]


@dataclass
class FakeVercel(ScriptedVercel):
    def import_resource(
        self, integration_configuration_id: str, resource_id: str, body: Mapping[str, Any], *, token: str
    ) -> dict[str, Any]:
        self._answer(integration_configuration_id, resource_id, body, token)
        return {"name": body["name"]}

    def delete_resource(self, integration_configuration_id: str, resource_id: str, *, token: str) -> None:
        self._answer(integration_configuration_id, resource_id, {}, token, "DELETE")

    def resources_called(self) -> list[str]:
        return [c.resource_id for c in self.calls]


def vercel_rejects(status: int, body: str = '{"error":{"code":"bad_request","message":"nope"}}') -> PermanentSyncError:
    return PermanentSyncError(
        f"Vercel rejected the import ({status})", reason="vercel_rejected", http_status=status, vercel_error=body
    )


def vercel_unavailable(status: int = 503) -> TransientSyncError:
    return TransientSyncError(f"Vercel answered {status}", http_status=status)


# The resource secret the sample events (icfg_demo01) and the unit tests' records (icfg_1) name,
# each in its installation's folder.
RESOURCE_SECRET_IDS = ("partner/resources/icfg_demo01/db_primary", "partner/resources/icfg_1/db_primary")


@dataclass
class FakeSecrets:
    token: str = TOKEN
    documents: dict[str, Any] = field(default_factory=lambda: dict.fromkeys(RESOURCE_SECRET_IDS, RESOURCE_SECRET))
    token_reads: list[tuple[str, bool]] = field(default_factory=list)
    on_resource_read: Callable[[str], None] | None = None

    def installation_token(self, integration_configuration_id: str, *, force_fetch: bool = False) -> str:
        self.token_reads.append((integration_configuration_id, force_fetch))
        return self.token

    def check_owner(self, secret_id: str, installation_id: str) -> None:
        """The folder rule only (``test_secret_ownership.py`` has the reader's whole rule)."""
        from vercel_sync.errors import InvalidRecordError
        from vercel_sync.settings import Settings

        if Settings(resource_secret_prefix="partner/resources/").secret_folder(secret_id) != installation_id:
            raise InvalidRecordError("secretsArn names a secret that does not belong to the record's installation")

    def resource_secrets(self, secret_id: str, *, installation_id: str) -> Any:
        if self.on_resource_read is not None:
            self.on_resource_read(secret_id)
        if secret_id not in self.documents:
            raise PermanentSyncError(
                f"cannot read secret {secret_id}: ResourceNotFoundException", reason="resource_secret_unavailable"
            )
        return self.documents[secret_id]


@dataclass
class FakeFailedRecords:
    messages: list[dict[str, Any]] = field(default_factory=list)
    broken: bool = False

    def park(self, message: dict[str, Any]) -> None:
        if self.broken:
            raise ConnectionError("queue unavailable")
        # Round-trip through JSON, as SQS would carry it.
        body = json.dumps(message)
        SCANNER.scan_message(body, "failed-records message (fake queue)")
        self.messages.append(json.loads(body))

    def reasons(self) -> list[str]:
        return [m["reason"] for m in self.messages]


class FakeStateStore:
    """The sync-state table's rules in memory (``adapters/state_table.py`` has the DynamoDB ones).

    ``busy`` maps a resource id to claims to refuse as busy first (another invocation in flight).
    """

    def __init__(self, clock: Callable[[], float] | None = None) -> None:
        import threading
        import time

        self.items: dict[tuple[str, str], dict[str, Any]] = {}
        self.busy: dict[str, int] = {}
        self.writes = 0
        self._lock = threading.Lock()
        self._clock = clock or time.time

    def claim(
        self, installation_id: str, resource_id: str, version: Any, *, lease_seconds: float, repair: bool = False
    ) -> Any:
        import uuid

        from vercel_sync.sync_state import Claim, ResourceState, is_stale

        with self._lock:
            self.writes += 1
            item = self.items.setdefault((installation_id, resource_id), {})
            state = ResourceState(item.get("partner"), item.get("sequence"), item.get("digest"))
            if version is not None and is_stale(version, item.get(version.kind), repair=repair):
                return Claim("stale", state=state)
            if self.busy.get(resource_id, 0) > 0:
                self.busy[resource_id] -= 1
                return Claim("busy", state=state, busy_until=self._clock())
            if item.get("claim_until", 0) > self._clock():
                return Claim("busy", state=state, busy_until=item["claim_until"])
            claim_id = uuid.uuid4().hex
            item["claim"], item["claim_until"] = claim_id, self._clock() + lease_seconds
            return Claim("claimed", claim_id=claim_id, state=state)

    def record(self, claim_id: str | None, state: Any) -> None:
        with self._lock:
            self.writes += 1
            item = self.items.setdefault((state.installation_id, state.resource_id), {})
            if claim_id is not None and item.get("claim") == claim_id:
                item.pop("claim", None)
                item.pop("claim_until", None)
            if state.version is not None:
                if not state.version.newer_than(item.get(state.version.kind)):
                    return
                item[state.version.kind] = state.version
            item["digest"] = state.payload_digest
            item["secret_name"] = state.secret_name
            item["status"] = state.status

    def release(self, installation_id: str, resource_id: str, claim_id: str) -> None:
        with self._lock:
            item = self.items.get((installation_id, resource_id), {})
            if item.get("claim") == claim_id:
                item.pop("claim", None)
                item.pop("claim_until", None)


@dataclass
class StoredSecret:
    """One secret as Secrets Manager holds it: a string or bytes value, and its tags."""

    string: str | None = None
    binary: bytes | None = None
    tags: dict[str, str] = field(default_factory=dict)


@dataclass
class FakeSecretsManagerClient:
    """The boto3 Secrets Manager client the reader uses, in memory, counting each call per secret:
    tests prove with it that a value was never read (``reads``) and when tags were (``describes``)."""

    secrets: dict[str, StoredSecret] = field(default_factory=dict)
    reads: list[str] = field(default_factory=list)
    describes: list[str] = field(default_factory=list)
    # action -> an AWS error code every call of that action fails with
    errors: dict[str, str] = field(default_factory=dict)

    def get_secret_value(self, SecretId: str, **_: Any) -> dict[str, Any]:
        self.reads.append(SecretId)
        secret = self._secret("GetSecretValue", SecretId)
        if secret.binary is not None:
            return {"Name": SecretId, "SecretBinary": secret.binary}
        return {"Name": SecretId, "SecretString": secret.string}

    def describe_secret(self, SecretId: str) -> dict[str, Any]:
        self.describes.append(SecretId)
        secret = self._secret("DescribeSecret", SecretId)
        answer: dict[str, Any] = {"Name": SecretId}
        if secret.tags:
            answer["Tags"] = [{"Key": key, "Value": value} for key, value in secret.tags.items()]
        return answer

    def _secret(self, action: str, secret_id: str) -> StoredSecret:
        from botocore.exceptions import ClientError

        code = self.errors.get(action)
        if code is None and secret_id not in self.secrets:
            code = "ResourceNotFoundException"
        if code is not None:
            raise ClientError({"Error": {"Code": code, "Message": "(fake)"}}, action)
        return self.secrets[secret_id]


# The flat options tests give, sorted into the SyncService's groups (as each group names them).
_ADAPTERS = {name: name for name in ("vercel", "secrets", "failed_records", "observer", "state_store")}
_ADAPTERS |= {name: name for name in ("rate_limiter", "source_queue", "wrap_task")}
_TUNING = {"max_concurrency": "max_concurrency", "retry_policy": "retry", "time_budget": "time_budget"}
_TUNING |= {name: name for name in ("park_stream_records_after_seconds", "call_interval_seconds", "removal_mode")}
_CLOCK = {"clock": "now", "monotonic": "monotonic", "sleep": "sleep", "uniform": "uniform"}


def make_sync_service(**options: Any) -> SyncService:
    """The real SyncService with what a test gives (fakes, tuning, a fake clock), each in its group."""

    def take(names: dict[str, str]) -> dict[str, Any]:
        return {field: options.pop(name) for name, field in names.items() if name in options}

    adapters, tuning, clock = take(_ADAPTERS), take(_TUNING), take(_CLOCK)
    mapping = options.pop("mapping", None)
    if options:
        raise TypeError(f"unknown options: {sorted(options)}")
    return SyncService(Adapters(**adapters), Tuning(**tuning), Clock(**clock), mapping=mapping)


def sync_one(service: SyncService, change: SourceChange, *, time_left_ms: int | None = None) -> str:
    """One change through ``sync_batch``, as the handlers call it: its outcome, or its error raised."""
    (result,) = service.sync_batch([change], time_left_ms=time_left_ms)
    if result.error is not None:
        raise result.error
    return str(result.outcome)


def build_import_payload(record: PartnerRecord, **options: Any) -> ImportResourcePayload:
    """The import's payload model for ``record``, as ``build_import_body`` makes it (tests read its fields)."""
    return build_import_body(record, **options)[0]


# -------------------------------------------------------------------------------------- rotation


# The resource secret the rotation tests rotate, by ARN and by name, and the settings that place it.
ROTATED_SECRET_ARN = (
    "arn:aws:secretsmanager:us-east-1:123456789012:secret:partner/resources/icfg_demo01/db_primary-AbC123"
)
ROTATED_SECRET_NAME = "partner/resources/icfg_demo01/db_primary"
ROTATION_SETTINGS = Settings(resource_secret_prefix="partner/resources/")


@dataclass
class FakeIndex:
    targets: dict[str, list[RotationTarget]] = field(default_factory=dict)
    queries: list[str] = field(default_factory=list)

    def resources_using(self, secret_name: str) -> list[RotationTarget]:
        self.queries.append(secret_name)
        return list(self.targets.get(secret_name, []))


@dataclass
class FakeRotationSecrets:
    token: str = TOKEN
    documents: dict[str, Any] = field(
        default_factory=lambda: {ROTATED_SECRET_ARN: RESOURCE_SECRET, ROTATED_SECRET_NAME: RESOURCE_SECRET}
    )
    reads: list[tuple[str, bool]] = field(default_factory=list)
    token_reads: list[tuple[str, bool]] = field(default_factory=list)
    token_error: PermanentSyncError | None = None

    def installation_token(self, integration_configuration_id: str, *, force_fetch: bool = False) -> str:
        self.token_reads.append((integration_configuration_id, force_fetch))
        if self.token_error is not None:
            raise self.token_error
        return self.token

    def check_owner(self, secret_id: str, installation_id: str) -> None:
        """The folder rule only (``test_secret_ownership.py`` has the reader's whole rule)."""
        if ROTATION_SETTINGS.secret_folder(secret_id) != installation_id:
            raise InvalidRecordError("secretsArn names a secret that does not belong to the record's installation")

    def resource_secrets(self, secret_id: str, *, installation_id: str, force_fetch: bool = False) -> Any:
        self.reads.append((secret_id, force_fetch))
        if secret_id not in self.documents:
            raise PermanentSyncError(
                f"cannot read secret {secret_id}: ResourceNotFoundException", reason="resource_secret_unavailable"
            )
        return self.documents[secret_id]


@dataclass
class FakeSecretsApi(ScriptedVercel):
    def update_resource_secrets(
        self, integration_configuration_id: str, resource_id: str, body: Mapping[str, Any], *, token: str
    ) -> dict[str, Any]:
        self._answer(integration_configuration_id, resource_id, body, token)
        return {}

    def per_resource(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for call in self.calls:
            counts[call.resource_id] = counts.get(call.resource_id, 0) + 1
        return counts


def moto_state_table(name: str) -> Any:
    """A DynamoDB client with the sync-state table ``name`` (its key only), inside ``mock_aws()``."""
    import boto3

    client = boto3.client("dynamodb", region_name="us-east-1")
    client.create_table(
        TableName=name,
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return client


class FakeCloudFormation:
    """A stack's outputs, as DescribeStacks answers (operations/stack.py)."""

    def __init__(self, outputs: dict[str, str]) -> None:
        self.outputs = outputs

    def describe_stacks(self, StackName: str) -> dict[str, Any]:
        return {"Stacks": [{"Outputs": [{"OutputKey": k, "OutputValue": v} for k, v in self.outputs.items()]}]}


class FakeLambdaConfigurations:
    """Functions' environments, as GetFunctionConfiguration answers; another function is AccessDenied."""

    def __init__(self, environments: dict[str, dict[str, str]]) -> None:
        self.environments = environments

    def get_function_configuration(self, FunctionName: str) -> dict[str, Any]:
        if FunctionName not in self.environments:
            error = {"Error": {"Code": "AccessDeniedException", "Message": "no"}}
            raise ClientError(error, "GetFunctionConfiguration")
        return {"Environment": {"Variables": self.environments[FunctionName]}}


class FakeQueueUrls:
    """GetQueueUrl: the URL of a queue named by its ARN's parts."""

    def get_queue_url(self, QueueName: str, QueueOwnerAWSAccountId: str) -> dict[str, str]:
        return {"QueueUrl": f"https://sqs.example/{QueueOwnerAWSAccountId}/{QueueName}"}
