"""The official SDK (``@vercel/sdk``, pinned in tests/sdk/package-lock.json) against the emulator: each
marketplace call it makes must pass the SDK's own response validation. ``npm ci`` installs it
(``.ci/run`` does, and so does this test when ``node_modules`` is missing)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.integration.support import loopback_client, put, resource_path, valid_body
from tests.leak_scan import register_secret
from vercel_emulator import EmulatorServer

pytestmark = pytest.mark.integration

SDK_DIRECTORY = Path(__file__).resolve().parents[1] / "sdk"
INSTALLATION = "icfg_sdk"
TOKEN = "sdk-contract-token"
CLIENT_SECRET = "sdk-contract-client-secret"
register_secret(TOKEN, CLIENT_SECRET, label="the SDK contract's token and client secret")


def _sdk_ready() -> str | None:
    """Why the SDK cannot run here (None: it can), installing it with ``npm ci`` if needed."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        return "node and npm are not installed"
    if (SDK_DIRECTORY / "node_modules" / "@vercel" / "sdk").is_dir():
        return None
    done = subprocess.run(
        ["npm", "ci", "--no-audit", "--no-fund"],  # noqa: S607
        cwd=SDK_DIRECTORY,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if done.returncode != 0:
        return f"npm could not install @vercel/sdk from the registry: {done.stderr.strip()[-300:]}"
    return None


def run_sdk(server: EmulatorServer, resource_id: str) -> dict[str, Any]:
    environment = {
        **os.environ,
        "EMULATOR_URL": server.url,
        "EMULATOR_TOKEN": TOKEN,
        "INSTALLATION_ID": INSTALLATION,
        "RESOURCE_ID": resource_id,
        "CLIENT_SECRET": CLIENT_SECRET,
    }
    done = subprocess.run(
        ["node", "contract.mjs"],  # noqa: S607
        cwd=SDK_DIRECTORY,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    results: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return results


@pytest.fixture(scope="module")
def sdk_results() -> dict[str, Any]:
    reason = _sdk_ready()
    if reason is not None:
        pytest.skip(reason)
    with (
        EmulatorServer({INSTALLATION: TOKEN}, client_secret=CLIENT_SECRET) as server,
        loopback_client(server.url, TOKEN) as http,
    ):
        body = valid_body(metadata={"region": "eu-west-1", "replicas": 2, "zones": ["a", "b"], "ha": True})
        assert put(http, resource_path(INSTALLATION, "db/eu 1"), body).status_code == 200
        assert put(http, resource_path(INSTALLATION, "cache"), valid_body(name="cache")).status_code == 200
        results = run_sdk(server, "db/eu 1")
        after = http.get(resource_path(INSTALLATION)).json()
    results["heldAfter"] = [resource["partnerId"] for resource in after["resources"]]
    return results


def test_the_sdk_validates_the_list_with_secret_names_only(sdk_results: dict[str, Any]) -> None:
    listed = sdk_results["getIntegrationResources"]
    assert listed["ok"], listed
    resources = listed["value"]["resources"]
    assert sorted(resource["name"] for resource in resources) == ["cache", "orders-db"]
    assert all(resource["internalId"].startswith("res_") for resource in resources)
    assert "SECRET" not in json.dumps(sdk_results)  # valid_body's secret value never comes back


def test_the_sdk_validates_one_resource(sdk_results: dict[str, Any]) -> None:
    got = sdk_results["getIntegrationResource"]
    assert got["ok"], got
    resource = got["value"]
    assert (resource["productId"], resource["status"]) == ("prod_postgres", "ready")
    assert resource["billingPlanId"] == "plan_pro"
    assert resource["metadata"] == {"region": "eu-west-1", "replicas": 2, "zones": ["a", "b"], "ha": True}


def test_the_sdk_reads_the_partners_id_as_id_and_vercels_as_internal_id(sdk_results: dict[str, Any]) -> None:
    # The SDK's models: Get Resource's ``id`` is "the ID provided by the 3rd party provider", the
    # list's is ``partnerId``; ``internalId`` is "the ID assigned by Vercel" in both.
    resource = sdk_results["getIntegrationResource"]["value"]
    assert (resource["id"], resource["internalId"][:4]) == ("db/eu 1", "res_")
    listed = {r["partnerId"]: r for r in sdk_results["getIntegrationResources"]["value"]["resources"]}
    assert listed["db/eu 1"]["internalId"] == resource["internalId"]


def test_the_sdk_deletes_and_a_deleted_resource_is_404(sdk_results: dict[str, Any]) -> None:
    assert sdk_results["deleteIntegrationResource"] == {"ok": True, "value": None}
    after = sdk_results["getAfterDelete"]
    assert (after["ok"], after["statusCode"]) == (False, 404)
    assert sdk_results["heldAfter"] == ["cache"]


def test_the_sdk_validates_a_credential_rotation(sdk_results: dict[str, Any]) -> None:
    rotated = sdk_results["rotateInstallationCredential"]
    assert rotated["ok"], rotated
    assert rotated["value"]["tokenType"] == "oauth2-token"
