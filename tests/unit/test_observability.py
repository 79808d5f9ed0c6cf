"""Tracing on only where it can work, and no X-Ray SDK loaded when it is off."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from vercel_sync.observability import tracing_enabled

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, False),
        ({"LAMBDA_TASK_ROOT": "/var/task"}, True),
        ({"LAMBDA_TASK_ROOT": "/var/task", "POWERTOOLS_TRACE_DISABLED": "true"}, False),
        ({"LAMBDA_TASK_ROOT": "/var/task", "POWERTOOLS_TRACE_DISABLED": "false"}, True),
        ({"LAMBDA_TASK_ROOT": "/var/task", "AWS_SAM_LOCAL": "true"}, False),
    ],
)
def test_tracing_enabled(environ: dict[str, str], expected: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("LAMBDA_TASK_ROOT", "POWERTOOLS_TRACE_DISABLED", "AWS_SAM_LOCAL"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    assert tracing_enabled() is expected


@pytest.mark.parametrize("handler", ["stream_sync", "queue_sync", "rotation_sync"])
def test_importing_a_handler_with_tracing_off_loads_no_xray_httpx_or_aws_client(handler: str) -> None:
    code = (
        "import sys, app; "
        "loaded = sorted(m for m in ('aws_xray_sdk', 'httpx', 'boto3', 'botocore.client', "
        "'aws_lambda_powertools.utilities.parser', 'aws_lambda_powertools.utilities.parameters') "
        "if m in sys.modules); "
        "print(','.join(loaded))"
    )
    environ = {
        **os.environ,
        "PYTHONPATH": str(ROOT / "layers" / "sync_core"),
        "LAMBDA_TASK_ROOT": str(ROOT / "functions" / handler),
        "POWERTOOLS_TRACE_DISABLED": "true",
    }
    result = subprocess.run(  # noqa: S603 - our own interpreter
        [sys.executable, "-c", code], cwd=ROOT / "functions" / handler, env=environ, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    # Adapters (httpx, boto3, Powertools Parameters) load when the service is first built, not at
    # import; Powertools' parser models (about 0.1 s) never: Powertools batch loads them only if
    # pydantic was imported before it (see functions/stream_sync/app.py).
    assert result.stdout.strip() == ""
