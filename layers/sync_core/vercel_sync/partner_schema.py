"""The partner record: what one of the provider's resources looks like in their table or queue.

The one file to change for another partner schema: the field names (aliases), the status words and
how they map onto Vercel's, how ``version`` is read. docs/configuration.md, "The partner record".
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr, field_validator

from vercel_sync.paths import DOT_SEGMENTS, MAX_ID_LENGTH

# Vercel resource status -> the partner status words (case-insensitive) meaning it; Vercel's own
# words map to themselves.
_STATUS_WORDS: dict[str, tuple[str, ...]] = {
    "ready": ("active", "available", "running", "healthy"),  # usable
    "pending": ("creating", "provisioning", "starting", "updating"),  # being created or changed
    "onboarding": (),  # waiting for the customer to finish set-up
    "suspended": ("paused", "stopped", "disabled"),  # exists but not serving
    "resumed": (),  # back from suspended
    "uninstalled": ("deleted", "removed", "terminated"),
    "error": ("failed", "degraded"),
}
STATUS_TABLE: dict[str, str] = {word: status for status, words in _STATUS_WORDS.items() for word in (status, *words)}

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


# The record's field names as they appear in the partner's item (the aliases): what a failed-records
# message and the backfill keep of an item.
RECORD_FIELDS = frozenset(field.alias or name for name, field in PartnerRecord.model_fields.items())
