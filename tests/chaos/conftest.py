"""The chaos suite's servers and its report.

moto server runs as a process of its own here (not the integration tests' in-process one): moto
keeps its state per process, so its own process keeps the two suites apart whatever order they
run in, and on this 2-core machine the AWS side then works beside the handlers rather than
sharing their interpreter. It runs with ``moto_fifo``'s fix, so a FIFO queue keeps a message
group's order after a redelivery as SQS does. Each scenario makes its own Vercel emulator
(``harness.ChaosWorld``).

Size: ``CHAOS_SCALE=ci`` (the default, what ``make test`` runs) or ``CHAOS_SCALE=full``. Each
scenario's figures are printed at the end of the run and written to ``.chaos/summary-<scale>.json``.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from local_aws.moto_server import LOCAL_AWS_ENVIRONMENT, aws_clients
from tests.chaos.harness import Figures
from tools.lambda_local import ROOT, load_handler

SUMMARY_DIR = ROOT / ".chaos"
_figures: list[dict[str, Any]] = []


def chaos_scale() -> str:
    scale = os.environ.get("CHAOS_SCALE", "ci").strip().lower() or "ci"
    if scale not in ("ci", "full"):
        raise pytest.UsageError(f"CHAOS_SCALE must be ci or full, not {scale!r}")
    return scale


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="session")
def chaos_aws_endpoint() -> Iterator[str]:
    """moto server in a child process on a free loopback port; stopped (by its pid) afterwards."""
    port = _free_port()
    process = subprocess.Popen(  # noqa: S603 - our own venv's moto server, fixed arguments
        [sys.executable, str(Path(__file__).with_name("moto_fifo.py")), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, **LOCAL_AWS_ENVIRONMENT},
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.post(f"{endpoint}/moto-api/reset", timeout=2).raise_for_status()
                break
            except httpx.TransportError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("moto server did not start") from None
                time.sleep(0.1)
        yield endpoint
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@pytest.fixture(scope="session")
def chaos_aws(chaos_aws_endpoint: str) -> dict[str, Any]:
    return aws_clients(chaos_aws_endpoint)


@pytest.fixture(scope="session")
def chaos_handlers() -> dict[str, ModuleType]:
    return {name: load_handler(name) for name in ("stream_sync", "queue_sync")}


@pytest.fixture
def record_figures() -> Callable[[Figures], None]:
    """Keeps a scenario's figures for the end-of-run summary (called before the assertions, so an
    expected failure still reports what it did)."""

    def record(figures: Figures) -> None:
        _figures.append(figures.as_dict())

    return record


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _figures:
        return
    scale = _figures[0]["scale"]
    SUMMARY_DIR.mkdir(exist_ok=True)
    path = SUMMARY_DIR / f"summary-{scale}.json"
    path.write_text(json.dumps(_figures, indent=2) + "\n")
    write = terminalreporter.write_line
    terminalreporter.section(f"chaos scenarios ({scale} size; also in {path.relative_to(ROOT)})")
    columns = [  # (heading, figure, width)
        ("scenario", "scenario", -16),
        ("res", "resources", 4),
        ("bad", "bad_resources", 3),
        ("changes", "changes", 7),
        ("sent", "deliveries", 6),
        ("invoc", "invocations", 6),
        ("redeliv", "redelivered", 7),
        ("back", "returned_to_source", 5),
        ("calls", "vercel_calls", 6),
        ("retries", "retries", 7),
        ("parked", "failed_records", 6),
        ("DLQ", "dead_lettered", 4),
        ("mismatch", "final_state_mismatches", 8),
        ("lost", "records_lost", 4),
        ("wall s", "wall_seconds", 7),
    ]

    def row(values: list[Any]) -> str:
        cells = zip(values, (width for _, _, width in columns), strict=True)
        return " ".join(f"{value:<{-width}}" if width < 0 else f"{value:>{width}}" for value, width in cells)

    write(row([heading for heading, _, _ in columns]))
    for f in _figures:
        write(row([f[name] for _, name, _ in columns]))
    for f in _figures:
        write(f"  {f['scenario']}: Vercel calls by outcome {f['vercel_calls_by_status']}")
        for event in f["events"]:
            write(f"    event: {event}")
        for example in f["mismatch_examples"][:5]:
            write(f"    mismatch: {example}")
        if f["notes"]:
            write(f"    note: {f['notes']}")
