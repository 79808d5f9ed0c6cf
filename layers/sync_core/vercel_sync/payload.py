"""The Import Resource and Update Resource Secrets bodies, as Vercel publishes them, validated strictly
(no coercion, no unknown keys) so an invalid payload is named, field and all, before any call."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr, field_validator

Ownership = Literal["owned", "linked", "sandbox"]
ResourceStatus = Literal["ready", "pending", "onboarding", "suspended", "resumed", "uninstalled", "error"]
NotificationLevel = Literal["info", "warn", "error"]
BillingPlanType = Literal["prepayment", "subscription"]

RESOURCE_STATUSES: tuple[str, ...] = ResourceStatus.__args__  # type: ignore[attr-defined]

NonEmptyStr = Annotated[StrictStr, Field(min_length=1)]
MetadataScalar = StrictStr | StrictBool | StrictInt | StrictFloat
MetadataValue = MetadataScalar | list[MetadataScalar]

_URI_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:\S+$")


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    def to_body(self) -> dict[str, Any]:
        """The JSON body to send: absent optional fields are left out, not sent as null."""
        # ``model_dump(mode="json", exclude_none=True)``, without its wrapper's cost (half of it here).
        body: dict[str, Any] = self.__pydantic_serializer__.to_python(self, mode="json", exclude_none=True)
        return body


class BillingPlanDetail(_Body):
    label: StrictStr
    value: StrictStr | None = None


class BillingPlan(BaseModel):
    # The published schema allows extra keys on billingPlan.
    model_config = ConfigDict(extra="allow", strict=True, frozen=True)

    id: StrictStr
    type: BillingPlanType
    name: StrictStr
    description: StrictStr | None = None
    paymentMethodRequired: StrictBool | None = None
    cost: StrictStr | None = None
    details: list[BillingPlanDetail] | None = None
    highlightedDetails: list[BillingPlanDetail] | None = None
    effectiveDate: StrictStr | None = None


class Notification(_Body):
    level: NotificationLevel
    title: StrictStr
    message: StrictStr | None = None
    href: StrictStr | None = None

    @field_validator("href")
    @classmethod
    def _is_uri(cls, value: str | None) -> str | None:
        if value is not None and not _URI_SCHEME.match(value):
            raise ValueError("must be a URI with a scheme, e.g. https://example.com/page")
        return value


class EnvironmentOverrides(_Body):
    development: StrictStr | None = None
    preview: StrictStr | None = None
    production: StrictStr | None = None


class ResourceSecret(_Body):
    name: NonEmptyStr
    value: StrictStr
    prefix: StrictStr | None = None
    environmentOverrides: EnvironmentOverrides | None = None


class ImportResourcePayload(_Body):
    ownership: Ownership | None = None
    productId: NonEmptyStr
    name: NonEmptyStr
    status: ResourceStatus
    metadata: dict[StrictStr, MetadataValue] | None = None
    billingPlan: BillingPlan | None = None
    notification: Notification | None = None
    extras: dict[StrictStr, Any] | None = None
    secrets: list[ResourceSecret] | None = None

    def secret_values(self) -> list[str]:
        """Every secret value this payload carries (for scrubbing what we emit)."""
        return _secret_values(self.secrets or ())


class SecretsUpdatePayload(_Body):
    """``{secrets: [...], partial?: bool}``: the secrets of one resource, replaced (or, with
    ``partial``, only the named ones). Connected projects are not redeployed."""

    secrets: list[ResourceSecret]
    partial: StrictBool | None = None

    def secret_values(self) -> list[str]:
        return _secret_values(self.secrets)


def _secret_values(secrets: Iterable[ResourceSecret]) -> list[str]:
    values: list[str] = []
    for secret in secrets:
        values.append(secret.value)
        if secret.environmentOverrides is not None:
            overrides = secret.environmentOverrides
            values.extend(v for v in (overrides.development, overrides.preview, overrides.production) if v)
    return values
