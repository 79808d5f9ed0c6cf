"""The suite's table: one row per figure, ours beside the naive baseline and the bound."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Row:
    case: str  # e.g. "1 latency-bound"; empty on a case's later rows
    metric: str
    ours: str
    naive: str
    bound: str  # the ideal, the minimum, the limit or the floor, named in the cell
    ours_vs_bound: str
    target: str
    met: bool | None = None  # None: no target for this row


@dataclass
class CaseResult:
    name: str
    rows: list[Row]
    notes: list[str] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "rows": [asdict(row) for row in self.rows], "notes": self.notes, "raw": self.raw}


HEADERS = ("case", "metric", "ours", "naive", "bound", "ours/bound", "target", "met")


def verdict(met: bool | None) -> str:
    return "-" if met is None else "yes" if met else "NO"


def table(results: Sequence[CaseResult]) -> str:
    cells: list[tuple[str, ...]] = [HEADERS]
    for result in results:
        for row in result.rows:
            cells.append(
                (row.case, row.metric, row.ours, row.naive, row.bound, row.ours_vs_bound, row.target, verdict(row.met))
            )
    widths = [max(len(line[column]) for line in cells) for column in range(len(HEADERS))]
    lines = []
    for index, line in enumerate(cells):
        lines.append("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip())
        if index == 0:
            lines.append("  ".join("-" * width for width in widths))
    return "\n".join(lines)


def markdown(results: Sequence[CaseResult]) -> str:
    """The same table as Markdown, for docs/performance.md."""
    lines = ["| " + " | ".join(HEADERS) + " |", "|" + " --- |" * len(HEADERS)]
    for result in results:
        for row in result.rows:
            cells = (row.case, row.metric, row.ours, row.naive, row.bound, row.ours_vs_bound, row.target)
            lines.append("| " + " | ".join(cells) + f" | {verdict(row.met)} |")
    return "\n".join(lines)


def seconds(value: float) -> str:
    return f"{value:.2f} s" if value < 100 else f"{value:.0f} s"


def ratio(value: float) -> str:
    return f"{value:.2f}x" if value < 10 else f"{value:.1f}x"
