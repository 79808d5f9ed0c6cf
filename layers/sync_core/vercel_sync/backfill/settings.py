"""BackfillFunction's settings, from its environment (template.yaml sets them)."""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, field_validator

from vercel_sync.backfill.checkpoints import BackfillError
from vercel_sync.errors import ConfigurationError
from vercel_sync.settings import RateLimit, model_from_env

# Environment variable -> settings field; the first of BACKFILL_RATE and VERCEL_RATE_LIMIT set is the rate.
ENVIRONMENT_VARIABLES = {
    "PARTNER_TABLE_NAME": "table_name",
    "PARTNER_EVENTS_QUEUE_URL": "queue_url",
    "PARTNER_EVENTS_QUEUE_ARN": "queue_arn",
    "SYNC_STATE_TABLE": "state_table",
    "VERCEL_RATE_LIMIT": "rate",
    "BACKFILL_RATE": "rate",
    "BACKFILL_MAX_INVOCATIONS": "max_invocations",
    "BACKFILL_STOP_MARGIN_SECONDS": "stop_margin_seconds",
    "PARTNER_MAPPING_FILE": "partner_mapping_file",
    "PARTNER_MAPPING_PARAMETER": "partner_mapping_parameter",
}


def parse_rate(text: str) -> RateLimit | None:
    """``CALLS/SECONDS`` per installation, or ``off`` (no pacing)."""
    if text.strip().lower() in {"off", "none", "0"}:
        return None
    try:
        return RateLimit.parse(text)
    except ValueError:
        raise BackfillError(f"rate must be CALLS/SECONDS (e.g. 100/60) or off, not {text!r}") from None


class BackfillSettings(BaseModel):
    model_config = ConfigDict(frozen=True)

    table_name: str
    # The queue's URL, or its ARN (the wiring asks SQS for the URL).
    queue_url: str | None = None
    queue_arn: str | None = None
    state_table: str
    rate: RateLimit | None = RateLimit(calls=100, seconds=60)  # per installation; None: no pacing
    max_invocations: int = 200
    stop_margin_seconds: float = 60.0
    partner_mapping_file: str = ""  # the partner mapping, as the sync functions read it
    partner_mapping_parameter: str = ""

    @field_validator("rate", mode="before")
    @classmethod
    def _parse_rate(cls, value: object) -> object:
        return parse_rate(value) if isinstance(value, str) else value

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> BackfillSettings:
        given = {name: value for name, value in environ.items() if name in ENVIRONMENT_VARIABLES and value}
        values = {ENVIRONMENT_VARIABLES[name] for name in given}
        if not {"table_name", "state_table"} <= values or not {"queue_url", "queue_arn"} & values:
            raise BackfillError(
                "set PARTNER_TABLE_NAME, PARTNER_EVENTS_QUEUE_URL (or _ARN) and SYNC_STATE_TABLE for the backfill"
            )
        try:
            return model_from_env(cls, given, ENVIRONMENT_VARIABLES)
        except ConfigurationError as exc:
            raise BackfillError(f"invalid backfill settings: {exc}") from None
