"""The partner record: one provider resource as the sync reads it, whatever the provider's items look
like. The partner mapping (``vercel_sync.mapping``, docs/configuration.md "The partner mapping")
makes it of an item; this model validates it. Not the place to describe another schema: the mapping is.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr, ValidationInfo, field_validator

from vercel_sync.mapping import default_mapping
from vercel_sync.mapping.values import quoted
from vercel_sync.paths import DOT_SEGMENTS, MAX_ID_LENGTH

# The default mapping's partner status word -> Vercel status; Vercel's own words map to themselves.
STATUS_TABLE: dict[str, str] = default_mapping().status_table

# Each id is one segment of the Vercel URL path, by that path's rules.
NonEmptyId = Annotated[StrictStr, Field(min_length=1, max_length=MAX_ID_LENGTH)]


class PartnerRecord(BaseModel):
    """One partner resource, read from a DynamoDB image or an SQS message body."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True, frozen=True)

    integration_configuration_id: NonEmptyId = Field(alias="integrationConfigurationId")
    resource_id: NonEmptyId = Field(alias="resourceId")
    product_id: Annotated[StrictStr, Field(min_length=1)] = Field(alias="productId")
    name: Annotated[StrictStr, Field(min_length=1)]
    status: StrictStr  # the Vercel status: validation reads the partner's word through the mapping's table
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
    def _known_status(cls, value: str, info: ValidationInfo) -> str:
        """The Vercel status of the partner's word, by the mapping's table (the validation context's)."""
        table: dict[str, str] = (info.context or {}).get("status_table", STATUS_TABLE)
        word = value.strip().lower()
        if word not in table:
            known = ", ".join(sorted(table))
            raise ValueError(f"unknown partner status {quoted(value)}; expected one of: {known}")
        return table[word]

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
        return "uninstalled" if self.deleted else self.status
