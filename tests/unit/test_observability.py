"""Tracing on only where it can work, and no X-Ray SDK loaded when it is off."""

from __future__ import annotations

import json
import logging
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


# What each SDK logger lets through after a handler is imported. Lambda sets the root's level from
# its log-level setting before it imports the handler; a user's code may set it after.
PIN_CHECK = """
import json, logging, sys
logging.basicConfig(level=logging.DEBUG, stream=sys.stderr)  # before the import, as Lambda's DEBUG would
logging.getLogger("botocore.parsers").setLevel(logging.DEBUG)  # a module's own level, set earlier
logging.getLogger("boto3").setLevel(logging.DEBUG)  # an SDK's own level, set earlier (boto3.set_stream_logger)
import app
import boto3, botocore.parsers, httpx, httpcore, urllib3  # the SDKs' own set-up runs after the pin
logging.basicConfig(level=logging.DEBUG, force=True)  # and after it
logging.getLogger().setLevel(logging.DEBUG)
names = ("botocore", "botocore.parsers", "botocore.endpoint", "boto3", "boto3.resources", "urllib3",
         "urllib3.connectionpool", "httpx", "httpcore", "httpcore.http11", "httpcore.connection")
print(json.dumps({name: logging.getLogger(name).isEnabledFor(logging.INFO) for name in names}))
"""


@pytest.mark.parametrize("handler", ["stream_sync", "queue_sync", "rotation_sync"])
def test_no_root_level_lets_an_sdk_logger_below_warning(handler: str) -> None:
    environ = {
        **os.environ,
        "PYTHONPATH": str(ROOT / "layers" / "sync_core"),
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_LOG_LEVEL": "DEBUG",  # Powertools' setting: the service's logger, not the SDKs'
        "AWS_LAMBDA_LOG_LEVEL": "DEBUG",  # Lambda's log-level control
    }
    result = subprocess.run(  # noqa: S603 - our own interpreter
        [sys.executable, "-c", PIN_CHECK], cwd=ROOT / "functions" / handler, env=environ, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    enabled = json.loads(result.stdout)
    assert enabled == dict.fromkeys(enabled, False)
    # Pinned, not silenced: warnings still reach the root's handlers.
    assert "botocore" in enabled


def test_a_pinned_sdk_logger_still_passes_warnings_to_the_root(caplog: pytest.LogCaptureFixture) -> None:
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.DEBUG)
    try:
        with caplog.at_level(logging.DEBUG):
            logging.getLogger("botocore.parsers").debug("Response body: %s", "a whole answer")
            logging.getLogger("botocore.parsers").warning("a warning")
            logging.getLogger("httpcore.http11").debug("receive_response_body.started")
    finally:
        root.setLevel(level)
    assert [(r.name, r.levelno) for r in caplog.records] == [("botocore.parsers", logging.WARNING)]
