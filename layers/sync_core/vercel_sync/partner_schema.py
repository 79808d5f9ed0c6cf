"""The partner record: what one of the provider's resources looks like in their table or queue.

This is the one file to change to adapt the product to another partner schema: the field
names (aliases below), the partner status words and how they map onto Vercel's, and how a
record's ``version`` is read. Everything else works from :class:`PartnerRecord`.

Fields (DESIGN.md, "The partner record"):
- required: ``integrationConfigurationId``, ``resourceId``, ``productId``, ``name``, ``status``;
- passed through as Vercel defines them: ``ownership``, ``metadata``, ``billingPlan``,
  ``notification``, ``extras``;
- ``secretsArn``: a Secrets Manager secret whose JSON object becomes the payload's ``secrets``;
  ``secretsPrefix``: the ``prefix`` given to each of them;
- ``version``: a number or an ISO-8601 time; ``deleted: true`` marks a removed resource.
Other attributes of the item are ignored.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr, field_validator

from vercel_sync.paths import DOT_SEGMENTS, MAX_ID_LENGTH

# Partner status word (case-insensitive) -> Vercel resource status. Vercel's own words map to
# themselves, so a partner already using them needs no entry.
STATUS_TABLE: dict[str, str] = {
    # ready: usable
    "ready": "ready",
    "active": "ready",
    "available": "ready",
    "running": "ready",
    "healthy": "ready",
    # pending: being created or changed
    "pending": "pending",
    "creating": "pending",
    "provisioning": "pending",
    "starting": "pending",
    "updating": "pending",
    # onboarding: waiting for the customer to finish set-up
    "onboarding": "onboarding",
    # suspended: exists but not serving (billing, abuse, paused by the user)
    "suspended": "suspended",
    "paused": "suspended",
    "stopped": "suspended",
    "disabled": "suspended",
    # resumed: back from suspended
    "resumed": "resumed",
    # uninstalled: gone
    "uninstalled": "uninstalled",
    "deleted": "uninstalled",
    "removed": "uninstalled",
    "terminated": "uninstalled",
    # error: broken
    "error": "error",
    "failed": "error",
    "degraded": "error",
}

# Each id is one segment of the Vercel URL path, by that path's rules.
NonEmptyId = Annotated[StrictStr, Field(min_length=1, max_length=MAX_ID_LENGTH)]


class PartnerRecord(BaseModel):
    """One partner resource, read from a DynamoDB image or an SQS message body."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True, frozen=True)

    integration_configuration_id: NonEmptyId = Field(alias="integrationConfigurationId")
    resource_id: NonEmptyId = Field(alias="resourceId")
    product_id: Annotated[StrictStr, Field(min_length=1)] = Field(alias="productId")
    name: Annotated[StrictStr, Field(min_length=1)]
    status: StrictStr
    ownership: Any = None
    metadata: Any = None
    billing_plan: Any = Field(default=None, alias="billingPlan")
    notification: Any = None
    extras: Any = None
    secrets_arn: StrictStr | None = Field(default=None, alias="secretsArn", min_length=1)
    secrets_prefix: StrictStr | None = Field(default=None, alias="secretsPrefix")
    version: Decimal | datetime | None = None
    deleted: StrictBool = False

    @field_validator("integration_configuration_id", "resource_id")
    @classmethod
    def _not_a_dot_segment(cls, value: str) -> str:
        if value in DOT_SEGMENTS:
            raise ValueError("must not be '.' or '..'")
        return value

    @field_validator("status")
    @classmethod
    def _known_status(cls, value: str) -> str:
        word = value.strip().lower()
        if word not in STATUS_TABLE:
            known = ", ".join(sorted(STATUS_TABLE))
            raise ValueError(f"unknown partner status {value!r}; expected one of: {known}")
        return word

    @field_validator("version", mode="before")
    @classmethod
    def _parse_version(cls, value: Any) -> Decimal | datetime | None:
        if value is None:
            return None
        if isinstance(value, bool):
            raise ValueError("must be a number or an ISO-8601 time, not a boolean")
        if isinstance(value, int | float | Decimal):
            number = Decimal(str(value)) if isinstance(value, float) else Decimal(value)
            if not number.is_finite():
                raise ValueError("must be a finite number")
            return number
        if isinstance(value, str):
            try:
                moment = datetime.fromisoformat(value)
            except ValueError:
                raise ValueError("must be a number or an ISO-8601 time") from None
            # A time without a zone is taken as UTC, so versions always compare.
            return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
        raise ValueError("must be a number or an ISO-8601 time")

    @property
    def vercel_status(self) -> str:
        return "uninstalled" if self.deleted else STATUS_TABLE[self.status]
