"""The repository installs as a package: from the venv, with no PYTHONPATH, the commands the docs
print (`python -m operations ...`) run, and every package imports, from any directory."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest

from operations.__main__ import build_parser

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ["vercel_sync", "operations", "tools", "local_runner", "local_aws", "demo", "bench", "vercel_emulator"]


def _subcommands() -> list[str]:
    actions = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    return sorted(actions[0].choices)


def _clean_environment(home: Path) -> dict[str, str]:
    """An activated venv and nothing else: no PYTHONPATH, no variables the tests set."""
    venv_bin = str(Path(sys.executable).parent)
    return {
        "PATH": os.pathsep.join([venv_bin, "/usr/bin", "/bin"]),
        "VIRTUAL_ENV": str(Path(venv_bin).parent),
        "HOME": str(home),
        "LANG": "C.UTF-8",
    }


def _run(arguments: list[str], cwd: Path, home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - the venv's own interpreter, fixed arguments
        [sys.executable, *arguments],
        cwd=cwd,
        env=_clean_environment(home),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_operations_tool_has_the_commands_the_docs_print() -> None:
    assert _subcommands() == ["backfill", "filter-pattern", "preview", "reconcile", "replay", "replay-stream-failures"]


@pytest.mark.parametrize("where", ["repository", "elsewhere"])
@pytest.mark.parametrize("command", [[], *[[name] for name in _subcommands()]], ids=lambda c: " ".join(c) or "-")
def test_python_m_operations_help_runs_from_the_venv_without_pythonpath(
    command: list[str], where: str, tmp_path: Path
) -> None:
    cwd = ROOT if where == "repository" else tmp_path
    completed = _run(["-m", "operations", *command, "--help"], cwd, tmp_path)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.startswith(f"usage: python -m operations {' '.join(command)}".rstrip())


def test_every_package_of_the_repository_imports_from_anywhere(tmp_path: Path) -> None:
    code = "import importlib, sys; [importlib.import_module(name) for name in sys.argv[1:]]"
    completed = _run(["-c", code, *PACKAGES], tmp_path, tmp_path)
    assert completed.returncode == 0, completed.stderr
