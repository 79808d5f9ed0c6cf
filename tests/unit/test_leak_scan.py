"""The leak scan finds what it must: a registered value in a log record, in printed output (also
JSON-escaped), in a queue message; and a session that leaks fails. (That a clean session passes is
every run of the suite: its last lines are the scan's summary.)"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.leak_scan import LeakScanner

ROOT = Path(__file__).resolve().parents[2]
PROBE_SECRET = 'probe-pw-"quoted"-ünï-4f2a'


def test_a_registered_value_is_found_in_each_form() -> None:
    scanner = LeakScanner()
    scanner.register(PROBE_SECRET, label="the probe")
    scanner.register("short", label="too short to scan")

    record = logging.LogRecord("x", logging.INFO, __file__, 1, "value %s", ("nothing",), None)
    record.detail = PROBE_SECRET  # an ``extra`` field, as Powertools' structured logs carry
    scanner.scan_record(record)
    scanner.flush()
    scanner.scan(json.dumps({"v": PROBE_SECRET}), "stdout")  # JSON-escaped, ASCII only
    scanner.scan_message({"detail": PROBE_SECRET}, "a queue message")
    scanner.scan("an ordinary short word", "stdout")

    assert [(f.label, f.where.split(": ", 1)[1]) for f in scanner.findings] == [
        ("the probe", "log record of logger 'x'"),
        ("the probe", "stdout"),
        ("the probe", "a queue message"),
    ]
    assert "3 LEAK(S)" in scanner.summary()
    assert PROBE_SECRET not in scanner.summary()


def run_probe(tmp_path: Path, body: str) -> subprocess.CompletedProcess[str]:
    probe = tmp_path / "test_probe.py"
    probe.write_text(
        textwrap.dedent(
            f"""
            import json, logging
            from tests.leak_scan import register_secret
            SECRET = {PROBE_SECRET!r}
            register_secret(SECRET, label="the probe's value")
            """
        )
        + textwrap.dedent(body)
    )
    return subprocess.run(  # noqa: S603 - this interpreter, running pytest on a file it wrote
        [
            *(sys.executable, "-m", "pytest", "-q", "-p", "tests.leak_scan"),
            # Plugins the probe does not need, for a quick start.
            *("-p", "no:cacheprovider", "-p", "no:hypothesispytest"),
            str(probe),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'layers' / 'sync_core'}"},
        timeout=60,
        check=False,
    )


def test_a_session_that_leaks_fails_and_names_where_not_what(tmp_path: Path) -> None:
    result = run_probe(
        tmp_path,
        """
        def test_logs_it():
            logging.getLogger("probe").warning("token is %s", SECRET)

        def test_prints_it_escaped():
            print(json.dumps({"password": SECRET}))
        """,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "2 passed" in output  # the tests pass; the scan fails the session
    assert "LEAK of the probe's value in test_probe.py::test_logs_it: log record of logger 'probe'" in output
    assert "LEAK of the probe's value in test_probe.py::test_prints_it_escaped: captured stdout call" in output
    assert PROBE_SECRET not in output.replace("LEAK", "")


def test_a_registered_value_is_found_re_encoded() -> None:
    from urllib.parse import quote

    scanner = LeakScanner()
    secret = "probe/pw&ünï 4f2a"
    scanner.register(secret, label="the probe")
    for text in (quote(secret, safe=""), json.dumps(secret).replace("/", "\\/"), "&amp;".join(secret.split("&"))):
        scanner.scan(f"echo: {text}", "stdout")
    assert len(scanner.findings) == 3
