"""Every command the docs print works as printed, and every link in them leads somewhere.

The docs are the README, SECURITY.md, ``docs/*.md`` and the corpus' README. Commands are read from
their code (fenced blocks and inline spans), where a reader copies them from:

- each ``python -m <module> [<subcommand>]`` answers ``--help``, run by the project's ``.venv``
  python from the repository's root with no ``PYTHONPATH``: what a reader gets in the activated
  ``.venv`` (the project installs as a package);
- each console script printed as a command (``vercel-emulator``) answers ``--help`` from ``.venv/bin``;
- each ``make <target>`` is a rule of the Makefile and ``make -n <target>`` succeeds (nothing runs).
"""

from __future__ import annotations

import os
import re
import subprocess
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = sorted([ROOT / "README.md", ROOT / "SECURITY.md", ROOT / "tests/corpus/README.md", *ROOT.glob("docs/*.md")])
VENV_BIN = ROOT / ".venv" / "bin"
CONSOLE_SCRIPTS = ("vercel-emulator",)

FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)
INLINE = re.compile(r"`([^`\n]+)`")
PYTHON_M = re.compile(r"(?:^|[\s;&|(])(?:\.venv/bin/)?python3? -m ([A-Za-z_][\w.]*)(?: +([a-z][a-z0-9-]*)(?=\s|$))?")
MAKE = re.compile(r"(?:^|[\s;&|(])make ([a-z][\w-]*(?:\|[a-z][\w-]*)*)")
SCRIPT = re.compile(r"(?:^|[\s;&|(])(?:\.venv/bin/)?(" + "|".join(map(re.escape, CONSOLE_SCRIPTS)) + r")(?=\s|$)")
LINK = re.compile(r"\]\(([^)\s]+)\)")


def code_of(text: str) -> list[str]:
    """The code a page prints: its fenced blocks, and the inline spans of the prose around them."""
    blocks = FENCE.findall(text)
    prose = FENCE.sub("", text)
    return [*blocks, *INLINE.findall(prose)]


@cache
def printed() -> tuple[set[tuple[str, ...]], set[str], set[str]]:
    modules: set[tuple[str, ...]] = set()
    targets: set[str] = set()
    scripts: set[str] = set()
    for page in DOCS:
        for code in code_of(page.read_text()):
            for module, subcommand in PYTHON_M.findall(code):
                modules.add((module, subcommand) if subcommand else (module,))
            for alternatives in MAKE.findall(code):
                targets.update(alternatives.split("|"))
            scripts.update(SCRIPT.findall(code))
    return modules, targets, scripts


def environment() -> dict[str, str]:
    """The reader's shell: no PYTHONPATH of ours, the .venv first on PATH (as activating it does)."""
    variables = {name: value for name, value in os.environ.items() if name != "PYTHONPATH"}
    variables["PATH"] = f"{VENV_BIN}{os.pathsep}{variables.get('PATH', '')}"
    variables["VIRTUAL_ENV"] = str(VENV_BIN.parent)
    return variables


def run(command: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - the project's own interpreter, scripts and make
        command, cwd=ROOT, env=environment(), capture_output=True, text=True, timeout=120, check=False
    )


def test_the_docs_print_the_commands_this_test_checks() -> None:
    """The extraction finds what the docs are known to print (a broken pattern would check nothing)."""
    modules, targets, scripts = printed()
    assert {("operations", "backfill"), ("operations", "replay"), ("operations", "replay-stream-failures")} <= modules
    assert ("tools.rotate_token",) in modules
    assert {"demo", "test", "build", "bench", "backfill", "replay"} <= targets
    assert scripts == {"vercel-emulator"}


@pytest.mark.parametrize("command", sorted(printed()[0]), ids=lambda command: " ".join(command))
def test_each_python_m_command_answers_help_from_the_venv(command: tuple[str, ...]) -> None:
    python = VENV_BIN / "python"
    assert python.exists(), f"no {python}: run `make venv` first"
    done = run([str(python), "-m", *command, "--help"])
    assert done.returncode == 0, (
        f"python -m {' '.join(command)} --help exited {done.returncode}:\n{done.stderr[-2000:]}"
    )
    assert "usage:" in done.stdout


@pytest.mark.parametrize("script", sorted(printed()[2]))
def test_each_console_script_answers_help(script: str) -> None:
    done = run([str(VENV_BIN / script), "--help"])
    assert done.returncode == 0, done.stderr[-2000:]
    assert "usage:" in done.stdout


@cache
def makefile_rules() -> set[str]:
    rules = re.findall(r"^([a-z][\w-]*(?: +[a-z][\w-]*)*):(?!=)", (ROOT / "Makefile").read_text(), flags=re.MULTILINE)
    return {name for rule in rules for name in rule.split()}


@pytest.mark.parametrize("target", sorted(printed()[1]))
def test_each_make_target_exists(target: str) -> None:
    assert target in makefile_rules(), f"`make {target}` is printed in the docs but is no rule of the Makefile"
    done = run(["make", "-n", target])
    assert done.returncode == 0, done.stderr[-2000:]


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped (but ``-`` and ``_``), spaces to ``-``."""
    text = re.sub(r"[`*]", "", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


@cache
def anchors(page: Path) -> set[str]:
    found: set[str] = set()
    for heading in re.findall(r"^#{1,6} +(.+)$", FENCE.sub("", page.read_text()), flags=re.MULTILINE):
        base, number = slug(heading), 0
        name = base
        while name in found:
            number += 1
            name = f"{base}-{number}"
        found.add(name)
    return found


@pytest.mark.parametrize("page", DOCS, ids=lambda page: str(page.relative_to(ROOT)))
def test_each_link_leads_to_a_file_and_heading_of_the_repository(page: Path) -> None:
    broken = []
    for target in LINK.findall(FENCE.sub("", page.read_text())):
        if re.match(r"[a-z]+:", target):
            continue  # a web address
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        if not linked.exists():
            broken.append(f"{target}: no such file")
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
            broken.append(f"{target}: no such heading")
    assert not broken, broken


def test_the_readme_links_every_docs_page() -> None:
    readme = (ROOT / "README.md").read_text()
    for page in ROOT.glob("docs/*.md"):
        assert f"](docs/{page.name})" in readme, page.name
