"""``python -m bench`` (``make bench``): the six cases, each side by side, then one table.

    python -m bench [--cases 1,2,3,4,5,6] [--quick] [--json PATH] [--markdown] [--charts DIR]

Prints progress to stderr and the table (then a note per case) to stdout. ``--quick`` runs
every case at a tiny size (a check that the harness works, not a measurement); ``--json`` also
writes every raw figure; ``--markdown`` prints the table as Markdown too. Cases 1 and 3 also
draw the pictures of ``docs/performance.md`` into ``--charts`` (default ``docs/images``; a
``--quick`` run draws only when given ``--charts``).
It measures; it asserts nothing (the exit status is 0 whether or not targets are met, and 1
only if a case could not run).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bench import case_burst, case_calls, case_coldstart, case_latency, case_overhead, case_rate, charts
from bench.fixtures import ROOT, Servers, servers
from bench.report import CaseResult, markdown, table

CASES: dict[str, tuple[str, Any]] = {
    "1": ("latency-bound", case_latency),
    "2": ("calls", case_calls),
    "3": ("rate limit", case_rate),
    "4": ("overhead", case_overhead),
    "5": ("cold start", case_coldstart),
    "6": ("burst", case_burst),
}


def _commit() -> str:
    try:
        described = subprocess.run(
            ["git", "describe", "--always", "--dirty"],  # noqa: S607 - git from PATH, for the header only
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return described.stdout.strip()


def header() -> str:
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    return (
        f"Vercel Resource Sync benchmarks: commit {_commit()}, Python {platform.python_version()}, "
        f"{os.cpu_count()} CPUs, load average {load} at the start"
    )


def run_cases(
    selected: Sequence[str], *, quick: bool, progress: Callable[[str], None] = lambda line: None
) -> list[CaseResult]:
    results = []
    with servers() as running:
        for key in selected:
            title, module = CASES[key]
            sizes = module.QUICK if quick else module.Sizes()
            load = os.getloadavg()[0]
            progress(f"case {key} ({title}) ... load average {load:.2f}")
            started = time.perf_counter()
            result = _run_case(module, running, sizes)
            progress(f"case {key} ({title}) done in {time.perf_counter() - started:.0f} s")
            results.append(result)
    return results


def _run_case(module: Any, running: Servers, sizes: Any) -> CaseResult:
    result: CaseResult = module.run(running, sizes)
    result.raw["loadAverageAfter"] = os.getloadavg()
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cases", default=",".join(CASES), help="comma-separated case numbers (default: all)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks the harness, measures nothing")
    parser.add_argument("--json", type=Path, help="also write the raw figures here")
    parser.add_argument("--markdown", action="store_true", help="also print the table as Markdown")
    parser.add_argument("--charts", type=Path, help="draw cases 1 and 3 here (default: docs/images, none for --quick)")
    args = parser.parse_args(argv)
    selected = [key.strip() for key in args.cases.split(",") if key.strip()]
    unknown = [key for key in selected if key not in CASES]
    if unknown:
        parser.error(f"unknown case(s): {', '.join(unknown)}; choose from {', '.join(CASES)}")

    def progress(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    first_line, load_at_start = header(), os.getloadavg()[0]
    progress(first_line)
    results = run_cases(selected, quick=args.quick, progress=progress)
    print(first_line + (" (--quick: tiny sizes, not a measurement)" if args.quick else ""))
    print()
    print(table(results))
    print()
    for result in results:
        for note in result.notes:
            print(note)
    if args.markdown:
        print()
        print(markdown(results))
    if args.json:
        args.json.write_text(json.dumps({"header": first_line, "cases": [r.as_dict() for r in results]}, indent=2))
    chart_directory = args.charts or (None if args.quick else ROOT / "docs" / "images")
    if chart_directory is not None:
        for path in charts.draw(results, chart_directory, chart_caption(quick=args.quick, load=load_at_start)):
            progress(f"drew {path}")
    return 0


def chart_caption(*, quick: bool, load: float) -> str:
    """What a picture says about its run: the machine, not the commit (the page has no dates or hashes)."""
    size = "make bench --quick (tiny sizes)" if quick else "make bench"
    return f"{size}, {os.cpu_count()} CPUs, load average {load:.1f} at the start"
