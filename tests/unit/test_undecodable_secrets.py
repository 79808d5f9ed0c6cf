"""A secret that cannot be decoded is a permanent failure of the record, never a bug.

A ``SecretBinary`` that is not UTF-8, or JSON nested past Python's recursion limit, raised
UnicodeDecodeError or RecursionError: the unexpected-error path, which holds a stream shard. Each
is now ``resource_secret_unavailable`` or ``token_unavailable``, naming the secret, never its content.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.builders import change
from tests.fakes import (
    TOKEN,
    FakeFailedRecords,
    FakeSecretsManagerClient,
    FakeVercel,
    StoredSecret,
    make_sync_service,
    sync_one,
)
from tests.leak_scan import register_secret
from vercel_sync.adapters.secrets import SecretsManagerReader
from vercel_sync.errors import PermanentSyncError
from vercel_sync.settings import Settings

INSTALLATION = "icfg_1"
RESOURCE_SECRET = f"partner/resources/{INSTALLATION}/db"
TOKEN_SECRET = f"vercel/installations/{INSTALLATION}"
SETTINGS = Settings(resource_secret_prefix="partner/resources/")
NOT_UTF8 = b"\xff\xfe-pw-UNDECODABLE-\xc3\x28"
DEPTH = 50_000  # far past the recursion limit, within Secrets Manager's 64 KiB
DEEP_JSON = "[" * DEPTH + "]" * DEPTH
DEEP_TOKEN_JSON = '{"access_token": ' + "[" * DEPTH + "]" * DEPTH + "}"
register_secret("-pw-UNDECODABLE-", label="bytes of an undecodable secret")

UNDECODABLE = {
    "binary, not UTF-8": StoredSecret(binary=NOT_UTF8),
    # JSON around a value that is not UTF-8: read with replacement characters, it would parse, and
    # the value Vercel got would not be the secret's.
    "binary JSON, a value not UTF-8": StoredSecret(binary=b'{"PGPASSWORD": "' + NOT_UTF8 + b'"}'),
    "JSON nested too deep": StoredSecret(string=DEEP_JSON),
    "JSON object nested too deep": StoredSecret(string='{"A": ' + "[" * DEPTH + "]" * DEPTH + "}"),
}


def reader(secrets: dict[str, StoredSecret]) -> SecretsManagerReader:
    client = FakeSecretsManagerClient(secrets=secrets)
    return SecretsManagerReader(SETTINGS, client_factory=lambda: client)


@pytest.mark.parametrize("stored", UNDECODABLE.values(), ids=UNDECODABLE.keys())
def test_an_undecodable_resource_secret_is_unavailable(stored: StoredSecret) -> None:
    with pytest.raises(PermanentSyncError) as caught:
        reader({RESOURCE_SECRET: stored}).resource_secrets(RESOURCE_SECRET, installation_id=INSTALLATION)
    assert caught.value.reason == "resource_secret_unavailable"
    assert RESOURCE_SECRET in caught.value.message
    assert "UNDECODABLE" not in caught.value.message
    assert "[[" not in caught.value.message
    if stored.binary is not None:
        assert "not UTF-8" in caught.value.message


@pytest.mark.parametrize(
    "stored",
    [
        StoredSecret(binary=NOT_UTF8),
        StoredSecret(string=DEEP_TOKEN_JSON),
        StoredSecret(string='{"access_token": ' + "[" * DEPTH),  # cut short, still too deep to parse
    ],
    ids=["binary, not UTF-8", "JSON nested too deep", "JSON opened too deep"],
)
def test_an_undecodable_token_is_unavailable(stored: StoredSecret) -> None:
    with pytest.raises(PermanentSyncError) as caught:
        reader({TOKEN_SECRET: stored}).installation_token(INSTALLATION)
    assert caught.value.reason == "token_unavailable"
    assert TOKEN_SECRET in caught.value.message
    assert "UNDECODABLE" not in caught.value.message
    assert "[[" not in caught.value.message


def test_a_token_stored_as_utf8_binary_is_read() -> None:
    assert reader({TOKEN_SECRET: StoredSecret(binary=TOKEN.encode())}).installation_token(INSTALLATION) == TOKEN


@pytest.mark.parametrize(
    ("secrets", "reason"),
    [
        ({RESOURCE_SECRET: StoredSecret(binary=NOT_UTF8), TOKEN_SECRET: StoredSecret(string=TOKEN)}, "resource"),
        ({RESOURCE_SECRET: StoredSecret(string=DEEP_JSON), TOKEN_SECRET: StoredSecret(string=TOKEN)}, "resource"),
        ({RESOURCE_SECRET: StoredSecret(string="{}"), TOKEN_SECRET: StoredSecret(binary=NOT_UTF8)}, "token"),
        ({RESOURCE_SECRET: StoredSecret(string="{}"), TOKEN_SECRET: StoredSecret(string=DEEP_TOKEN_JSON)}, "token"),
    ],
)
def test_the_record_is_parked_with_the_secrets_name(secrets: dict[str, StoredSecret], reason: str) -> None:
    failed = FakeFailedRecords()
    service = make_sync_service(vercel=FakeVercel(), secrets=reader(secrets), failed_records=failed)
    item = {
        "integrationConfigurationId": INSTALLATION,
        "resourceId": "db_1",
        "productId": "postgres",
        "name": "orders",
        "status": "active",
        "secretsArn": RESOURCE_SECRET,
    }

    assert sync_one(service, change(item)) == "parked"

    (message,) = failed.messages
    assert message["reason"] == {"resource": "resource_secret_unavailable", "token": "token_unavailable"}[reason]
    assert (RESOURCE_SECRET if reason == "resource" else TOKEN_SECRET) in message["detail"]
    assert "[[" not in json.dumps(message)


@pytest.mark.parametrize("token", ["tök-non-ascii-1234", "has space 12345", "tab\tseparated"])
def test_tokens_a_header_cannot_carry_are_unavailable(token: str) -> None:
    class Provider:
        def get(self, *args: Any, **kwargs: Any) -> str:
            return json.dumps({"access_token": token})

    reader = SecretsManagerReader(Settings(), provider=Provider())
    with pytest.raises(PermanentSyncError) as caught:
        reader.installation_token("icfg_1")
    assert caught.value.reason == "token_unavailable"
    assert token not in str(caught.value)
