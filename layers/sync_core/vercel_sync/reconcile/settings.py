"""The reconcile run's settings: the sync's (token, removal mode, mapping, rate limit, state table) plus the
partner table and queue it reads and repairs through, and what the scheduled run may change."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Self

from vercel_sync.settings import ENVIRONMENT_VARIABLES, RateLimit, SyncSettings, model_from_env

RECONCILE_VARIABLES = {
    **ENVIRONMENT_VARIABLES,
    "PARTNER_TABLE_NAME": "partner_table_name",
    "PARTNER_EVENTS_QUEUE_URL": "partner_events_queue_url",
    "PARTNER_EVENTS_QUEUE_ARN": "partner_events_queue_arn",
    "RECONCILE_APPLY": "apply",
    "RECONCILE_REMOVE_ORPHANS": "remove_orphans",
}
# Vercel's limit on resource retrievals (reference: rate limits), apart from the imports'.
LIST_RATE_LIMIT = RateLimit(calls=1000, seconds=60)


class ReconcileSettings(SyncSettings):
    partner_table_name: str = ""
    partner_events_queue_url: str = ""
    partner_events_queue_arn: str = ""  # an existing partner queue, named by ARN (the URL is derived)
    apply: bool = False  # the scheduled run repairs (through the partner events queue)
    remove_orphans: bool = False  # the scheduled run removes orphans (by REMOVAL_MODE)

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Self:
        values = {name: value for name, value in environ.items() if name in RECONCILE_VARIABLES and value != ""}
        if not values.get("AWS_REGION") and environ.get("AWS_DEFAULT_REGION"):
            values["AWS_REGION"] = environ["AWS_DEFAULT_REGION"]
        return model_from_env(cls, values, RECONCILE_VARIABLES)
