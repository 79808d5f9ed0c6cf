"""The installation token and resource secrets: Powertools Parameters over Secrets Manager, errors classified
(permanent: missing, denied, undecodable; transient: throttling, network). A resource secret is read only for
the installation it belongs to (:meth:`SecretsManagerReader.check_owner`)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

from vercel_sync.errors import InvalidRecordError, PermanentSyncError, TransientSyncError
from vercel_sync.settings import Settings, is_secret_name_or_arn, secret_name

OWNER_TAG = "vercel:integrationConfigurationId"
NOT_OWNED = (
    "secretsArn names a secret that does not belong to the record's installation: a resource secret must lie in "
    "the installation's folder under the resource-secret prefix ({prefix}<installation id>/) or carry the tag "
    f"{OWNER_TAG} with the installation's id"
)
# Tags kept per secret, at most; past it the cache starts again (secrets per container are few).
MAX_CACHED_OWNERS = 4096

# Secrets Manager error codes that another try will not fix.
PERMANENT_SECRET_ERRORS = frozenset(
    {"ResourceNotFoundException", "AccessDeniedException", "DecryptionFailure", "InvalidRequestException"}
    | {"InvalidParameterException", "ValidationException", "UnrecognizedClientException"}
)


class SecretsManagerReader:
    def __init__(
        self, settings: Settings, provider: Any = None, client_factory: Callable[[], Any] | None = None
    ) -> None:
        self._settings = settings
        self._provider = provider  # built on first use: no client before it is needed
        # The container's shared client (``AwsClients``): else Powertools builds a boto3 session of its own.
        self._client_factory = client_factory
        self._owner_tags: dict[str, tuple[str | None, float]] = {}  # secret id -> (owner tag, monotonic expiry)
        self._owner_lock = threading.Lock()

    def _secrets_provider(self) -> Any:
        if self._provider is None:
            from aws_lambda_powertools.utilities.parameters import SecretsProvider

            client = self._client_factory() if self._client_factory is not None else None
            self._provider = SecretsProvider(boto3_client=client)
        return self._provider

    def installation_token(self, integration_configuration_id: str, *, force_fetch: bool = False) -> str:
        """The installation's access token: the JSON Vercel sends (``access_token``) or a bare token."""
        secret_id, reason = self._settings.token_secret_id_for(integration_configuration_id), "token_unavailable"
        raw = self._read(secret_id, max_age=self._settings.token_cache_seconds, force_fetch=force_fetch, reason=reason)
        try:
            token = _token_from_secret(raw)
        except RecursionError:
            raise PermanentSyncError(
                f"secret {secret_id} holds JSON nested too deeply to read", reason=reason
            ) from None
        if not token:
            expected = '{"access_token": ...} or the bare token'
            raise PermanentSyncError(f"secret {secret_id} holds no access token (expected {expected})", reason=reason)
        if not header_safe(token):
            # An HTTP header carries only visible ASCII; the HTTP library's error would quote the token.
            unsafe = "characters an Authorization header cannot carry"
            raise PermanentSyncError(f"secret {secret_id} holds a token with {unsafe}", reason=reason)
        return token

    def integration_credentials(self, *, force_fetch: bool = False) -> tuple[str, str]:
        """The integration's ``(client_id, client_secret)``: the secret INTEGRATION_CREDENTIALS_SECRET_ID
        names holds ``{"client_id": ..., "client_secret": ...}`` (short-lived tokens)."""
        secret_id, reason = self._settings.integration_credentials_secret_id, "token_unavailable"
        if secret_id is None:
            raise PermanentSyncError("INTEGRATION_CREDENTIALS_SECRET_ID is not set", reason=reason)
        raw = self._read(secret_id, max_age=self._settings.token_cache_seconds, force_fetch=force_fetch, reason=reason)
        try:
            document = json.loads(raw)
        except (ValueError, RecursionError):
            document = None
        pair = [document.get(name) if isinstance(document, dict) else None for name in ("client_id", "client_secret")]
        if not all(isinstance(value, str) and value.strip() and _utf8(value) for value in pair):
            expected = '{"client_id": ..., "client_secret": ...}'
            raise PermanentSyncError(f"secret {secret_id} does not hold {expected}", reason=reason)
        return pair[0].strip(), pair[1].strip()  # type: ignore[union-attr]

    def resource_secrets(self, secret_id: str, *, installation_id: str, force_fetch: bool = False) -> Any:
        """The resource secret's JSON document, if the secret belongs to ``installation_id`` (else nothing
        is read). ``force_fetch`` reads past the cache (rotation sync: the value has just changed)."""
        self.check_owner(secret_id, installation_id)
        max_age, reason = self._settings.resource_secret_cache_seconds, "resource_secret_unavailable"
        raw = self._read(secret_id, max_age=max_age, force_fetch=force_fetch, reason=reason)
        try:
            return json.loads(raw)
        except ValueError:
            raise PermanentSyncError(f"resource secret {secret_id} is not JSON", reason=reason) from None
        except RecursionError:
            too_deep = "holds JSON nested too deeply to read"
            raise PermanentSyncError(f"resource secret {secret_id} {too_deep}", reason=reason) from None

    def check_owner(self, secret_id: str, installation_id: str) -> None:
        """Raises unless a record of ``installation_id`` may name ``secret_id`` (reads no value): a secret
        under the resource-secret prefix, not an installation token, in the function's own account and
        region, belonging to the installation. The messages name neither the secret nor another
        installation (the secret's name may hold one's id)."""
        settings = self._settings
        if not is_secret_name_or_arn(secret_id):
            raise InvalidRecordError(
                "secretsArn is not a Secrets Manager secret's name or ARN (a name holds letters, digits, /_+=.@- only)"
            )
        if not settings.is_resource_secret(secret_id):
            if settings.resource_secret_prefix is None:
                # A configuration gap, not the record's fault: back to the source until it is set.
                raise TransientSyncError("secretsArn cannot be read: RESOURCE_SECRET_PREFIX is not set")
            raise InvalidRecordError(
                "secretsArn names a secret outside the resource-secret prefix "
                f"({settings.resource_secret_prefix}) or an installation token"
            )
        if secret_id.startswith("arn:"):
            _check_arn(secret_id, settings)
        if settings.secret_folder(secret_id) == installation_id:
            return
        if self._owner_tag(secret_id) != installation_id:
            raise InvalidRecordError(NOT_OWNED.format(prefix=settings.resource_secret_prefix))

    def _owner_tag(self, secret_id: str) -> str | None:
        """The secret's :data:`OWNER_TAG` (DescribeSecret: metadata, no value), cached."""
        now = time.monotonic()
        with self._owner_lock:
            cached = self._owner_tags.get(secret_id)
        if cached is not None and cached[1] > now:
            return cached[0]
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            described = self._secrets_provider().client.describe_secret(SecretId=secret_id)
        except (ClientError, BotoCoreError) as exc:
            code = _aws_error_code(exc)  # a BotoCoreError's is its type's name: never permanent
            if code in PERMANENT_SECRET_ERRORS:
                raise PermanentSyncError(
                    f"cannot read the tags of the secret secretsArn names: {code}", reason="resource_secret_unavailable"
                ) from None
            raise TransientSyncError(f"cannot read the tags of the secret secretsArn names now: {code}") from None
        tags = {tag.get("Key"): tag.get("Value") for tag in described.get("Tags") or []}
        owner = tags.get(OWNER_TAG)
        owner = owner if isinstance(owner, str) else None
        with self._owner_lock:
            if len(self._owner_tags) >= MAX_CACHED_OWNERS:
                self._owner_tags.clear()
            self._owner_tags[secret_id] = (owner, now + self._settings.resource_secret_cache_seconds)
        return owner

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
            try:
                value = value.decode("utf-8")
            except UnicodeDecodeError:
                not_utf8 = "holds binary data that is not UTF-8"
                raise PermanentSyncError(f"secret {secret_id} {not_utf8}", reason=reason) from None
        if not isinstance(value, str):
            raise PermanentSyncError(f"secret {secret_id} has no string value", reason=reason)
        return value


def _check_arn(secret_id: str, settings: Settings) -> None:
    """A secret ARN must be a Secrets Manager secret's, in the function's own account and region."""
    parts = secret_id.split(":", 6)
    if len(parts) != 7 or parts[2] != "secretsmanager" or parts[5] != "secret" or not secret_name(secret_id):
        raise InvalidRecordError("secretsArn is an ARN, but not a Secrets Manager secret's")
    if settings.aws_account_id is None or settings.aws_region is None:
        # Unknown, the ARN cannot be checked: not read, back to the source until it is set.
        missing = "FUNCTION_ACCOUNT_ID" if settings.aws_account_id is None else "AWS_REGION"
        raise TransientSyncError(f"secretsArn is an ARN and cannot be checked: {missing} is not set")
    if parts[4] != settings.aws_account_id:
        raise InvalidRecordError("secretsArn names a secret in another AWS account than the function's")
    if parts[3] != settings.aws_region:
        raise InvalidRecordError("secretsArn names a secret in another AWS region than the function's")


def _aws_error_code(error: BaseException | None) -> str | None:
    response = getattr(error, "response", None)
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code")
        return str(code) if code else None
    return type(error).__name__ if error is not None else None


def _utf8(value: str) -> bool:
    """Whether ``value`` has a UTF-8 form (JSON may hold a lone surrogate; a form body or HMAC key cannot)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def header_safe(token: str) -> bool:
    """Whether an Authorization header can carry ``token`` (visible ASCII only)."""
    return token.isascii() and all(33 <= ord(c) <= 126 for c in token)


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
