"""The pictures of ``docs/performance.md``, drawn as SVG from the figures a run measured.

``make bench`` writes them (``--charts DIR``, default ``docs/images``; a ``--quick`` run draws only
when given ``--charts``):

- ``bench-rate.svg``, case 3: imports (and 429s) per second over the drain, against the limit;
- ``bench-latency.svg``, case 1: each call's latency, sorted, against the machine's floor and the
  emulator's own added latency.

A hand-written line chart: a few dozen lines of SVG need no plotting library.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any

from bench.report import CaseResult

WIDTH, HEIGHT = 900, 400
LEFT, RIGHT, TOP, BOTTOM = 64, 236, 80, 52
OURS, NAIVE, FLOOR, LIMIT = "#1f6feb", "#d1242f", "#1a7f37", "#59636e"


@dataclass(frozen=True)
class Line:
    label: str
    points: Sequence[tuple[float, float]]
    color: str
    dashed: bool = False


@dataclass(frozen=True)
class Level:
    """A horizontal reference line (a limit, a floor), labelled at its right end, above or below it."""

    label: str
    y: float
    color: str
    label_below: bool = False


def ticks(low: float, high: float) -> list[float]:
    """Round tick values from at most ``low`` to at least ``high``: steps of 1, 2 or 5 times a power of ten."""
    raw = max(high - low, 1e-9) / 5
    power = 10 ** math.floor(math.log10(raw))
    step = next(power * m for m in (1, 2, 5, 10) if power * m >= raw)
    first = math.floor(low / step + 1e-9)
    return [step * n for n in range(first, math.ceil(high / step - 1e-9) + 1)]


def line_chart(
    *,
    title: str,
    what: str,
    caption: str,
    x_label: str,
    y_label: str,
    lines: Sequence[Line],
    levels: Sequence[Level] = (),
    y_from_zero: bool = True,
) -> str:
    """The lines over a grid of round ticks, the levels dashed across, a legend on the right. The
    y axis starts at 0 unless ``y_from_zero`` is false (then just below the lowest value)."""
    xs = [x for line in lines for x, _ in line.points] or [1.0]
    ys = [y for line in lines for _, y in line.points] + [level.y for level in levels]
    y_low = 0.0 if y_from_zero else min(ys) * 0.95
    x_ticks, y_ticks = ticks(0.0, max(xs)), ticks(y_low, max([*ys, 1e-9]) * 1.05)
    plot_width, plot_height = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def px(x: float) -> float:
        return LEFT + x / x_ticks[-1] * plot_width

    def py(y: float) -> float:
        return TOP + plot_height - (y - y_ticks[0]) / (y_ticks[-1] - y_ticks[0]) * plot_height

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" '
        'font-family="Helvetica, Arial, sans-serif" font-size="12">',
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="#ffffff"/>',
        f'<text x="{LEFT}" y="22" font-size="15" font-weight="bold">{escape(title)}</text>',
        f'<text x="{LEFT}" y="42">{escape(what)}</text>',
        f'<text x="{LEFT}" y="60" fill="{LIMIT}">{escape(caption)}</text>',
    ]
    for value in x_ticks:
        out.append(
            f'<line x1="{px(value):.1f}" y1="{TOP}" x2="{px(value):.1f}" y2="{TOP + plot_height}" stroke="#eaeef2"/>'
        )
        out.append(f'<text x="{px(value):.1f}" y="{TOP + plot_height + 16}" text-anchor="middle">{value:g}</text>')
    for value in y_ticks:
        out.append(
            f'<line x1="{LEFT}" y1="{py(value):.1f}" x2="{LEFT + plot_width}" y2="{py(value):.1f}" stroke="#eaeef2"/>'
        )
        out.append(f'<text x="{LEFT - 6}" y="{py(value) + 4:.1f}" text-anchor="end">{value:g}</text>')
    out.append(f'<rect x="{LEFT}" y="{TOP}" width="{plot_width}" height="{plot_height}" fill="none" stroke="#8c959f"/>')
    out.append(f'<text x="{LEFT + plot_width / 2}" y="{HEIGHT - 12}" text-anchor="middle">{escape(x_label)}</text>')
    out.append(
        f'<text transform="translate(16 {TOP + plot_height / 2}) rotate(-90)" text-anchor="middle">'
        f"{escape(y_label)}</text>"
    )
    for level in levels:
        y = py(level.y)
        out.append(
            f'<line x1="{LEFT}" y1="{y:.1f}" x2="{LEFT + plot_width}" y2="{y:.1f}" stroke="{level.color}" '
            'stroke-width="1.5" stroke-dasharray="6 4"/>'
        )
        out.append(
            f'<text x="{LEFT + plot_width - 4}" y="{y + 15 if level.label_below else y - 5:.1f}" text-anchor="end" '
            f'fill="{level.color}">'
            f"{escape(level.label)}</text>"
        )
    for line in lines:
        points = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in line.points)
        dash = ' stroke-dasharray="3 3"' if line.dashed else ""
        out.append(f'<polyline points="{points}" fill="none" stroke="{line.color}" stroke-width="2"{dash}/>')
    legend = LEFT + plot_width + 16
    for index, line in enumerate(lines):  # the legend, right of the plot
        y = TOP + 12 + 20 * index
        dash = ' stroke-dasharray="3 3"' if line.dashed else ""
        out.append(
            f'<line x1="{legend}" y1="{y - 4}" x2="{legend + 24}" y2="{y - 4}" stroke="{line.color}" '
            f'stroke-width="2"{dash}/>'
        )
        out.append(f'<text x="{legend + 30}" y="{y}">{escape(line.label)}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def per_second(
    timeline: Sequence[Sequence[float]], column: int, window: float, step: float = 0.5
) -> list[tuple[float, float]]:
    """Calls per second over the ``window`` seconds up to each ``step``, from cumulative counts
    sampled over time (``[seconds, count, ...]`` rows, in time order)."""
    if not timeline:
        return []
    times = [row[0] for row in timeline]

    def count_at(moment: float) -> float:
        index = bisect.bisect_right(times, moment)
        return float(timeline[index - 1][column]) if index else 0.0

    end = timeline[-1][0]
    moments = [n * step for n in range(int(end / step) + 1)]
    return [(t, (count_at(t) - count_at(t - window)) / window) for t in moments]


def rate_chart(raw: dict[str, Any], caption: str) -> str:
    calls, seconds = raw["limit"]["calls"], raw["limit"]["seconds"]
    ours, naive = raw["ours"], raw["naive"]
    return line_chart(
        title=f"Case 3: {raw['changes']} imports, {raw['workers']} workers, a limit of {calls} per {seconds:g} s",
        what=f"Vercel's answers per second, each point over the {seconds:g} s before it (the limit's window)",
        caption=caption,
        x_label="seconds since the backlog was released",
        y_label="calls per second",
        lines=[
            Line("ours, imported (200)", per_second(ours["timeline"], 1, seconds), OURS),
            Line("naive, imported (200)", per_second(naive["timeline"], 1, seconds), NAIVE),
            Line("naive, refused (429)", per_second(naive["timeline"], 2, seconds), NAIVE, dashed=True),
        ],
        levels=[Level(f"the limit, {calls / seconds:g}/s", calls / seconds, LIMIT)],
    )


def percentiles(values: Sequence[float], points: int = 200) -> list[tuple[float, float]]:
    """``(percent of calls, milliseconds)``: the sorted latencies, at most ``points + 1`` of them."""
    ordered = sorted(values)
    if not ordered:
        return []
    last = len(ordered) - 1
    return [(100 * n / points, ordered[round(last * n / points)]) for n in range(points + 1)]


def latency_chart(raw: dict[str, Any], caption: str) -> str:
    return line_chart(
        title=f"Case 1: latency of each of {raw['resources']} calls, {raw['maxConcurrency']} in flight, sorted",
        what="each call timed at httpx's transport (request in, answer's headers out), the layer all three use",
        caption=caption,
        x_label="percent of calls at or below (a percentile)",
        y_label="milliseconds per call",
        lines=[
            Line("ours (the stream handler)", percentiles(raw["ours"]["callMilliseconds"]), OURS),
            Line(
                f"floor (bare pool, {raw['maxConcurrency']} threads)",
                percentiles(raw["floor"]["callMilliseconds"]),
                FLOOR,
            ),
            Line("naive (one call at a time)", percentiles(raw["naive"]["callMilliseconds"]), NAIVE),
        ],
        levels=[Level(f"the emulator's added latency, {raw['latencyMs']:g} ms", raw["latencyMs"], LIMIT, True)],
        y_from_zero=False,
    )


def draw(results: Sequence[CaseResult], directory: Path, caption: str) -> list[Path]:
    """Write the pictures of the cases in ``results`` (1 and 3) to ``directory``; the paths written."""
    drawers = {"latency": ("bench-latency.svg", latency_chart), "rate": ("bench-rate.svg", rate_chart)}
    written = []
    for result in results:
        if result.name not in drawers:
            continue
        name, chart = drawers[result.name]
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / name
        path.write_text(chart(result.raw, caption))
        written.append(path)
    return written
