"""Case 5, cold start: a fresh process's first record, beside the work it cannot avoid.

Each run is a fresh interpreter that syncs one new resource (a one-record DynamoDB stream event)
against the emulator (no latency, no rate limit), reading the installation token from moto
server:

- ours: ``bench/coldstart_handler.py`` imports ``functions/stream_sync/app.py`` as Lambda does
  (``PYTHONPATH`` = the function's folder and the layer) and calls ``lambda_handler`` once, with
  the template's environment (the sync-state table on); "ours, no state table" is the same with
  ``SYNC_STATE_TABLE`` unset;
- naive: the same script with the naive baseline's handler;
- bare (the bound): ``bench/coldstart_bare.py`` imports boto3 and httpx, reads the token secret
  and sends the one PUT with a body prepared beforehand: the floor with the same libraries.

Each figure is measured inside the process, from the script's first line to the answer (the
interpreter's own start-up, the same for all, is left out); the median of ``runs`` runs, the
variants taking turns, after one untimed round that warms the OS file cache. The whole
process's wall time (start-up and exit included) is in the notes.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.fixtures import ROOT, Servers, Stack
from bench.report import CaseResult, Row, ratio
from bench.workload import partner_item, stream_records

BENCH = ROOT / "bench"
LAYER = ROOT / "layers" / "sync_core"


VARIANTS = ("ours", "ours, no state table", "naive", "bare")


@dataclass(frozen=True)
class Sizes:
    runs: int = 5
    target_ratio: float = 1.3
    warm_up_rounds: int = 1
    variants: tuple[str, ...] = VARIANTS  # "ours" and "bare" at least


QUICK = Sizes(runs=1)


def run(servers: Servers, sizes: Sizes) -> CaseResult:
    stack = servers.stack("coldstart", VERCEL_RATE_LIMIT="1000000000/60")
    servers.emulator.prepare(stack.installation_id, stack.token)
    samples: dict[str, list[dict[str, float]]] = {variant: [] for variant in sizes.variants}
    number = 0
    with tempfile.TemporaryDirectory(prefix="vercel-sync-bench-cold-") as directory:
        folder = Path(directory)
        for round_number in range(sizes.warm_up_rounds + sizes.runs):
            for variant in sizes.variants:
                number += 1
                sample = _one_run(servers, stack, variant, number, folder)
                if round_number >= sizes.warm_up_rounds:  # the first rounds warm the file cache
                    samples[variant].append(sample)
    imported = servers.emulator.put_counts(stack.installation_id).resources_imported

    medians = {variant: statistics.median(s["seconds"] for s in runs) for variant, runs in samples.items()}
    process = {variant: statistics.median(s["processSeconds"] for s in runs) for variant, runs in samples.items()}
    bare = medians["bare"]

    def median_cell(variant: str, key: str = "seconds") -> str:
        if variant not in samples:
            return "(not run)"
        return f"{statistics.median(s[key] for s in samples[variant]):.3f}"

    no_table = medians.get("ours, no state table")
    rows = [
        Row(
            "5 cold start",
            f"first record, median of {sizes.runs} (s)",
            median_cell("ours"),
            median_cell("naive"),
            f"{bare:.3f} bare",
            ratio(medians["ours"] / bare),
            f"<= {sizes.target_ratio:g}x bare",
            medians["ours"] / bare <= sizes.target_ratio and imported == number,
        ),
        Row(
            "",
            "  ours, no state table (s)",
            median_cell("ours, no state table"),
            "",
            "",
            "" if no_table is None else ratio(no_table / bare),
            "",
            None,
        ),
        Row(
            "",
            "  of which importing the handler (s)",
            median_cell("ours", "importSeconds"),
            median_cell("naive", "importSeconds"),
            "",
            "",
            "",
            None,
        ),
    ]
    spread = ", ".join(
        f"{variant} {min(s['seconds'] for s in runs):.3f}-{max(s['seconds'] for s in runs):.3f}"
        for variant, runs in samples.items()
    )
    notes = [
        f"5: fresh interpreters, one record each, token from moto server, emulator without latency; from the "
        f"script's first line to the answer, median of {sizes.runs} "
        f"after {sizes.warm_up_rounds} warm-up round(s) (range: {spread} s). "
        "Whole process (interpreter start-up and exit included), median: "
        + ", ".join(f"{variant} {seconds:.3f} s" for variant, seconds in process.items())
        + f". Every run's record reached Vercel: {'yes' if imported == number else f'NO ({imported}/{number})'}. "
        "Timing: wall clock on a shared 2-core machine.",
    ]
    return CaseResult("coldstart", rows, notes, {"samples": samples, "medians": medians})


def _one_run(servers: Servers, stack: Stack, variant: str, number: int, folder: Path) -> dict[str, float]:
    item = partner_item(stack.installation_id, 50_000 + number)
    result_path = folder / f"result{number}.json"
    environment = {**os.environ, **stack.environment, "BENCH_RESULT": str(result_path)}
    if variant == "bare":
        body = folder / f"body{number}.json"
        body.write_bytes(json.dumps(_import_body(item), separators=(",", ":")).encode())
        environment |= {
            "BENCH_SECRET_ID": stack.resources.token_secret_name(stack.installation_id),
            "BENCH_URL": f"{servers.emulator.url}/v1/installations/{stack.installation_id}"
            f"/resources/{item['resourceId']}",
            "BENCH_BODY": str(body),
            "PYTHONPATH": "",
        }
        script = BENCH / "coldstart_bare.py"
    else:
        event = folder / f"event{number}.json"
        event.write_text(json.dumps({"Records": stream_records([("INSERT", item, None)])}))
        environment["BENCH_EVENT"] = str(event)
        if variant == "naive":
            environment |= {"BENCH_HANDLER": "naive:lambda_stream_handler", "PYTHONPATH": f"{BENCH}{os.pathsep}{LAYER}"}
        else:
            function = ROOT / "functions" / "stream_sync"
            environment |= {"BENCH_HANDLER": "app:lambda_handler", "PYTHONPATH": f"{function}{os.pathsep}{LAYER}"}
            if variant == "ours, no state table":
                environment["SYNC_STATE_TABLE"] = ""
        script = BENCH / "coldstart_handler.py"
    started = time.perf_counter()
    completed = subprocess.run(  # noqa: S603 - our own interpreter and script
        [sys.executable, "-P", str(script)],
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        timeout=120,
        check=False,
        cwd=folder,
    )
    process_seconds = time.perf_counter() - started
    if completed.returncode != 0 or not result_path.exists():
        tail = "\n".join(completed.stderr.strip().splitlines()[-15:])
        raise RuntimeError(f"cold start ({variant}) exited {completed.returncode}:\n{tail}")
    result: dict[str, Any] = json.loads(result_path.read_text())
    if result.get("failures") or result.get("status", 200) != 200:
        raise RuntimeError(f"cold start ({variant}) did not import its record: {result}")
    return {
        "seconds": result["seconds"],
        "importSeconds": result.get("importSeconds", 0.0),
        "processSeconds": process_seconds,
    }


def _import_body(item: dict[str, Any]) -> dict[str, Any]:
    """The body our handler sends for ``item`` (built once, outside the timed process)."""
    from vercel_sync.transform import build_import_body, parse_partner_record

    return build_import_body(parse_partner_record(item))[1]
