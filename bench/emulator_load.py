"""Load run against the Vercel API emulator: how many imports per second it answers, and how fast.

    .venv/bin/python bench/emulator_load.py [--requests 10000] [--concurrency 32] [--resources 200]

Starts ``python -m vercel_emulator`` in a separate process (so client and server do not share a
GIL) with no injected faults and a rate limit far above the run, then sends PUT imports of a
realistic body (metadata, a billing plan, two secrets) from ``--concurrency`` keep-alive
connections, each sending its next request as soon as the last is answered. It prints requests per
second, latency percentiles, the statuses, client-side errors, and the CPU seconds each side used
during the run (a side near 100% of the wall time is the bottleneck; the server's is read from
/proc, on Linux). ``--url`` measures an emulator that is already running instead (its rate limit
must allow the run). It prints figures; it is not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess  # to start this project's own emulator  # nosec B404
import sys
import time
from collections import Counter
from pathlib import Path
from urllib.parse import quote

import aiohttp

INSTALLATION_ID = "icfg_load"
TOKEN = "load-test-token"  # noqa: S105 - the emulator's test token, given on its command line  # nosec B105


def import_body(number: int) -> bytes:
    body = {
        "productId": "prod_postgres",
        "name": f"orders-db-{number}",
        "status": "ready",
        "ownership": "owned",
        "metadata": {"region": "eu-west-1", "replicas": 2, "ha": True},
        "billingPlan": {"id": "plan_pro", "type": "subscription", "name": "Pro", "cost": "$20/month"},
        "secrets": [
            {"name": "DATABASE_URL", "value": f"postgres://app:pw{number}@db.internal:5432/orders", "prefix": "ORDERS"},
            {"name": "DATABASE_PASSWORD", "value": f"pw{number}", "environmentOverrides": {"preview": "pw-preview"}},
        ],
    }
    return json.dumps(body, separators=(",", ":")).encode()


def start_emulator() -> tuple[subprocess.Popen[str], str]:
    command = [
        sys.executable,
        "-m",
        "vercel_emulator",
        "--port",
        "0",
        "--token",
        f"{INSTALLATION_ID}={TOKEN}",
        "--rate-limit",
        "1000000000/60",
    ]
    emulator = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)  # noqa: S603  # nosec B603
    assert emulator.stdout is not None
    line = emulator.stdout.readline().strip()
    if not line.startswith("vercel-emulator listening on "):
        emulator.kill()
        raise SystemExit(f"the emulator did not start: {line!r}")
    return emulator, line.rsplit(" ", 1)[1]


def process_cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU seconds of a local process, from /proc (Linux); ``None`` elsewhere."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    # After the command name: state is field 3, so utime (14) and stime (15) sit at 11 and 12.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(sorted_values: list[float], fraction: float) -> float:
    index = min(len(sorted_values) - 1, max(0, round(fraction * len(sorted_values)) - 1))
    return sorted_values[index]


async def run_load(base_url: str, requests: int, concurrency: int, resources: int, server_pid: int | None) -> None:
    urls = [
        f"{base_url}/v1/installations/{INSTALLATION_ID}/resources/{quote(f'db/{n} eu#1', safe='')}"
        for n in range(resources)
    ]
    bodies = [import_body(n) for n in range(resources)]
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json", "Accept": "application/json"}
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    errors: Counter[str] = Counter()
    next_request = 0

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:

        async def put(number: int) -> None:
            started = time.perf_counter()
            try:
                async with session.put(urls[number % resources], data=bodies[number % resources]) as response:
                    await response.read()
                    statuses[response.status] += 1
            except (aiohttp.ClientError, TimeoutError) as exc:
                errors[type(exc).__name__] += 1
            latencies.append(time.perf_counter() - started)

        async def client() -> None:
            nonlocal next_request
            while next_request < requests:
                number = next_request
                next_request += 1
                await put(number)

        # Warm up: open every connection once, outside the measurement.
        await asyncio.gather(*(put(n) for n in range(concurrency)))
        latencies.clear()
        statuses.clear()
        errors.clear()

        cpu_before = time.process_time()
        server_cpu_before = process_cpu_seconds(server_pid)
        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
        client_cpu = time.process_time() - cpu_before
        server_cpu_after = process_cpu_seconds(server_pid)

        async with session.get(f"{base_url}/_emulator/calls") as response:
            counted = (await response.json())["total"]

    latencies.sort()
    milliseconds = [value * 1000 for value in latencies]
    print(
        f"requests:     {len(latencies)} PUT imports over {resources} resources, {concurrency} keep-alive connections"
    )
    print(f"elapsed:      {elapsed:.2f} s")
    print(f"throughput:   {len(latencies) / elapsed:,.0f} requests/s")
    print(
        f"latency (ms): p50 {percentile(milliseconds, 0.50):.2f}  p90 {percentile(milliseconds, 0.90):.2f}  "
        f"p99 {percentile(milliseconds, 0.99):.2f}  max {milliseconds[-1]:.2f}"
    )
    print(f"statuses:     {dict(sorted(statuses.items()))}")
    print(f"errors:       {sum(errors.values())} {dict(errors) if errors else ''}".rstrip())
    print(f"client CPU:   {client_cpu:.2f} s ({client_cpu / elapsed:.0%} of the wall time)")
    if server_cpu_before is not None and server_cpu_after is not None:
        server_cpu = server_cpu_after - server_cpu_before
        print(
            f"server CPU:   {server_cpu:.2f} s ({server_cpu / elapsed:.0%} of the wall time, "
            f"{server_cpu / len(latencies) * 1e6:.0f} µs per request)"
        )
    print(f"server count: {counted} calls received (warm-up included)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--resources", type=int, default=200)
    parser.add_argument("--url", help="an emulator already running (with token icfg_load=load-test-token)")
    args = parser.parse_args()
    if args.requests < 1 or args.concurrency < 1 or args.resources < 1:
        parser.error("--requests, --concurrency and --resources must be positive")

    emulator, url = (None, args.url.rstrip("/")) if args.url else start_emulator()
    try:
        server_pid = None if emulator is None else emulator.pid
        asyncio.run(run_load(url, args.requests, args.concurrency, args.resources, server_pid))
    finally:
        if emulator is not None:
            emulator.send_signal(signal.SIGTERM)
            emulator.wait(timeout=10)
    if emulator is not None:
        print(f"server exit:  {emulator.returncode} (after SIGTERM)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
