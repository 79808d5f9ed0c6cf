"""Issue 6's "done when", end to end on the local stack: a backfill run by its command line on a
terminal (a pseudo-terminal here, so the progress bar is drawn), interrupted with Ctrl-C
(SIGINT) midway, resumed, while the queue function (the local runner) imports what arrives
into the Vercel emulator: every resource is imported exactly once.

200 items by default (about 20 s); ``OPS_BACKFILL_ITEMS=2000`` for the issue's full size.
The replay half of the "done when" (a replay after the cause is fixed empties the failed-records
queue) is ``test_operations_replay.py``.
"""

from __future__ import annotations

import json
import os
import pty
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import ModuleType

import pytest

from local_aws.moto_server import LOCAL_AWS_ENVIRONMENT
from tests.integration.conftest import LocalStack
from tests.integration.support import (
    add_installation,
    message_count,
    partner_item,
    put_items,
    puts_per_resource,
    queue_consumer,
)
from tools.lambda_local import ROOT
from vercel_sync import wiring

pytestmark = pytest.mark.integration

ITEMS = int(os.environ.get("OPS_BACKFILL_ITEMS", "200"))
INSTALLATIONS = [f"icfg_bf_{n}" for n in range(4)]
SENT = re.compile(r"([\d,]+)/~[\d,]+ scanned, ([\d,]+) sent")


class Terminal:
    """``python -m operations ...`` with a pseudo-terminal as its stdout and stderr."""

    def __init__(self, args: list[str], environment: dict[str, str]) -> None:
        master, slave = pty.openpty()
        self.process = subprocess.Popen(  # noqa: S603 - our own module, fixed arguments
            [sys.executable, "-m", "operations", *args],
            stdin=subprocess.DEVNULL,
            stdout=slave,
            stderr=slave,
            env=environment,
            cwd=ROOT,
        )
        os.close(slave)
        self._master = master
        self._chunks: list[bytes] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                chunk = os.read(self._master, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            self._chunks.append(chunk)

    @property
    def output(self) -> str:
        return b"".join(self._chunks).decode("utf-8", "replace")

    def sent(self) -> int:
        found = SENT.findall(self.output)
        return int(found[-1][1].replace(",", "")) if found else 0

    def wait(self, timeout: float) -> int:
        code = self.process.wait(timeout=timeout)
        self._reader.join(timeout=5)
        os.close(self._master)
        return code


@pytest.mark.timeout(120 + ITEMS // 5)
def test_backfill_on_a_terminal_interrupted_and_resumed_imports_each_resource_once(
    local_stack: LocalStack,
    handlers: dict[str, ModuleType],
    aws_endpoint: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The partner's resources, spread over four installations that Vercel (the emulator) knows.
    for installation in INSTALLATIONS:
        add_installation(local_stack, installation, f"vrcl_it_bf_{installation}_token")
    put_items(local_stack, [partner_item(n, INSTALLATIONS[n % 4], metadata={"n": n}) for n in range(ITEMS)])
    # Vercel's limit is not what this test is about: high enough on both sides that nothing is throttled.
    local_stack.emulator.set_rate_limit("100000/60")
    monkeypatch.setenv("VERCEL_RATE_LIMIT", "100000/60")
    wiring.sync_service.set(None)

    environment = {
        **os.environ,
        **LOCAL_AWS_ENVIRONMENT,
        "AWS_ENDPOINT_URL": aws_endpoint,
        "PYTHONPATH": f"{ROOT / 'layers/sync_core'}{os.pathsep}{ROOT}",
        "COLUMNS": "140",
        "PARTNER_TABLE_NAME": local_stack.resources.tables["PartnerTable"].name,
        "PARTNER_EVENTS_QUEUE_URL": local_stack.queue_url("PartnerEventsQueue"),
    }
    # Paced per installation, as a real run is (to Vercel's limit): here 10/s each, 40/s in all,
    # about what this one-process local stack (moto server, the emulator, the runner) imports.
    per_installation = 10
    checkpoints = tmp_path / "checkpoints"
    common = ["--checkpoint-dir", str(checkpoints)]

    with queue_consumer(local_stack, handlers):
        started = time.monotonic()
        first = Terminal(["backfill", "--segments", "4", "--rate", f"{per_installation}/1", *common], environment)
        deadline = time.monotonic() + 60
        while first.sent() < ITEMS * 0.35 and first.process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        first.process.send_signal(signal.SIGINT)  # Ctrl-C
        assert first.wait(timeout=30) == 130, first.output
        first_seconds = time.monotonic() - started
        sent_first = first.sent()
        assert 0 < sent_first < ITEMS, first.output
        assert "stopping at the next batch boundary" in first.output
        resume = re.search(
            r"resume with: python -m operations (backfill --resume \S+ --rate 10/1 --checkpoint-dir \S+)", first.output
        )
        assert resume is not None, first.output
        assert re.search(r"\[#+-+\]\s+\d+% ", first.output), "no progress bar drawn"

        started = time.monotonic()
        second = Terminal(resume.group(1).split(), environment)
        assert second.wait(timeout=60 + ITEMS / 10) == 0, second.output
        second_seconds = time.monotonic() - started
        assert "(resumed)" in second.output
        assert "pacing 10/1 per installation" in second.output
        assert re.search(r"\[#+\] 100% ", second.output), second.output
        assert f"{ITEMS:,}/~{ITEMS:,} scanned, {ITEMS:,} sent" in second.output

        # The queue function imports what the backfill sent.
        deadline = time.monotonic() + 60 + ITEMS / 20
        while time.monotonic() < deadline and (
            message_count(local_stack, "PartnerEventsQueue") or sum(puts_per_resource(local_stack).values()) < ITEMS
        ):
            time.sleep(0.2)
        drained_seconds = time.monotonic() - started

    expected = {(INSTALLATIONS[n % 4], f"res_{n:05}"): 1 for n in range(ITEMS)}
    assert puts_per_resource(local_stack, accepted=False) == expected  # each resource once: none resent
    (checkpoint,) = checkpoints.glob("*.json")
    segments = json.loads(checkpoint.read_text())["segments"]
    assert sum(s["sent"] for s in segments) == ITEMS
    assert all(s["done"] for s in segments)
    for run in (first, second):  # what the operator's terminal shows at the end (pytest -s prints it)
        screen = [line.rstrip("\r").rsplit("\r", 1)[-1].replace("\x1b[K", "") for line in run.output.split("\n")]
        print("\n" + "\n".join(screen).rstrip())
    print(  # the figures behind the README's numbers (shown with pytest -s)
        f"\nbackfill of {ITEMS} items, paced {per_installation}/s per installation x4: "
        f"first run {first_seconds:.1f} s (stopped at {sent_first} sent), resumed run {second_seconds:.1f} s, "
        f"all imported {drained_seconds:.1f} s after the resume started"
    )
