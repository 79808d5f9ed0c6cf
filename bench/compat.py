"""The one place the benchmarks build a sync service with some adapters replaced.

After the pipeline rewrite, ``runtime.build_sync_service(settings, *, vercel=None, secrets=None,
failed_records=None, state_store=None, rate_limiter=None, observer=None)`` takes adapter
overrides. Until then only ``build_sync_service(settings)`` exists, so this builds the default
service and swaps the given adapters in. It passes on only the adapters given, so it works with
either signature; once the merged signature is the only one, its body can become the single
``return runtime.build_sync_service(settings, **given)`` line.
"""

from __future__ import annotations

import inspect
from typing import Any

from vercel_sync import runtime
from vercel_sync.pipeline import SyncService
from vercel_sync.settings import Settings


def build_service(
    settings: Settings,
    *,
    vercel: Any = None,
    secrets: Any = None,
    failed_records: Any = None,
    state_store: Any = None,
    rate_limiter: Any = None,
    observer: Any = None,
) -> SyncService:
    """The service ``settings`` describe, with each adapter given (not ``None``) in place of its default."""
    given = {
        name: value
        for name, value in (
            ("vercel", vercel),
            ("secrets", secrets),
            ("failed_records", failed_records),
            ("state_store", state_store),
            ("rate_limiter", rate_limiter),
            ("observer", observer),
        )
        if value is not None
    }
    accepted = inspect.signature(runtime.build_sync_service).parameters
    if all(name in accepted for name in given):
        return runtime.build_sync_service(settings, **given)
    # Before the merge: build the default, then replace what was given on the service itself.
    service = runtime.build_sync_service(settings)
    for name, value in given.items():
        if not hasattr(service, name):
            raise TypeError(f"this SyncService has no {name} adapter to replace")
        setattr(service, name, value)
    return service
