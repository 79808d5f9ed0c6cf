"""The test suite's leak scan: no token or secret value a test creates may appear in anything the
code under test emits.

Every fixture that makes a token or a secret value registers it (:func:`register_secret`); the
plugin in ``tests/conftest.py`` then scans, for the whole session:

- every log record any Python logger emits (the Powertools JSON lines of the handlers, the
  emulator's, botocore's, ...): its message and all its fields (``extra`` included), whatever
  stream the handler writes to;
- every test's captured stdout, stderr and log output (the metrics Powertools prints, the local
  runner's lines, the emulator's and moto's output);
- every failed-records message: those the fakes receive, those the tests drain from moto's queues
  (``local_aws.provision.drain_json_messages``), and, at the end of the session, whatever is left in
  any queue and any table of moto server.

The hooks below are this module's pytest plugin: ``tests/conftest.py`` takes them as its own
(``pytest -p tests.leak_scan`` loads them elsewhere, as the scan's own test does).

A value is found in its own form, JSON-escaped (as a JSON document would carry it), or as a server
echoing it might re-encode it (JSON with escaped slashes or uppercase hex escapes, percent- and
form-encoded, HTML-escaped). The scan reports where (test, kind of output) and which fixture's
value (its label), never the value. A finding fails the session. Values shorter than 8 characters
are not scanned (they would match ordinary text); every fixture's values are longer.
"""

from __future__ import annotations

import html
import json
import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, quote_plus

import pytest

MIN_SCANNED_LENGTH = 8
ENCODED_FORMS: tuple[Callable[[str], str], ...] = (
    lambda value: json.dumps(value)[1:-1],
    lambda value: json.dumps(value, ensure_ascii=False)[1:-1],
    lambda value: json.dumps(value)[1:-1].replace("/", "\\/"),
    lambda value: re.sub(r"\\u([0-9a-f]{4})", lambda match: "\\u" + match.group(1).upper(), json.dumps(value)[1:-1]),
    lambda value: quote(value, safe=""),
    lambda value: quote_plus(value, safe=""),
    html.escape,
)


@dataclass
class Finding:
    where: str
    label: str


@dataclass
class LeakScanner:
    # form of a value -> the label of the value it belongs to
    forms: dict[str, str] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    texts: int = 0
    characters: int = 0
    log_records: int = 0
    messages: int = 0
    current_test: str = "(collection)"

    def register(self, *values: str, label: str = "a secret value") -> None:
        for value in values:
            if not isinstance(value, str) or len(value) < MIN_SCANNED_LENGTH:
                continue
            for form in (value, *(encode(value) for encode in ENCODED_FORMS)):
                self.forms.setdefault(form, label)

    # Log records wait here until their test's report, so a value registered later in the test
    # (e.g. one a fixture's object makes as it starts) is still looked for in them.
    pending: list[tuple[str, str, str]] = field(default_factory=list)

    def scan(self, text: str, what: str, test: str | None = None) -> None:
        if not text:
            return
        self.texts += 1
        self.characters += len(text)
        for form, label in self.forms.items():
            if form in text:
                self.findings.append(Finding(f"{test or self.current_test}: {what}", label))

    def scan_record(self, record: logging.LogRecord) -> None:
        """A log record: its message and every field a formatter could write (extras included)."""
        self.log_records += 1
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a record whose args do not fit its message: scan the parts
            message = f"{record.msg!r} {record.args!r}"
        fields = json.dumps(record.__dict__, default=repr, ensure_ascii=False)
        self.pending.append((self.current_test, message + "\n" + fields, f"log record of logger {record.name!r}"))

    def flush(self) -> None:
        """Scan the log records kept so far."""
        pending, self.pending = self.pending, []
        for test, text, what in pending:
            self.scan(text, what, test)

    def scan_message(self, body: str | dict[str, Any], what: str) -> None:
        self.messages += 1
        self.scan(body if isinstance(body, str) else json.dumps(body, ensure_ascii=False), what)

    def summary(self) -> str:
        self.flush()
        return (
            f"leak scan: {len(set(self.forms.values()))} sources of secret values, "
            f"{len(self.forms)} forms; scanned {self.log_records} log records, {self.messages} messages, "
            f"{self.texts} texts ({self.characters / 1e6:.1f} MB): "
            + (f"{len(self.findings)} LEAK(S)" if self.findings else "no token or secret value found")
        )


SCANNER = LeakScanner()


def register_secret(*values: str, label: str = "a secret value") -> None:
    """Make ``values`` part of the session's leak scan."""
    SCANNER.register(*values, label=label)


def scan_messages(bodies: Iterable[str | dict[str, Any]], what: str) -> None:
    for body in bodies:
        SCANNER.scan_message(body, what)


_original_call_handlers = logging.Logger.callHandlers


def _call_handlers_scanned(self: logging.Logger, record: logging.LogRecord) -> None:
    SCANNER.scan_record(record)
    _original_call_handlers(self, record)


def install_log_scan() -> None:
    """Every record a logger hands to its handlers is scanned first."""
    logging.Logger.callHandlers = _call_handlers_scanned  # type: ignore[method-assign]


def uninstall_log_scan() -> None:
    logging.Logger.callHandlers = _original_call_handlers  # type: ignore[method-assign]


# -- the pytest plugin ------------------------------------------------------------------------------


def pytest_configure(config: pytest.Config) -> None:
    install_log_scan()


def pytest_unconfigure(config: pytest.Config) -> None:
    uninstall_log_scan()


def pytest_runtest_logstart(nodeid: str, location: tuple[str, int | None, str]) -> None:
    SCANNER.current_test = nodeid


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    SCANNER.flush()
    # Each phase's report repeats the earlier phases' sections: scan only its own.
    for title, content in report.sections:
        if title.endswith(report.when or ""):
            SCANNER.scan(content, title.lower())


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    SCANNER.flush()
    if SCANNER.findings and exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any) -> None:
    terminalreporter.write_line(SCANNER.summary())
    for finding in SCANNER.findings[:50]:
        terminalreporter.write_line(f"  LEAK of {finding.label} in {finding.where}", red=True)
