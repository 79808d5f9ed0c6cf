"""A resource secret belongs to one installation (README "Configuration", SECURITY.md).

A secret belongs to installation X when its name lies under ``{RESOURCE_SECRET_PREFIX}X/`` or it
carries the tag ``vercel:integrationConfigurationId`` = X. A record names only secrets of its own
installation; anything else is an invalid record, decided before any value is read (the fake
client counts every GetSecretValue), with a reason that names neither a value nor the other
installation. Rotation sync keeps the same rule per resource.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.builders import change
from tests.fakes import (
    DB_PASSWORD,
    RESOURCE_SECRET,
    TOKEN,
    FakeFailedRecords,
    FakeSecretsManagerClient,
    FakeVercel,
    StoredSecret,
    make_sync_service,
    sync_one,
)
from vercel_sync.adapters.secrets import OWNER_TAG, SecretsManagerReader
from vercel_sync.errors import ConfigurationError, InvalidRecordError, PermanentSyncError, TransientSyncError
from vercel_sync.rotation.events import RotationTarget
from vercel_sync.rotation.service import RotationAdapters, RotationService
from vercel_sync.settings import Settings, secret_name

PREFIX = "partner/resources/"
ACCOUNT = "123456789012"
REGION = "us-east-1"
SETTINGS = Settings(resource_secret_prefix=PREFIX, aws_account_id=ACCOUNT, aws_region=REGION)
MINE, THEIRS = "icfg_mine", "icfg_theirs"
OWN_FOLDER = f"{PREFIX}{MINE}/db"
THEIR_FOLDER = f"{PREFIX}{THEIRS}/db"
FLAT = f"{PREFIX}legacy-db"
TOKEN_SECRET = f"vercel/installations/{MINE}"


def arn(name: str, *, account: str = ACCOUNT, region: str = REGION) -> str:
    return f"arn:aws:secretsmanager:{region}:{account}:secret:{name}-AbCdEf"


def stored(**tags: str) -> StoredSecret:
    return StoredSecret(string=json.dumps(RESOURCE_SECRET), tags=dict(tags))


def client_with(secrets: dict[str, StoredSecret]) -> FakeSecretsManagerClient:
    return FakeSecretsManagerClient(secrets={TOKEN_SECRET: StoredSecret(string=TOKEN), **secrets})


def reader_over(client: FakeSecretsManagerClient, settings: Settings = SETTINGS) -> SecretsManagerReader:
    return SecretsManagerReader(settings, client_factory=lambda: client)


# ------------------------------------------------------------------------------------ the reader


def test_a_secret_in_the_installations_folder_is_read_without_describing_it() -> None:
    client = client_with({OWN_FOLDER: stored(), arn(OWN_FOLDER): stored()})
    reader = reader_over(client)
    assert reader.resource_secrets(OWN_FOLDER, installation_id=MINE) == RESOURCE_SECRET
    assert reader.resource_secrets(arn(OWN_FOLDER), installation_id=MINE) == RESOURCE_SECRET
    assert client.describes == []


@pytest.mark.parametrize(
    ("name", "tags"),
    [
        (THEIR_FOLDER, {}),  # another installation's folder
        (THEIR_FOLDER, {OWNER_TAG: THEIRS}),
        (FLAT, {}),  # neither the path nor the tag
        (FLAT, {OWNER_TAG: THEIRS}),  # tagged for another installation
        (FLAT, {OWNER_TAG: MINE.upper()}),  # the tag's value must be the id exactly
        (FLAT, {"vercel:integrationconfigurationid": MINE}),  # and its key
        (f"{PREFIX}{MINE}-db", {}),  # a name that merely starts with the id is not in its folder
        (f"{PREFIX}{MINE}", {}),
    ],
)
def test_a_secret_of_another_installation_is_refused_before_any_value_is_read(name: str, tags: dict[str, str]) -> None:
    client = client_with({name: stored(**tags)})
    reader = reader_over(client)
    for secret_id in (name, arn(name)):
        client.secrets[secret_id] = client.secrets[name]
        with pytest.raises(InvalidRecordError) as caught:
            reader.resource_secrets(secret_id, installation_id=MINE)
        assert caught.value.reason == "invalid_record"
        assert THEIRS not in caught.value.message
        assert name not in caught.value.message
        assert "does not belong to the record's installation" in caught.value.message
    assert client.reads == []


def test_a_tagged_secret_outside_the_folder_belongs_to_the_tagged_installation() -> None:
    client = client_with({FLAT: stored(**{OWNER_TAG: MINE}), THEIR_FOLDER: stored(**{OWNER_TAG: MINE})})
    reader = reader_over(client)
    for _ in range(3):
        assert reader.resource_secrets(FLAT, installation_id=MINE) == RESOURCE_SECRET
    # The tag is read once, then cached (as the value is); another secret pays its own read.
    assert client.describes == [FLAT]
    assert reader.resource_secrets(THEIR_FOLDER, installation_id=MINE) == RESOURCE_SECRET
    assert client.describes == [FLAT, THEIR_FOLDER]


def test_each_secrets_tag_is_cached_on_its_own() -> None:
    other = f"{PREFIX}legacy-cache"
    client = client_with({FLAT: stored(**{OWNER_TAG: MINE}), other: stored(**{OWNER_TAG: MINE})})
    reader = reader_over(client)
    for secret_id in (FLAT, other, FLAT, other):
        reader.check_owner(secret_id, MINE)
    assert client.describes == [FLAT, other]


def test_the_tag_cache_starts_again_when_full(monkeypatch: pytest.MonkeyPatch) -> None:
    from vercel_sync.adapters import secrets

    monkeypatch.setattr(secrets, "MAX_CACHED_OWNERS", 2)  # a container's cache holds 4096
    names = [f"{PREFIX}legacy-{n}" for n in range(3)]
    client = client_with({name: stored(**{OWNER_TAG: MINE}) for name in names})
    reader = reader_over(client)
    for name in [*names, names[0]]:
        reader.check_owner(name, MINE)
    # The third found it full: the cache started again, so the first is described anew.
    assert client.describes == [*names, names[0]]


def test_the_tag_cache_expires_with_the_resource_secret_cache() -> None:
    client = client_with({FLAT: stored(**{OWNER_TAG: MINE})})
    reader = reader_over(client, SETTINGS.model_copy(update={"resource_secret_cache_seconds": 0}))
    reader.resource_secrets(FLAT, installation_id=MINE)
    client.secrets[FLAT] = stored(**{OWNER_TAG: THEIRS})  # re-tagged: it now belongs elsewhere
    with pytest.raises(InvalidRecordError):
        reader.resource_secrets(FLAT, installation_id=MINE)
    assert client.describes == [FLAT, FLAT]


@pytest.mark.parametrize(
    ("secret_id", "why"),
    [
        (arn(OWN_FOLDER, account="999999999999"), "another AWS account"),
        (arn(OWN_FOLDER, region="eu-west-1"), "another AWS region"),
        (f"arn:aws:ssm:{REGION}:{ACCOUNT}:secret:{OWN_FOLDER}", "not a Secrets Manager secret"),
        (f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:parameter:{OWN_FOLDER}", "not a Secrets Manager secret"),
    ],
)
def test_an_arn_of_another_account_or_region_is_refused_without_a_call(secret_id: str, why: str) -> None:
    client = client_with({secret_id: stored(**{OWNER_TAG: MINE})})
    with pytest.raises(InvalidRecordError, match=why) as caught:
        reader_over(client).resource_secrets(secret_id, installation_id=MINE)
    assert "999999999999" not in caught.value.message
    assert client.reads == []
    assert client.describes == []


@pytest.mark.parametrize(
    "secret_id",
    [
        # Secrets Manager (moto server too) reads a partial ARN's name after its last colon: this
        # one's name part lies in the record's folder, the secret it reaches in another's.
        f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:{OWN_FOLDER}:{THEIR_FOLDER}",
        f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:{OWN_FOLDER}:{arn(THEIR_FOLDER)}",
        f"{OWN_FOLDER} ",  # characters no secret's name holds
        f"{PREFIX}{MINE}\u2215{THEIRS}/db",
        f"{OWN_FOLDER}\n",
    ],
)
def test_a_secret_id_that_is_no_secrets_name_or_arn_is_refused_without_a_call(secret_id: str) -> None:
    client = client_with({secret_id: stored(), THEIR_FOLDER: stored()})
    with pytest.raises(InvalidRecordError, match="not a Secrets Manager secret's name or ARN") as caught:
        reader_over(client).resource_secrets(secret_id, installation_id=MINE)
    assert THEIRS not in caught.value.message
    assert client.reads == []
    assert client.describes == []


def test_without_the_functions_account_an_arn_is_not_read() -> None:
    # A configuration gap, not the record's fault: back to the source (as for an unset prefix).
    client = client_with({arn(OWN_FOLDER): stored()})
    unknown = Settings(resource_secret_prefix=PREFIX, aws_region=REGION)
    with pytest.raises(TransientSyncError, match="FUNCTION_ACCOUNT_ID"):
        reader_over(client, unknown).resource_secrets(arn(OWN_FOLDER), installation_id=MINE)
    no_region = Settings(resource_secret_prefix=PREFIX, aws_account_id=ACCOUNT)
    with pytest.raises(TransientSyncError, match="AWS_REGION"):
        reader_over(client, no_region).resource_secrets(arn(OWN_FOLDER), installation_id=MINE)
    # A name is the function's own account and region: it needs neither.
    client.secrets[OWN_FOLDER] = stored()
    assert reader_over(client, unknown).resource_secrets(OWN_FOLDER, installation_id=MINE) == RESOURCE_SECRET
    assert client.reads == [OWN_FOLDER]


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("ThrottlingException", TransientSyncError),
        ("InternalServiceError", TransientSyncError),
        ("ResourceNotFoundException", PermanentSyncError),
        ("AccessDeniedException", PermanentSyncError),
    ],
)
def test_describing_a_secret_fails_as_reading_one_does(code: str, expected: type[Exception]) -> None:
    client = client_with({FLAT: stored(**{OWNER_TAG: MINE})})
    client.errors["DescribeSecret"] = code
    with pytest.raises(expected, match=code) as caught:
        reader_over(client).resource_secrets(FLAT, installation_id=MINE)
    if isinstance(caught.value, PermanentSyncError):
        assert caught.value.reason == "resource_secret_unavailable"
    assert client.reads == []
    client.errors.clear()  # a failure is not cached
    assert reader_over(client).resource_secrets(FLAT, installation_id=MINE) == RESOURCE_SECRET


def test_a_network_failure_describing_a_secret_is_transient() -> None:
    from botocore.exceptions import EndpointConnectionError

    class Unreachable(FakeSecretsManagerClient):
        def describe_secret(self, SecretId: str) -> dict[str, Any]:
            raise EndpointConnectionError(endpoint_url="https://secretsmanager.us-east-1.amazonaws.com")

    client = Unreachable(secrets={FLAT: stored(**{OWNER_TAG: MINE})})
    with pytest.raises(TransientSyncError, match="EndpointConnectionError"):
        reader_over(client).check_owner(FLAT, MINE)
    assert client.reads == []


# ------------------------------------------------------------------------------------- settings


@pytest.mark.parametrize(
    ("secret_id", "folder"),
    [
        (OWN_FOLDER, MINE),
        (arn(OWN_FOLDER), MINE),
        (f"{PREFIX}{MINE}/nested/db", MINE),  # the first segment after the prefix
        (f"{PREFIX}{MINE}", None),  # no folder: the name ends there
        (f"{PREFIX}{MINE}/", None),  # the folder, not a secret in it
        (f"{PREFIX}/db", None),  # an empty folder name
        (FLAT, None),
        (f"elsewhere/resources/{MINE}/db", None),  # not under the prefix
        (TOKEN_SECRET, None),
    ],
)
def test_the_folder_a_secret_lies_in(secret_id: str, folder: str | None) -> None:
    assert SETTINGS.secret_folder(secret_id) == folder
    assert Settings().secret_folder(secret_id) is None  # no prefix: no folders


@pytest.mark.xfail(
    strict=True,
    raises=AssertionError,
    reason="secret_folder reads an ARN's name with the -AbCdEf suffix Secrets Manager adds, so the secret "
    "named exactly {prefix}X/ lies in X's folder by its ARN but in none by its name (no other "
    "installation's record can name it either way)",
)
def test_a_secret_named_as_a_folder_lies_in_no_folder_by_its_arn_either() -> None:
    assert SETTINGS.secret_folder(arn(f"{PREFIX}{MINE}/")) is None


@pytest.mark.parametrize("prefix", ["partner/resources", "partner", "partner/resources/x"])
def test_the_resource_secret_prefix_must_end_with_a_slash(prefix: str) -> None:
    with pytest.raises(ConfigurationError, match="RESOURCE_SECRET_PREFIX"):
        Settings.from_env({"RESOURCE_SECRET_PREFIX": prefix})
    assert Settings.from_env({"RESOURCE_SECRET_PREFIX": prefix + "/"}).resource_secret_prefix == prefix + "/"


def test_the_functions_account_and_region_come_from_the_environment() -> None:
    settings = Settings.from_env({"FUNCTION_ACCOUNT_ID": ACCOUNT, "AWS_REGION": "eu-west-1"})
    assert (settings.aws_account_id, settings.aws_region) == (ACCOUNT, "eu-west-1")
    assert Settings.from_env({"AWS_DEFAULT_REGION": "eu-west-2"}).aws_region == "eu-west-2"
    assert Settings.from_env({"AWS_REGION": "eu-west-1", "AWS_DEFAULT_REGION": "eu-west-2"}).aws_region == "eu-west-1"
    with pytest.raises(ConfigurationError, match="FUNCTION_ACCOUNT_ID"):
        Settings.from_env({"FUNCTION_ACCOUNT_ID": "12345"})


# ------------------------------------------------------------------------------------- pipeline


def record(secret_id: str, installation: str = MINE) -> dict[str, Any]:
    return {
        "integrationConfigurationId": installation,
        "resourceId": "db_1",
        "productId": "postgres",
        "name": "orders",
        "status": "active",
        "secretsArn": secret_id,
    }


@pytest.mark.parametrize("secret_id", [THEIR_FOLDER, FLAT, arn(THEIR_FOLDER), arn(OWN_FOLDER, account="999999999999")])
def test_a_record_naming_another_installations_secret_is_parked_and_nothing_is_sent(secret_id: str) -> None:
    client = client_with({secret_id: stored(**{OWNER_TAG: THEIRS})})
    vercel, failed = FakeVercel(), FakeFailedRecords()
    service = make_sync_service(vercel=vercel, secrets=reader_over(client), failed_records=failed)

    assert sync_one(service, change(record(secret_id))) == "parked"

    assert vercel.calls == []
    assert secret_id not in client.reads  # the secret's value was never read
    (message,) = failed.messages
    assert message["reason"] == "invalid_record"
    assert THEIRS not in message["detail"]
    assert DB_PASSWORD not in json.dumps(message)


def test_the_pipeline_asks_whose_the_secret_is_before_it_reads_it() -> None:
    # Whatever secret store it is handed: a store's read need not check ownership itself.
    from tests.fakes import FakeSecrets

    reads: list[str] = []
    secrets = FakeSecrets(on_resource_read=reads.append)
    secrets.documents[THEIR_FOLDER] = {"PGPASSWORD": DB_PASSWORD}
    vercel, failed = FakeVercel(), FakeFailedRecords()
    service = make_sync_service(vercel=vercel, secrets=secrets, failed_records=failed)

    assert sync_one(service, change(record(THEIR_FOLDER))) == "parked"

    assert reads == []
    assert vercel.calls == []
    assert failed.reasons() == ["invalid_record"]


def test_a_record_naming_its_own_secrets_imports_them() -> None:
    client = client_with({OWN_FOLDER: stored(), FLAT: stored(**{OWNER_TAG: MINE})})
    vercel = FakeVercel()
    service = make_sync_service(vercel=vercel, secrets=reader_over(client), failed_records=FakeFailedRecords())
    assert sync_one(service, change(record(OWN_FOLDER))) == "imported"
    assert sync_one(service, change(record(FLAT))) == "imported"
    assert [len(call.body["secrets"]) for call in vercel.calls] == [2, 2]
    assert client.describes == [FLAT]


# ------------------------------------------------------------------------------------- rotation


class RecordingVercel:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def update_resource_secrets(
        self, installation_id: str, resource_id: str, body: Any, *, token: str
    ) -> dict[str, Any]:
        self.calls.append((installation_id, resource_id))
        return {}


class Index:
    def __init__(self, targets: list[RotationTarget]) -> None:
        self.targets = targets

    def resources_using(self, secret_name: str) -> list[RotationTarget]:
        return self.targets


def rotation_event(secret_id: str) -> dict[str, Any]:
    return {
        "id": "event-1",
        "detail": {"eventName": "PutSecretValue", "requestParameters": {"secretId": secret_id}},
    }


def rotation_rig(secret_id: str, targets: list[RotationTarget], **tags: str) -> tuple[Any, ...]:
    client = client_with({secret_id: stored(**tags)})
    client.secrets[f"vercel/installations/{THEIRS}"] = StoredSecret(string=TOKEN)
    vercel, failed = RecordingVercel(), FakeFailedRecords()
    adapters = RotationAdapters(index=Index(targets), secrets=reader_over(client), vercel=vercel, failed_records=failed)
    service = RotationService(SETTINGS, adapters)
    return service, client, vercel, failed


def test_a_rotation_reaches_only_the_resources_of_the_secrets_installation() -> None:
    targets = [RotationTarget(MINE, "db_mine"), RotationTarget(THEIRS, "db_theirs")]
    service, client, vercel, failed = rotation_rig(THEIR_FOLDER, targets)

    result = service.handle(rotation_event(THEIR_FOLDER))

    assert vercel.calls == [(THEIRS, "db_theirs")]
    assert result.parked == [RotationTarget(MINE, "db_mine")]
    (message,) = failed.messages
    assert message["reason"] == "invalid_record"
    assert message["integrationConfigurationId"] == MINE
    assert THEIRS not in message["detail"]
    assert client.reads.count(THEIR_FOLDER) == 1


def test_a_rotation_of_a_secret_no_target_owns_reads_no_value() -> None:
    targets = [RotationTarget(MINE, "db_mine"), RotationTarget(THEIRS, "db_theirs")]
    service, client, vercel, failed = rotation_rig(FLAT, targets, **{OWNER_TAG: "icfg_third"})

    result = service.handle(rotation_event(FLAT))

    assert vercel.calls == []
    assert sorted(result.parked) == sorted(targets)
    assert [m["reason"] for m in failed.messages] == ["invalid_record", "invalid_record"]
    assert FLAT not in client.reads
    assert client.describes == [FLAT]  # once for every target


def test_a_rotation_follows_the_tag() -> None:
    targets = [RotationTarget(MINE, "db_mine"), RotationTarget(THEIRS, "db_theirs")]
    service, _client, vercel, failed = rotation_rig(FLAT, targets, **{OWNER_TAG: MINE})
    service.handle(rotation_event(FLAT))
    assert vercel.calls == [(MINE, "db_mine")]
    assert [m["integrationConfigurationId"] for m in failed.messages] == [THEIRS]


def test_a_rotation_whose_secret_cannot_be_read_parks_each_target_once() -> None:
    # icfg_mine's resource is parked for not owning the secret; the read then fails for good, which
    # parks the owner's resource, and only it.
    targets = [RotationTarget(MINE, "db_mine"), RotationTarget(THEIRS, "db_theirs")]
    service, client, vercel, failed = rotation_rig(THEIR_FOLDER, targets)
    client.errors["GetSecretValue"] = "AccessDeniedException"

    result = service.handle(rotation_event(THEIR_FOLDER))

    assert vercel.calls == []
    assert sorted(result.parked) == sorted(targets)
    assert sorted((m["integrationConfigurationId"], m["reason"]) for m in failed.messages) == [
        (MINE, "invalid_record"),
        (THEIRS, "resource_secret_unavailable"),
    ]


class TestResourceSecretScope:
    settings = Settings(resource_secret_prefix="partner/resources/")

    @pytest.mark.parametrize(
        "secret_id",
        [
            "partner/resources/icfg_1/db_primary",
            "arn:aws:secretsmanager:us-east-1:123456789012:secret:partner/resources/icfg_1/db_primary-AbCdEf",
        ],
    )
    def test_secrets_under_the_prefix_are_allowed(self, secret_id: str) -> None:
        assert self.settings.is_resource_secret(secret_id)

    @pytest.mark.parametrize(
        "secret_id",
        [
            "vercel/installations/icfg_other",
            "arn:aws:secretsmanager:us-east-1:123456789012:secret:vercel/installations/icfg_other-AbCdEf",
            "partner/other/db",
            "arn:aws:secretsmanager:us-east-1:123456789012:secret",
        ],
    )
    def test_other_secrets_are_refused(self, secret_id: str) -> None:
        assert not self.settings.is_resource_secret(secret_id)

    def test_without_a_prefix_no_secret_may_be_named(self) -> None:
        settings = Settings()
        assert not settings.is_resource_secret("anything/else")
        with pytest.raises(TransientSyncError, match="RESOURCE_SECRET_PREFIX"):
            SecretsManagerReader(settings, provider=object()).resource_secrets(
                "anything/else", installation_id="icfg_1"
            )

    @pytest.mark.parametrize(
        "token_secret_id",
        [
            # The token and resource prefixes overlap, so only the token id's shape tells them apart.
            "arn:aws:secretsmanager:us-east-1:123456789012:secret:shared/{integrationConfigurationId}-vercel-token",
            "shared/{integrationConfigurationId}-vercel-token",
        ],
    )
    def test_tokens_are_refused_whatever_the_shape_of_their_id(self, token_secret_id: str) -> None:
        settings = Settings(resource_secret_prefix="shared/", token_secret_id=token_secret_id)
        token_name = secret_name(token_secret_id).replace("{integrationConfigurationId}", "icfg_other")
        assert not settings.is_resource_secret(token_name)
        assert not settings.is_resource_secret(
            f"arn:aws:secretsmanager:us-east-1:123456789012:secret:{token_name}-AbC123"
        )
        assert settings.is_resource_secret("shared/icfg_1/db_primary")

    def test_reader_refuses_before_reading(self) -> None:
        class Provider:
            def get(self, *args: Any, **kwargs: Any) -> str:
                raise AssertionError("must not read")

        reader = SecretsManagerReader(self.settings, provider=Provider())
        with pytest.raises(InvalidRecordError, match="outside the resource-secret prefix"):
            reader.resource_secrets("vercel/installations/icfg_other", installation_id="icfg_other")
