"""Reading the installation token and resource secrets: Powertools Parameters over Secrets Manager.

Powertools caches each value for its ``max_age``; a 401 from Vercel re-reads the token past
the cache (``force_fetch``). Errors are classified: a missing secret, a denied read or a
secret that cannot be decrypted is permanent for the record (the failed-records queue holds
it until an operator fixes the cause and replays it); throttling and network trouble are
transient. Neither the value nor the error's text from AWS beyond its code is kept.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from vercel_sync.errors import InvalidRecordError, PermanentSyncError, TransientSyncError
from vercel_sync.settings import Settings

# Secrets Manager error codes that another try will not fix.
PERMANENT_SECRET_ERRORS = frozenset(
    {
        "ResourceNotFoundException",
        "AccessDeniedException",
        "DecryptionFailure",
        "InvalidRequestException",
        "InvalidParameterException",
        "ValidationException",
        "UnrecognizedClientException",
    }
)


class SecretsManagerReader:
    def __init__(
        self,
        settings: Settings,
        provider: Any = None,
        boto_config: Any = None,
        client_factory: Callable[[], Any] | None = None,
    ) -> None:
        self._settings = settings
        self._provider = provider  # built on first use: no client before it is needed
        self._boto_config = boto_config
        # Gives the container's shared Secrets Manager client (``AwsClients``): Powertools would
        # otherwise build a boto3 session of its own, which costs a cold start its set-up again.
        self._client_factory = client_factory

    def _secrets_provider(self) -> Any:
        if self._provider is None:
            from aws_lambda_powertools.utilities.parameters import SecretsProvider

            if self._client_factory is not None:
                self._provider = SecretsProvider(boto3_client=self._client_factory())
            else:
                self._provider = SecretsProvider(boto_config=self._boto_config)
        return self._provider

    def installation_token(self, integration_configuration_id: str, *, force_fetch: bool = False) -> str:
        """The installation's access token: the JSON Vercel sends (``access_token``) or a bare token."""
        secret_id = self._settings.token_secret_id_for(integration_configuration_id)
        raw = self._read(
            secret_id,
            max_age=self._settings.token_cache_seconds,
            force_fetch=force_fetch,
            reason="token_unavailable",
        )
        token = _token_from_secret(raw)
        if not token:
            raise PermanentSyncError(
                f'secret {secret_id} holds no access token (expected {{"access_token": ...}} or the bare token)',
                reason="token_unavailable",
            )
        if not _is_header_safe(token):
            # An HTTP header can carry only visible ASCII; the HTTP library's error would quote it.
            raise PermanentSyncError(
                f"secret {secret_id} holds a token with characters an Authorization header cannot carry",
                reason="token_unavailable",
            )
        return token

    def resource_secrets(self, secret_id: str, *, force_fetch: bool = False) -> Any:
        """The resource secret's JSON document (validated by the transform).

        Only secrets under the resource-secret prefix are read for a record: the function may
        read installation tokens too, and a record naming one must not get it sent to Vercel
        as a resource secret. ``force_fetch`` reads past the cache (rotation sync: the value has
        just changed).
        """
        if not self._settings.is_resource_secret(secret_id):
            if self._settings.resource_secret_prefix is None:
                # A configuration gap, not the record's fault: back to the source until it is set.
                raise TransientSyncError("secretsArn cannot be read: RESOURCE_SECRET_PREFIX is not set")
            raise InvalidRecordError(
                "secretsArn names a secret outside the resource-secret prefix "
                f"({self._settings.resource_secret_prefix}) or an installation token"
            )
        raw = self._read(
            secret_id,
            max_age=self._settings.resource_secret_cache_seconds,
            force_fetch=force_fetch,
            reason="resource_secret_unavailable",
        )
        try:
            return json.loads(raw)
        except ValueError:
            raise PermanentSyncError(
                f"resource secret {secret_id} is not JSON", reason="resource_secret_unavailable"
            ) from None

    def _read(self, secret_id: str, *, max_age: int, force_fetch: bool, reason: str) -> str:
        from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError

        try:
            value = self._secrets_provider().get(secret_id, max_age=max_age, force_fetch=force_fetch)
        except GetParameterError as exc:
            # Powertools wraps the boto3 error; the original is the exception's context.
            code = _aws_error_code(exc.__cause__ or exc.__context__)
            if code in PERMANENT_SECRET_ERRORS:
                raise PermanentSyncError(f"cannot read secret {secret_id}: {code}", reason=reason) from None
            raise TransientSyncError(f"cannot read secret {secret_id} now: {code or 'network error'}") from None
        if isinstance(value, bytes):
            value = value.decode("utf-8")
        if not isinstance(value, str):
            raise PermanentSyncError(f"secret {secret_id} has no string value", reason=reason)
        return value


def _aws_error_code(error: BaseException | None) -> str | None:
    response = getattr(error, "response", None)
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code")
        return str(code) if code else None
    return type(error).__name__ if error is not None else None


def _token_from_secret(raw: str) -> str:
    text = raw.strip()
    if text.startswith("{"):
        try:
            document = json.loads(text)
        except ValueError:
            return ""
        token = document.get("access_token") if isinstance(document, dict) else None
        return token.strip() if isinstance(token, str) else ""
    return text


def _is_header_safe(token: str) -> bool:
    return token.isascii() and all(33 <= ord(c) <= 126 for c in token)
