"""tools/rotate_token.py when a step fails: it stops, says what state the installation is in, and
never prints a token."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import respx

from tests.fakes import ROTATED_TOKEN, TOKEN
from tools.rotate_token import RotationError, rotate_installation_token
from vercel_sync.settings import Settings

BASE = "https://api.vercel.test"
SETTINGS = Settings(vercel_api_url=BASE)


@dataclass
class FakeSecretsManager:
    value: str = json.dumps({"access_token": TOKEN, "token_type": "Bearer"})
    refuse_put: bool = False
    puts: list[str] = field(default_factory=list)

    def get_secret_value(self, SecretId: str) -> dict[str, Any]:
        return {"SecretString": self.value}

    def put_secret_value(self, SecretId: str, SecretString: str) -> None:
        if self.refuse_put:
            raise ConnectionError(f"refused {SecretString}")
        self.puts.append(SecretString)


def rotate(secrets: FakeSecretsManager, lines: list[str]) -> None:
    with httpx.Client() as http:
        rotate_installation_token(
            "icfg_1",
            settings=SETTINGS,
            client_secret="client-secret-1234",
            secretsmanager=secrets,
            http=http,
            revoke_after_seconds=5,
            sleep=lambda seconds: lines.append(f"slept {seconds}"),
            out=lines.append,
        )


@respx.mock
def test_the_whole_rotation_in_order() -> None:
    rotate_route = respx.post(f"{BASE}/v1/installations/icfg_1/credentials/rotate").mock(
        return_value=httpx.Response(200, json={"access_token": ROTATED_TOKEN, "token_type": "Bearer"})
    )
    revoke_route = respx.post(f"{BASE}/v1/installations/icfg_1/credentials/revoke").mock(
        return_value=httpx.Response(204)
    )
    secrets, lines = FakeSecretsManager(), []

    rotate(secrets, lines)

    assert rotate_route.calls.last.request.headers["authorization"] == f"Bearer {TOKEN}"
    assert json.loads(secrets.puts[0]) == {"access_token": ROTATED_TOKEN, "token_type": "Bearer"}
    assert "slept 5" in lines
    revoke = revoke_route.calls.last.request
    assert revoke.headers["authorization"] == f"Bearer {ROTATED_TOKEN}"
    assert json.loads(revoke.content)["access_token"] == TOKEN
    assert not any(TOKEN in line or ROTATED_TOKEN in line for line in lines)


@respx.mock
def test_a_refused_rotation_changes_nothing() -> None:
    respx.post(url__regex=r".*/rotate$").mock(return_value=httpx.Response(403, json={"error": {"code": "forbidden"}}))
    secrets = FakeSecretsManager()
    with pytest.raises(RotationError, match="nothing was changed"):
        rotate(secrets, [])
    assert secrets.puts == []


@respx.mock
def test_a_new_token_that_cannot_be_stored_leaves_the_old_one_in_use() -> None:
    respx.post(url__regex=r".*/rotate$").mock(return_value=httpx.Response(200, json={"access_token": ROTATED_TOKEN}))
    revoke = respx.post(url__regex=r".*/revoke$").mock(return_value=httpx.Response(204))
    with pytest.raises(RotationError) as caught:
        rotate(FakeSecretsManager(refuse_put=True), [])
    assert "old token is still valid" in str(caught.value)
    assert ROTATED_TOKEN not in str(caught.value)
    assert caught.value.__cause__ is None
    assert not revoke.called
