"""The performance page's pictures (``bench/charts.py``): round axes, rates from cumulative counts,
and an SVG with one line per series drawn from what cases 1 and 3 record."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from bench.charts import draw, per_second, percentiles, ticks
from bench.report import CaseResult

SVG = "{http://www.w3.org/2000/svg}"


@pytest.mark.parametrize(
    ("low", "high", "expected"),
    [
        (0, 10, [0, 2, 4, 6, 8, 10]),
        (0, 66.02, [0, 20, 40, 60, 80]),
        (47.5, 80.9, [40, 50, 60, 70, 80, 90]),
        (0, 0.7, [0, 0.2, 0.4, 0.6, 0.8]),
    ],
)
def test_ticks_are_round_and_cover_the_range(low: float, high: float, expected: list[float]) -> None:
    assert ticks(low, high) == pytest.approx(expected)


def test_per_second_counts_the_window_before_each_moment() -> None:
    # 10 calls answered each second, sampled every half second (cumulative counts).
    timeline = [(t / 2, 5 * t, 0) for t in range(21)]
    rates = dict(per_second(timeline, column=1, window=5.0, step=1.0))
    assert rates[0.0] == 0.0
    assert rates[2.0] == 4.0  # 20 calls in the first 2 s, over a 5 s window
    assert rates[5.0] == rates[10.0] == 10.0


def test_percentiles_run_from_the_fastest_to_the_slowest() -> None:
    points = percentiles([5.0, 1.0, 3.0, 2.0, 4.0], points=4)
    assert points == [(0.0, 1.0), (25.0, 2.0), (50.0, 3.0), (75.0, 4.0), (100.0, 5.0)]


def test_draw_writes_one_svg_per_case_with_a_line_per_series(tmp_path: Path) -> None:
    calls = [50.5 + n / 10 for n in range(40)]
    latency = {
        "resources": 40,
        "latencyMs": 50.0,
        "maxConcurrency": 8,
        **{side: {"callMilliseconds": calls} for side in ("ours", "naive", "floor")},
    }
    timeline = [[t / 10, t, t // 3] for t in range(100)]
    rate = {
        "limit": {"calls": 6, "seconds": 1.0},
        "changes": 12,
        "workers": 2,
        "ours": {"timeline": timeline},
        "naive": {"timeline": timeline},
    }
    results = [CaseResult("latency", [], [], latency), CaseResult("calls", [], []), CaseResult("rate", [], [], rate)]

    written = draw(results, tmp_path / "images", "a test run")

    assert [path.name for path in written] == ["bench-latency.svg", "bench-rate.svg"]
    for path in written:
        svg = ET.parse(path).getroot()  # noqa: S314 - the file this test just wrote
        assert svg.tag == f"{SVG}svg"
        assert len(svg.findall(f"{SVG}polyline")) == 3
        assert "a test run" in "".join(svg.itertext())
