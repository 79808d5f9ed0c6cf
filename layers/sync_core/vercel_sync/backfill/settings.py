"""BackfillFunction's settings, from its environment (template.yaml sets them)."""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from vercel_sync.backfill.checkpoints import BackfillError
from vercel_sync.settings import RateLimit

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
        values = {field: environ[name] for name, field in ENVIRONMENT_VARIABLES.items() if environ.get(name)}
        if not {"table_name", "state_table"} <= values.keys() or not {"queue_url", "queue_arn"} & values.keys():
            raise BackfillError(
                "set PARTNER_TABLE_NAME, PARTNER_EVENTS_QUEUE_URL (or _ARN) and SYNC_STATE_TABLE for the backfill"
            )
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            fields = {str(error["loc"][0]) for error in exc.errors() if error["loc"]}
            names = [name for name, field in ENVIRONMENT_VARIABLES.items() if field in fields and name in environ]
            raise BackfillError(f"invalid backfill settings: {', '.join(names)}") from None
