"""tools/compile_build.py: every built module gets bytecode Lambda can use from a read-only layer."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from tools import compile_build


def _artifact(root: Path) -> Path:
    package = root / "SyncCoreLayer" / "python" / "pkg"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "module.py").write_text("VALUE = 42\n")
    (root / "StreamSyncFunction").mkdir()
    (root / "StreamSyncFunction" / "app.py").write_text("def lambda_handler(event, context):\n    return {}\n")
    return root


def test_every_module_gets_hash_checked_bytecode_that_ignores_times(tmp_path: Path) -> None:
    build = _artifact(tmp_path / "build")
    assert len(compile_build.uncompiled(build)) == 3

    assert compile_build.main([str(build)]) == 0

    assert compile_build.uncompiled(build) == []
    cached = Path(importlib.util.cache_from_source(str(build / "SyncCoreLayer/python/pkg/module.py")))
    flags = int.from_bytes(cached.read_bytes()[4:8], "little")
    assert flags == 0b01  # hash-based, source not checked (PEP 552): a zip's times cannot matter


def test_nothing_built_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert compile_build.main([str(tmp_path / "missing")]) == 2
    assert "run sam build first" in capsys.readouterr().err


def test_runs_only_under_the_runtime_version(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(compile_build, "RUNTIME_VERSION", (sys.version_info[0], sys.version_info[1] + 1))
    assert compile_build.main([str(_artifact(tmp_path / "build"))]) == 2


def test_our_own_module_that_does_not_compile_fails_the_build(tmp_path: Path) -> None:
    build = _artifact(tmp_path / "build")
    core = build / "SyncCoreLayer" / "python" / "vercel_sync"
    core.mkdir()
    (core / "broken.py").write_text("def broken(:\n")
    (build / "SyncCoreLayer" / "python" / "pkg" / "py2_only.py").write_text("print 'a third party test file'\n")

    assert compile_build.main([str(build)]) == 1
    assert sorted(path.name for path in compile_build.uncompiled(build)) == ["broken.py", "py2_only.py"]
