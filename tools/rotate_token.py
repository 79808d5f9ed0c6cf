"""Rotate an installation's Vercel access token while the sync runs, losing no record.

    VERCEL_CLIENT_SECRET=... python -m tools.rotate_token icfg_XXXX [--revoke-after 300]

1. reads the current token from Secrets Manager (``VERCEL_TOKEN_SECRET_ID``'s secret for the
   installation, default ``vercel/installations/<id>``);
2. asks Vercel for a new one (``POST /v1/installations/<id>/credentials/rotate``, authenticated by
   the current token and the integration's client secret); the old one stays valid;
3. stores the new one as the secret's new current version, in the JSON Vercel sends
   (``{"access_token", "token_type"}``), so every function reads it from now on;
4. waits ``--revoke-after`` seconds (default 300, the functions' ``TOKEN_CACHE_SECONDS``: by then
   every warm function has re-read the secret, so none meets a 401), then
5. revokes the old one (``POST .../credentials/revoke``, authenticated by the new one).

A function still holding the old token after step 5 gets a 401, re-reads the secret past its
cache and retries at once with the new one: the record succeeds (``--revoke-after 0`` relies on
this, and the test does too). If step 3 fails, the new token is lost but the old one is still
valid: nothing breaks, run the tool again. Tokens are never printed. The client secret comes
from ``VERCEL_CLIENT_SECRET`` (never the command line, which other users of the machine can see).
``AWS_ENDPOINT_URL`` points it at moto server locally, as it does the functions.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from typing import Any

import httpx

from vercel_sync.paths import encode_path_segment
from vercel_sync.settings import Settings

DEFAULT_REVOKE_AFTER_SECONDS = 300.0  # Settings().token_cache_seconds


class RotationError(Exception):
    """A step failed; the message says which and what state the installation is in (no token)."""


def _token_from_secret(raw: str) -> str:
    text = raw.strip()
    if text.startswith("{"):
        document = json.loads(text)
        token = document.get("access_token") if isinstance(document, dict) else None
        return token.strip() if isinstance(token, str) else ""
    return text


def rotate_installation_token(
    installation_id: str,
    *,
    settings: Settings,
    client_secret: str,
    secretsmanager: Any,
    http: httpx.Client,
    revoke_after_seconds: float = DEFAULT_REVOKE_AFTER_SECONDS,
    sleep: Callable[[float], None] = time.sleep,
    out: Callable[[str], None] = print,
) -> None:
    secret_id = settings.token_secret_id_for(installation_id)
    base = f"{settings.vercel_api_url}/v1/installations/{encode_path_segment(installation_id)}/credentials"

    old_token = _token_from_secret(secretsmanager.get_secret_value(SecretId=secret_id)["SecretString"])
    if not old_token:
        raise RotationError(f"secret {secret_id} holds no access token; nothing was changed")
    out(f"1/5 read the current token of {installation_id} from {secret_id}")

    answer = http.post(
        f"{base}/rotate", json={"client_secret": client_secret}, headers={"Authorization": f"Bearer {old_token}"}
    )
    if answer.status_code != 200:
        raise RotationError(f"Vercel refused the rotation ({answer.status_code}); nothing was changed")
    new_token = answer.json().get("access_token")
    if not isinstance(new_token, str) or not new_token:
        raise RotationError("Vercel's answer holds no access_token; the old token is still the one in use")
    out("2/5 Vercel issued a new token (the old one stays valid until revoked)")

    try:
        stored = json.dumps({"access_token": new_token, "token_type": "Bearer"})  # the token type's name, not a token  # nosec B105
        secretsmanager.put_secret_value(SecretId=secret_id, SecretString=stored)
    except Exception as exc:  # noqa: BLE001 - reported without the token; the old one still works
        raise RotationError(
            f"could not store the new token in {secret_id} ({type(exc).__name__}); the old token is still valid "
            "and in use: run the rotation again"
        ) from None
    out(f"3/5 stored the new token as the current version of {secret_id}")

    if revoke_after_seconds > 0:
        out(f"4/5 waiting {revoke_after_seconds:g} s for every function to re-read it")
        sleep(revoke_after_seconds)
    else:
        out("4/5 not waiting: a function still holding the old token re-reads the secret on its 401")

    answer = http.post(
        f"{base}/revoke",
        json={"client_secret": client_secret, "access_token": old_token},
        headers={"Authorization": f"Bearer {new_token}"},
    )
    if answer.status_code not in (200, 204):
        raise RotationError(
            f"Vercel refused to revoke the old token ({answer.status_code}); the new one is in use, "
            "the old one still valid: revoke it by hand"
        )
    out("5/5 revoked the old token: the rotation is complete")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.rotate_token", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("installation_id", help="the integrationConfigurationId")
    parser.add_argument("--revoke-after", type=float, default=DEFAULT_REVOKE_AFTER_SECONDS, metavar="SECONDS")
    args = parser.parse_args(argv)
    client_secret = os.environ.get("VERCEL_CLIENT_SECRET", "")
    if not client_secret:
        parser.error("set VERCEL_CLIENT_SECRET to the integration's client secret")
    settings = Settings.from_env(os.environ)

    import boto3

    with httpx.Client(timeout=10, follow_redirects=False) as http:
        try:
            rotate_installation_token(
                args.installation_id,
                settings=settings,
                client_secret=client_secret,
                secretsmanager=boto3.client("secretsmanager"),
                http=http,
                revoke_after_seconds=args.revoke_after,
            )
        except RotationError as exc:
            print(f"rotation stopped: {exc}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
