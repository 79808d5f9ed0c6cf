"""The functions' configuration from the environment (docs/configuration.md): a shared model and one per
function. A wrong value fails the first invocation with a message naming the variable: nothing is lost."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from typing import Annotated, ClassVar, Literal, Self
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from vercel_sync.errors import ConfigurationError

INSTALLATION_PLACEHOLDER = "{integrationConfigurationId}"
DEFAULT_VERCEL_API_URL = "https://api.vercel.com"
DEFAULT_TOKEN_SECRET_ID = "vercel/installations/" + INSTALLATION_PLACEHOLDER
# Not confirmed by Vercel's public pages (docs/configuration.md, "Short-lived tokens"): hence a setting.
DEFAULT_TOKEN_PATH = "/v2/oauth/access_token"  # noqa: S105 - a URL path, not a secret  # nosec B105

# Environment variable -> settings field.
ENVIRONMENT_VARIABLES = {
    "VERCEL_API_URL": "vercel_api_url",
    "VERCEL_TOKEN_SECRET_ID": "token_secret_id",  # a settings field's name  # nosec B105
    "RESOURCE_SECRET_PREFIX": "resource_secret_prefix",  # a settings field's name  # nosec B105
    "FAILED_RECORDS_QUEUE_URL": "failed_records_queue_url",
    "SYNC_STATE_TABLE": "sync_state_table",
    "MAX_CONCURRENCY": "max_concurrency",
    "VERCEL_RATE_LIMIT": "rate_limit",
    "HTTP_TIMEOUT_SECONDS": "http_timeout_seconds",
    "TOKEN_CACHE_SECONDS": "token_cache_seconds",  # a settings field's name  # nosec B105
    "RESOURCE_SECRET_CACHE_SECONDS": "resource_secret_cache_seconds",  # a settings field's name  # nosec B105
    "STREAM_PARK_AFTER_SECONDS": "stream_park_after_seconds",
    "REMOVAL_MODE": "removal_mode",
    "PARTNER_MAPPING_FILE": "partner_mapping_file",
    "PARTNER_MAPPING_PARAMETER": "partner_mapping_parameter",
    "TOKEN_MODE": "token_mode",  # a settings field's name  # nosec B105
    "INTEGRATION_CREDENTIALS_SECRET_ID": "integration_credentials_secret_id",
    "VERCEL_TOKEN_URL": "vercel_token_url",  # a settings field's name  # nosec B105
    "VERCEL_TOKEN_INSTALLATION_FIELD": "token_installation_field",  # a settings field's name  # nosec B105
    "TOKEN_REFRESH_MARGIN_SECONDS": "token_refresh_margin_seconds",  # a settings field's name  # nosec B105
    # Not AWS_ACCOUNT_ID: botocore reads that one too (account-based DynamoDB endpoints).
    "FUNCTION_ACCOUNT_ID": "aws_account_id",
    "AWS_REGION": "aws_region",  # set by Lambda; AWS_DEFAULT_REGION when it is not set
}


RemovalMode = Literal["uninstalled", "delete"]


class RateLimit(BaseModel):
    """``CALLS/SECONDS``: at most ``calls`` imports per ``seconds`` per installation."""

    model_config = ConfigDict(frozen=True)

    calls: Annotated[int, Field(gt=0)]
    seconds: Annotated[float, Field(gt=0)]

    @classmethod
    def parse(cls, text: str) -> RateLimit:
        calls, sep, seconds = text.partition("/")
        if not sep:
            raise ValueError("expected CALLS/SECONDS, e.g. 100/60")
        return cls(calls=int(calls.strip()), seconds=float(seconds.strip()))

    def __str__(self) -> str:
        return f"{self.calls}/{self.seconds:g}"


def is_loopback_host(host: str) -> bool:
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# What a Secrets Manager secret's name may hold (an ARN's name part too: the name, "-", 6 more).
# Anything else names no secret as written: Secrets Manager reads a partial ARN's name after its
# last ":", so "...:secret:{prefix}A/x:{prefix}B/db" would pass A's folder rule and reach B's secret.
_SECRET_NAME = re.compile(r"[A-Za-z0-9/_+=.@-]{1,512}")


def is_secret_name_or_arn(secret_id: str) -> bool:
    """Whether ``secret_id`` is a secret's name, or an ARN whose name part is one."""
    return _SECRET_NAME.fullmatch(secret_name(secret_id)) is not None


def secret_name(secret_id: str) -> str:
    """The name in a Secrets Manager id: ``arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME`` or the name."""
    if secret_id.startswith("arn:"):
        parts = secret_id.split(":", 6)
        return parts[6] if len(parts) == 7 else ""
    return secret_id


def normalized_secret_name(secret_id: str) -> str:
    """A secret's name as a rotation event's id gives it: an ARN's name part without the
    ``-AbCdEf`` suffix Secrets Manager adds; a name as it is."""
    name = secret_name(secret_id)
    if secret_id.startswith("arn:") and len(name) > 7 and name[-7] == "-":
        return name[:-7]
    return name


def secret_names_of(secret_id: str) -> tuple[str, ...]:
    """Every ``secretName`` an import of this secret may have kept: the name part of the id as given,
    and for an ARN without its suffix (not stripped at import: ``db-backup`` is no ``db`` plus one)."""
    names = (secret_name(secret_id), normalized_secret_name(secret_id))
    return names if names[0] != names[1] else names[:1]


class Settings(BaseModel):
    """What every function reads."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    # Variables of ENVIRONMENT_VARIABLES this model leaves unread although it has their field.
    UNREAD: ClassVar[frozenset[str]] = frozenset()

    vercel_api_url: str = DEFAULT_VERCEL_API_URL
    token_secret_id: str = DEFAULT_TOKEN_SECRET_ID
    # A record's secretsArn must lie under it (unset: no secret), in its installation's folder or tagged.
    resource_secret_prefix: str | None = None
    aws_account_id: Annotated[str, Field(pattern=r"^[0-9]{12}$")] | None = None
    aws_region: str | None = None
    failed_records_queue_url: str | None = None
    sync_state_table: str | None = None
    max_concurrency: Annotated[int, Field(ge=1, le=256)] = 16
    rate_limit: RateLimit = RateLimit(calls=100, seconds=60)
    http_timeout_seconds: Annotated[float, Field(gt=0, le=300)] = 10.0
    token_cache_seconds: Annotated[int, Field(ge=0, le=3600)] = 300
    resource_secret_cache_seconds: Annotated[int, Field(ge=0, le=3600)] = 30
    # short-lived: each installation's token is requested with the integration's client credentials.
    token_mode: Literal["long-lived", "short-lived"] = "long-lived"  # noqa: S105 - a mode  # nosec B105
    integration_credentials_secret_id: str | None = None
    vercel_token_url: str | None = None  # unset: VERCEL_API_URL + DEFAULT_TOKEN_PATH
    token_installation_field: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")] = "installation_id"  # noqa: S105  # nosec B105
    token_refresh_margin_seconds: Annotated[int, Field(ge=0, le=1800)] = 60

    @field_validator("vercel_api_url", "vercel_token_url")
    @classmethod
    def _https_unless_loopback(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        host = parts.hostname or ""
        if parts.scheme not in {"https", "http"} or not host:
            raise ValueError("must be an absolute http(s) URL")
        if parts.scheme == "http" and not is_loopback_host(host):
            raise ValueError("plain http is allowed only for loopback hosts; use https")
        if parts.query or parts.fragment or parts.username or parts.password:
            raise ValueError("must not carry a query, fragment or credentials")
        return value.rstrip("/")

    @field_validator("token_secret_id")
    @classmethod
    def _has_installation_placeholder(cls, value: str) -> str:
        if INSTALLATION_PLACEHOLDER not in value:
            raise ValueError(f"must contain {INSTALLATION_PLACEHOLDER}")
        return value

    @model_validator(mode="after")
    def _short_lived_needs_credentials(self) -> Self:
        if self.short_lived_tokens and self.integration_credentials_secret_id is None:
            raise ValueError("TOKEN_MODE short-lived needs INTEGRATION_CREDENTIALS_SECRET_ID")
        return self

    @property
    def short_lived_tokens(self) -> bool:
        return self.token_mode == "short-lived"  # noqa: S105 - a mode  # nosec B105

    @property
    def token_url(self) -> str:
        return self.vercel_token_url or self.vercel_api_url + DEFAULT_TOKEN_PATH

    @field_validator(
        "vercel_token_url",
        "integration_credentials_secret_id",
        "failed_records_queue_url",
        "sync_state_table",
        "resource_secret_prefix",
        "aws_account_id",
        "aws_region",
        mode="before",
    )
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        return value or None

    @field_validator("resource_secret_prefix")
    @classmethod
    def _prefix_is_a_folder(cls, value: str | None) -> str | None:
        # Folders are "{prefix}X/": a prefix without "/" would put "partner/resourcesX/..." in X's folder.
        if value is not None and not value.endswith("/"):
            raise ValueError("must end with '/' (e.g. partner/resources/)")
        return value

    @field_validator("rate_limit", mode="before")
    @classmethod
    def _parse_rate_limit(cls, value: object) -> object:
        return RateLimit.parse(value) if isinstance(value, str) else value

    def token_secret_id_for(self, integration_configuration_id: str) -> str:
        # str.replace, not str.format: an id holding braces must not be interpreted.
        return self.token_secret_id.replace(INSTALLATION_PLACEHOLDER, integration_configuration_id)

    def is_resource_secret(self, secret_id: str) -> bool:
        """Whether a record may name ``secret_id`` (a name or an ARN): under the resource-secret prefix
        and not an installation token. Without a prefix, none."""
        if self.resource_secret_prefix is None or not is_secret_name_or_arn(secret_id):
            return False
        name = secret_name(secret_id)
        return name.startswith(self.resource_secret_prefix) and not self._is_token_secret(name)

    def secret_folder(self, secret_id: str) -> str | None:
        """The installation whose folder (``{prefix}X/``: the first segment after the prefix) holds the
        secret, if any. An installation id holding ``/`` has none (its secrets carry the tag)."""
        if self.resource_secret_prefix is None:
            return None
        name = secret_name(secret_id)
        if not name.startswith(self.resource_secret_prefix):
            return None
        folder, slash, rest = name[len(self.resource_secret_prefix) :].partition("/")
        return folder if folder and slash and rest else None

    def _is_token_secret(self, name: str) -> bool:
        """Whether ``name`` could be some installation's token secret (the template's shape)."""
        before, _, after = secret_name(self.token_secret_id).partition(INSTALLATION_PLACEHOLDER)
        if not name.startswith(before):
            return False
        rest = name[len(before) :]
        # A name read from an ARN ends with the 6-character suffix Secrets Manager adds ("-AbCdEf").
        return rest.endswith(after) or bool(re.fullmatch(rf".*{re.escape(after)}-[A-Za-z0-9]{{6}}", rest))

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Self:
        variables = {name: field for name, field in ENVIRONMENT_VARIABLES.items() if name not in cls.UNREAD}
        values = {name: value for name, value in environ.items() if name in variables}
        if not values.get("AWS_REGION") and environ.get("AWS_DEFAULT_REGION"):
            values["AWS_REGION"] = environ["AWS_DEFAULT_REGION"]  # what boto3 uses without AWS_REGION
        return model_from_env(cls, values, variables)


def model_from_env[M: BaseModel](model: type[M], environ: Mapping[str, str], variables: Mapping[str, str]) -> M:
    """``model`` from the environment variables of ``variables`` (name -> field; the later name of a
    field wins), or a ConfigurationError naming each wrong variable, never its value."""
    fields = model.model_fields
    values = {field: environ[name] for name, field in variables.items() if name in environ and field in fields}
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        field_to_env = {field: name for name, field in variables.items() if name in environ}
        problems = []
        for error in exc.errors(include_input=False, include_url=False):
            field = str(error["loc"][0]) if error["loc"] else "?"
            problems.append(f"{field_to_env.get(field, field)}: {error['msg']}")
        raise ConfigurationError("invalid configuration: " + "; ".join(problems)) from None


class SyncSettings(Settings):
    """The stream and queue functions'."""

    # A stream keeps a record 24 h: one still failing at this age is parked whole before it expires.
    stream_park_after_seconds: Annotated[int, Field(ge=60, le=86_400)] = 20 * 3600
    # How a removed resource reaches Vercel: imported with status uninstalled, or deleted.
    removal_mode: RemovalMode = "uninstalled"
    # The partner mapping (docs/configuration.md): a file, else an SSM parameter's text, else the default.
    partner_mapping_file: str = ""
    partner_mapping_parameter: str = ""


class RotationSettings(Settings):
    """Rotation sync's: secrets updates have a limit of their own at Vercel (VERCEL_RATE_LIMIT is the imports')."""

    UNREAD = frozenset({"VERCEL_RATE_LIMIT"})
    rate_limit: RateLimit = RateLimit(calls=240, seconds=60)
