from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

# No test may reach a real AWS account: fake credentials, a fixed region, no tracing.
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "VercelResourceSyncTests")
os.environ.setdefault("POWERTOOLS_DEV", "false")

from tests.fakes import FakeFailedRecords, FakeSecrets, FakeVercel, make_sync_service

# The leak scan (tests/leak_scan.py): its hooks, registered with pytest as this conftest's own.
from tests.leak_scan import (
    pytest_configure,
    pytest_runtest_logreport,
    pytest_runtest_logstart,
    pytest_sessionfinish,
    pytest_terminal_summary,
    pytest_unconfigure,
)
from vercel_sync import wiring
from vercel_sync.sync.service import SyncService

__all__ = [
    "pytest_configure",
    "pytest_runtest_logreport",
    "pytest_runtest_logstart",
    "pytest_sessionfinish",
    "pytest_terminal_summary",
    "pytest_unconfigure",
]


class FakeMonotonic:
    """A monotonic clock that only sleeping moves: backoffs and 429 pauses take no real time."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def fake_vercel() -> FakeVercel:
    return FakeVercel()


@pytest.fixture
def fake_secrets() -> FakeSecrets:
    return FakeSecrets()


@pytest.fixture
def failed_records() -> FakeFailedRecords:
    return FakeFailedRecords()


@pytest.fixture
def service(
    fake_vercel: FakeVercel, fake_secrets: FakeSecrets, failed_records: FakeFailedRecords
) -> Iterator[SyncService]:
    """The real pipeline with fake adapters, installed as the handlers' service."""
    from vercel_sync.observability import PowertoolsObserver

    # One resource at a time, so calls happen in a known order; waits pass on a fake clock.
    clock = FakeMonotonic()
    sync_service = make_sync_service(
        vercel=fake_vercel,
        secrets=fake_secrets,
        failed_records=failed_records,
        observer=PowertoolsObserver(),
        max_concurrency=1,
        monotonic=clock,
        sleep=clock.sleep,
    )
    wiring.sync_service.set(sync_service)
    yield sync_service
    wiring.sync_service.set(None)


class LogCapture:
    """The lines the Powertools logger wrote (JSON, as formatted for CloudWatch)."""

    def __init__(self) -> None:
        import io

        self.buffer = io.StringIO()

    @property
    def lines(self) -> list[str]:
        return [line for line in self.buffer.getvalue().splitlines() if line]


@pytest.fixture
def captured_logs() -> Iterator[LogCapture]:
    import logging

    from vercel_sync.observability import logger

    capture = LogCapture()
    handlers = [h for h in logger._logger.handlers if isinstance(h, logging.StreamHandler)]
    # Swapped without setStream, which flushes the old stream: the logger may have been made
    # while another test captured stdout, whose stream is closed by now.
    previous = [h.stream for h in handlers]
    for handler in handlers:
        handler.stream = capture.buffer
    level = logger.log_level
    logger.setLevel("INFO")
    yield capture
    logger.setLevel(level)
    for handler, stream in zip(handlers, previous, strict=True):
        handler.stream = stream
