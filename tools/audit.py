"""`make audit`: pip-audit over the hashed locks, saying plainly when nothing could be checked.

    python tools/audit.py layers/sync_core/requirements.txt requirements-dev.txt [pip-audit options]

Each lock is audited as written (``--require-hashes --disable-pip``: nothing is installed or
resolved). pip-audit itself prints "No known vulnerabilities found" and exits 0 when its
vulnerability service answered for no package at all (each is then only a skip reason, e.g. "not
found on PyPI" where PyPI's per-version JSON is not served, or a connection error): this reads its
JSON report instead and passes only when every package was checked.

Exit status: 0 every package of every lock checked, none vulnerable; 1 known vulnerabilities
(listed); 2 not audited (the service unreachable, or some packages unchecked: named).
Extra options go to pip-audit, e.g. ``--vulnerability-service osv``.
"""

from __future__ import annotations

import json
import subprocess  # to run pip-audit with our own interpreter  # nosec B404
import sys
from dataclasses import dataclass

CLEAN, VULNERABLE, NOT_AUDITED = 0, 1, 2


@dataclass(frozen=True)
class Verdict:
    status: int
    lines: list[str]


def verdict(lock: str, returncode: int, stdout: str, stderr: str) -> Verdict:
    """What one pip-audit run over ``lock`` (``-f json``) established."""
    try:
        report = json.loads(stdout)
        dependencies = report["dependencies"]
    except (ValueError, KeyError, TypeError):
        last = next((line for line in reversed(stderr.strip().splitlines()) if line.strip()), "no output")
        return Verdict(
            NOT_AUDITED, [f"{lock}: NOT AUDITED: pip-audit failed (exit {returncode}): {last.strip()[:300]}"]
        )
    skipped = [d for d in dependencies if d.get("skip_reason")]
    checked = [d for d in dependencies if not d.get("skip_reason")]
    lines: list[str] = []
    vulnerable = [d for d in checked if d.get("vulns")]
    for dependency in vulnerable:
        for vulnerability in dependency["vulns"]:
            fixed = ", ".join(vulnerability.get("fix_versions") or []) or "no fixed version"
            lines.append(
                f"{lock}: {dependency['name']} {dependency['version']}: {vulnerability['id']} (fixed in {fixed})"
            )
    if skipped:
        lines.append(
            f"{lock}: NOT AUDITED: the vulnerability service answered for {len(checked)} of {len(dependencies)} "
            f"packages; unchecked: {', '.join(d['name'] for d in skipped[:10])}"
            + (" ..." if len(skipped) > 10 else "")
            + f" (first reason: {skipped[0]['skip_reason']}). Run make audit where the service is reachable."
        )
        return Verdict(NOT_AUDITED, lines)
    if vulnerable:
        return Verdict(VULNERABLE, lines)
    if returncode != 0:
        return Verdict(NOT_AUDITED, [*lines, f"{lock}: NOT AUDITED: pip-audit exited {returncode} without findings"])
    return Verdict(CLEAN, [f"{lock}: {len(checked)} packages checked: no known vulnerabilities"])


def audit(lock: str, extra: list[str]) -> Verdict:
    command = [sys.executable, "-m", "pip_audit", "--require-hashes", "--disable-pip", "-r", lock]
    command += ["--format", "json", "--progress-spinner", "off", *extra]
    # Our interpreter, a fixed module, the lock paths make passes.
    result = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603  # nosec B603
    return verdict(lock, result.returncode, result.stdout, result.stderr)


def main(argv: list[str]) -> int:
    locks = [a for a in argv if not a.startswith("-") and a.endswith(".txt")]
    extra = [a for a in argv if a not in locks]
    if not locks:
        print("usage: audit.py LOCK.txt [LOCK.txt ...] [pip-audit options]", file=sys.stderr)
        return NOT_AUDITED
    verdicts = [audit(lock, extra) for lock in locks]
    for found in verdicts:
        for line in found.lines:
            print(line, file=sys.stderr if found.status else sys.stdout)
    return max(found.status for found in verdicts)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
