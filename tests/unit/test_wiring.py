"""What each function's service is built with (``wiring.py``): the settings reach the tuning and
the adapters; rotation's rate limit has buckets of its own."""

from __future__ import annotations

from typing import Any

import pytest

from tests.fakes import FakeSecrets, FakeVercel
from vercel_sync.ports import NullObserver
from vercel_sync.settings import RotationSettings, SyncSettings
from vercel_sync.sync.service import Tuning
from vercel_sync.wiring import SecretsUpdateBuckets, build_rotation_service, build_sync_service, time_budget


def adapters(**overrides: Any) -> dict[str, Any]:
    """Every adapter of the sync handed in: nothing is built from AWS."""
    given: dict[str, Any] = {
        "vercel": FakeVercel(),
        "secrets": FakeSecrets(),
        "failed_records": None,
        "observer": NullObserver(),
        "state_store": None,
        "rate_limiter": None,
        "source_queue": None,
        "wrap_task": None,
    }
    return given | overrides


def test_the_sync_settings_reach_its_tuning() -> None:
    settings = SyncSettings(
        max_concurrency=7, rate_limit="50/20", stream_park_after_seconds=3_600, http_timeout_seconds=4
    )

    service = build_sync_service(settings, **adapters())

    assert service.tuning == Tuning(
        max_concurrency=7,
        time_budget=time_budget(settings),
        park_stream_records_after_seconds=3_600,
        call_interval_seconds=0.4,  # 20 s / 50 calls
    )


def test_the_vercel_client_gets_a_connection_per_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    from vercel_sync.adapters import vercel

    built: list[dict[str, Any]] = []

    def client(base_url: str, **options: Any) -> object:
        built.append(options)
        return object()

    monkeypatch.setattr(vercel, "VercelClient", client)
    given = adapters()
    del given["vercel"]

    build_sync_service(SyncSettings(max_concurrency=7, http_timeout_seconds=4), **given)

    assert built == [{"timeout_seconds": 4, "max_connections": 7}]


def test_an_adapter_the_sync_does_not_take_is_refused() -> None:
    with pytest.raises(TypeError, match="not an adapter of the sync: index"):
        build_sync_service(SyncSettings(), **adapters(index=None))


def test_rotation_takes_calls_from_buckets_of_its_own() -> None:
    service = build_rotation_service(RotationSettings())

    assert isinstance(service.adapters.rate_limiter, SecretsUpdateBuckets)


def test_an_adapter_rotation_does_not_take_is_refused() -> None:
    with pytest.raises(TypeError, match="not an adapter rotation is given: vercel"):
        build_rotation_service(RotationSettings(), vercel=object())


def test_the_removal_mode_reaches_the_sync_from_the_environment() -> None:
    default = build_sync_service(SyncSettings.from_env({}), **adapters())
    deleting = build_sync_service(SyncSettings.from_env({"REMOVAL_MODE": "delete"}), **adapters())

    assert default.tuning.removal_mode == "uninstalled"
    assert deleting.tuning.removal_mode == "delete"
