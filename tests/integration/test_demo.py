"""The README's first command reaches its expected end state (and says nothing secret)."""

from __future__ import annotations

import pytest

from demo.scenario import Demo
from tests.leak_scan import SCANNER, register_secret

pytestmark = pytest.mark.integration


def test_the_demo_ends_in_the_expected_state(capfd: pytest.CaptureFixture[str]) -> None:
    lines: list[str] = []
    demo = Demo(out=lines.append, verbose=True)
    register_secret(demo.token, demo.password, demo.password[::-1], label="the demo's token and secret values")

    code = demo.run()

    output = "\n".join(lines)
    SCANNER.scan(output, "the demo's printed lines")
    assert code == 0, output
    assert lines[-1].strip().startswith("OK: Vercel holds the partner's latest state")
    assert "broken_1: invalid_record" in output
    assert "db_primary       active           ready          orders-db        DATABASE_URL, PGPASSWORD" in output
    emitted = output + "".join(capfd.readouterr())
    for value in (demo.token, demo.password, demo.password[::-1]):
        assert value not in emitted


def test_the_demo_with_the_worked_examples_mapping() -> None:
    from pathlib import Path

    from demo.mapped import run_mapped

    lines: list[str] = []
    mapping = Path(__file__).resolve().parents[2] / "examples/single-table/mapping.yaml"

    code = run_mapped(mapping, out=lines.append)

    output = "\n".join(lines)
    assert code == 0, output
    assert "DB#legacy            would send      Vercel: uninstalled" in output
    assert "PROFILE#settings     not a resource  Vercel: -" in output
    assert lines[-1].strip().startswith("OK: 0 problem(s)")
