"""The hashed locks (`make lock`) and what installs from them (`make venv`, `make build`), and
`make audit`'s verdicts: never "no known vulnerabilities" for packages nobody checked."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from tools.audit import CLEAN, NOT_AUDITED, VULNERABLE, verdict

ROOT = Path(__file__).resolve().parents[2]
LAYER_LOCK = ROOT / "layers/sync_core/requirements.txt"
DEV_LOCK = ROOT / "requirements-dev.txt"
PIN = re.compile(r"^([A-Za-z0-9._-]+)==([^ \\]+) \\$")
HASH = re.compile(r"^    --hash=sha256:[0-9a-f]{64}( \\)?$")


def locked(path: Path) -> dict[str, tuple[str, frozenset[str]]]:
    """Package -> (version, hashes); fails on any line that is neither a pin, a hash, nor a comment."""
    found: dict[str, tuple[str, frozenset[str]]] = {}
    current: str | None = None
    for line in path.read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if pin := PIN.match(line):
            current = pin.group(1).lower()
            found[current] = (pin.group(2), frozenset())
            continue
        assert HASH.match(line), (path.name, line)  # no -e, URL, index or find-links line
        assert current is not None
        version, hashes = found[current]
        found[current] = (version, hashes | {line.split("sha256:")[1].rstrip(" \\")})
    return found


@pytest.mark.parametrize("lock", [LAYER_LOCK, DEV_LOCK], ids=["layer", "dev"])
def test_each_lock_pins_every_package_with_its_hashes(lock: Path) -> None:
    packages = locked(lock)
    assert packages
    for name, (version, hashes) in packages.items():
        assert hashes, name
        assert re.fullmatch(r"[0-9][0-9A-Za-z.+!-]*", version), name


@pytest.mark.parametrize(
    ("lock", "source"),
    [(LAYER_LOCK, ROOT / "layers/sync_core/requirements.in"), (DEV_LOCK, ROOT / "requirements-dev.in")],
    ids=["layer", "dev"],
)
def test_each_lock_satisfies_its_input(lock: Path, source: Path) -> None:
    """A .in edited without `make lock` shows here."""
    packages = locked(lock)
    lines = [line.split("#")[0].strip() for line in source.read_text().splitlines()]
    requirements = [Requirement(line) for line in lines if line and not line.startswith("-")]
    for line in lines:
        if line.startswith("-r "):
            included = (source.parent / line.split(maxsplit=1)[1]).read_text().splitlines()
            requirements += [Requirement(r.split("#")[0]) for r in included if r.split("#")[0].strip()]
    for requirement in requirements:
        name = re.sub(r"[._]", "-", requirement.name.lower())
        assert name in packages, requirement
        assert requirement.specifier.contains(packages[name][0], prereleases=True), (requirement, packages[name][0])


def test_the_dev_lock_has_the_layers_versions_and_hashes() -> None:
    """Tests run against exactly what the layer ships."""
    dev = locked(DEV_LOCK)
    for name, pinned in locked(LAYER_LOCK).items():
        assert dev.get(name) == pinned, name


def test_make_installs_from_the_locks_only() -> None:
    makefile = (ROOT / "Makefile").read_text()
    venv = makefile.split("$(VENV)/.installed:", 1)[1].split("\n\n", 1)[0]
    assert "pip install --quiet --require-hashes -r requirements-dev.txt" in venv
    installs = [line for line in venv.splitlines() if "pip install" in line]
    assert len(installs) == 2
    assert "--no-deps --no-build-isolation -e ." in installs[1]  # the one unhashed thing: this repository
    build = makefile.split("\nbuild:", 1)[1].split("\n\n", 1)[0]
    # SAM's second pass fetches arm64 wheels by name: the lock as constraint supplies their hashes.
    assert "PIP_REQUIRE_HASHES=1" in build
    assert 'PIP_CONSTRAINT="$(CURDIR)/layers/sync_core/requirements.txt"' in build
    assert 'PATH="$(CURDIR)/$(SAM_VENV)/bin:$$PATH"' in build


# -- make audit -----------------------------------------------------------------------------------


def report(*dependencies: dict[str, object]) -> str:
    return json.dumps({"dependencies": list(dependencies), "fixes": []})


def test_an_unreachable_service_is_never_no_known_vulnerabilities() -> None:
    # What pip-audit printed here: every package skipped, exit 0, "No known vulnerabilities found".
    skipped = [
        {"name": name, "skip_reason": f"Dependency not found on PyPI and could not be audited: {name} (1.0)"}
        for name in ("httpx", "pydantic")
    ]
    found = verdict("lock.txt", 0, report(*skipped), "No known vulnerabilities found\n")

    assert found.status == NOT_AUDITED
    assert "NOT AUDITED" in found.lines[0]
    assert "0 of 2" in found.lines[0]
    assert "no known vulnerabilities" not in " ".join(found.lines).lower()


def test_a_service_that_cannot_be_reached_at_all_is_not_audited() -> None:
    stderr = "Traceback ...\nrequests.exceptions.ConnectionError: Failed to resolve 'api.osv.dev'\n"
    found = verdict("lock.txt", 1, "", stderr)

    assert found.status == NOT_AUDITED
    assert "ConnectionError" in found.lines[0]


def test_some_packages_unchecked_is_not_audited_and_still_lists_what_was_found() -> None:
    found = verdict(
        "lock.txt",
        1,
        report(
            {"name": "a", "version": "1", "vulns": [{"id": "GHSA-x", "fix_versions": ["1.1"]}]},
            {"name": "b", "skip_reason": "timeout"},
        ),
        "",
    )

    assert found.status == NOT_AUDITED
    assert found.lines[0] == "lock.txt: a 1: GHSA-x (fixed in 1.1)"
    assert "1 of 2" in found.lines[1]


def test_vulnerabilities_and_a_clean_audit() -> None:
    vulnerable = verdict("lock.txt", 1, report({"name": "a", "version": "1", "vulns": [{"id": "PYSEC-1"}]}), "")
    assert (vulnerable.status, vulnerable.lines) == (VULNERABLE, ["lock.txt: a 1: PYSEC-1 (fixed in no fixed version)"])
    clean = verdict("lock.txt", 0, report({"name": "a", "version": "1", "vulns": []}), "")
    assert (clean.status, clean.lines) == (CLEAN, ["lock.txt: 1 packages checked: no known vulnerabilities"])
