"""Cold import time of each handler module beside ``import boto3`` alone.

    python tools/import_times.py [--runs 5]

Each figure is the cumulative time ``python -X importtime`` reports for the top-level import,
in a fresh interpreter per run (so nothing is cached in the process; the OS file cache is
warm after the first run), median over the runs.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess  # to time this project's own imports  # nosec B404
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CASES = {
    "functions/stream_sync/app.py": ("app", ROOT / "functions" / "stream_sync"),
    "functions/queue_sync/app.py": ("app", ROOT / "functions" / "queue_sync"),
    "boto3 alone": ("boto3", ROOT),
}


def cumulative_us(module: str, cwd: Path) -> int:
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'layers' / 'sync_core'}{os.pathsep}{cwd}"}
    result = subprocess.run(  # noqa: S603 - our own interpreter and a fixed module name  # nosec B603
        [sys.executable, "-X", "importtime", "-c", f"import {module}"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    for line in result.stderr.splitlines():
        # "import time:  self [us] | cumulative | imported package"; the top level has no indent.
        parts = [p.strip() for p in line.removeprefix("import time:").split("|")]
        if len(parts) == 3 and parts[2] == module:
            return int(parts[1])
    raise RuntimeError(f"no importtime line for {module}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]}, median of {args.runs} fresh interpreters")
    print(f"{'module':<32} {'median ms':>10} {'min ms':>8} {'max ms':>8}")
    for label, (module, cwd) in CASES.items():
        samples = [cumulative_us(module, cwd) / 1000 for _ in range(args.runs)]
        print(f"{label:<32} {statistics.median(samples):>10.1f} {min(samples):>8.1f} {max(samples):>8.1f}")


if __name__ == "__main__":
    main()
