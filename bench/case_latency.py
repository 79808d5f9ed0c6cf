"""Case 1, latency-bound: distinct resources, each call slowed by the emulator, no rate limit.

The resources arrive as one DynamoDB stream batch of ``resources`` INSERTs, delivered as
Lambda's stream mapping does (a reported failure resumes the shard there in a new invocation).
The function timeout is Lambda's maximum (900 s), so the whole batch fits in one invocation, as
the ideal bound assumes (today's sequential code needs about ``resources x latency``; under the
template's 60 s its deadline guard would hand half of it back to a second invocation).

Ideal: ``resources x latency / MAX_CONCURRENCY`` (every call in flight alongside 31 others, no
other cost). The rate limit is off at both ends (the emulator's and ``VERCEL_RATE_LIMIT``, set
very high) and so is ``SYNC_STATE_TABLE``: with it, each resource would also pay moto server's
DynamoDB calls, which on this machine cost CPU that real DynamoDB does not, so the case would
measure moto rather than the pipeline. Each side is warmed up first (one import of another
resource: the service is built, the token read and cached), then the emulator's counts are
reset and the batch is timed.

A third run, the machine's floor, sends the same PUTs (bodies built beforehand) from a bare
pool of ``MAX_CONCURRENCY`` threads on one keep-alive httpx transport (the layer the handler
calls): on a small, shared machine
the client's CPU per call, not the latency, can bound the wall time, and this shows by how much.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from bench import sides
from bench.fixtures import Servers, run_child
from bench.report import CaseResult, Row, ratio, seconds

TIMEOUT_SECONDS = 900.0


@dataclass(frozen=True)
class Sizes:
    resources: int = 1000
    latency_ms: float = 50.0
    max_concurrency: int = 32
    target_ratio: float = 1.15


QUICK = Sizes(resources=40, latency_ms=5.0, max_concurrency=8)


def run(servers: Servers, sizes: Sizes) -> CaseResult:
    stack = servers.stack(
        "latency",
        MAX_CONCURRENCY=str(sizes.max_concurrency),
        VERCEL_RATE_LIMIT="1000000000/60",
        SYNC_STATE_TABLE="",
    )
    outcomes: dict[str, dict[str, Any]] = {}
    for side in (*sides.SIDES, "floor"):
        servers.emulator.prepare(stack.installation_id, stack.token, latency_ms=sizes.latency_ms)
        emulator_cpu = servers.emulator.cpu_seconds()
        outcomes[side] = run_child(
            "bench.case_latency:floor_child" if side == "floor" else "bench.case_latency:child",
            {
                "side": side,
                "installationId": stack.installation_id,
                "resources": sizes.resources,
                "emulatorUrl": servers.emulator.url,
                "maxConcurrency": sizes.max_concurrency,
            },
            stack.environment,
        )
        emulator_cpu_after = servers.emulator.cpu_seconds()
        if emulator_cpu is not None and emulator_cpu_after is not None:
            outcomes[side]["emulatorCpuSeconds"] = emulator_cpu_after - emulator_cpu
    ideal = sizes.resources * sizes.latency_ms / 1000 / sizes.max_concurrency
    ours, naive = outcomes["ours"], outcomes["naive"]
    ours_ratio = ours["wallSeconds"] / ideal
    complete = all(o["puts"]["resourcesImported"] == sizes.resources for o in outcomes.values())
    rows = [
        Row(
            "1 latency-bound",
            f"wall time, {sizes.resources} resources",
            seconds(ours["wallSeconds"]),
            seconds(naive["wallSeconds"]),
            f"{seconds(ideal)} ideal",
            ratio(ours_ratio),
            f"<= {sizes.target_ratio:g}x ideal",
            ours_ratio <= sizes.target_ratio and ours["puts"]["resourcesImported"] == sizes.resources,
        ),
        Row(
            "",
            f"  bare httpx pool of {sizes.max_concurrency} (machine floor)",
            "",
            "",
            seconds(outcomes["floor"]["wallSeconds"]),
            ratio(ours["wallSeconds"] / outcomes["floor"]["wallSeconds"]),
            "",
            None,
        ),
        Row(
            "",
            "CPU of the handler process",
            seconds(ours["cpuSeconds"]),
            seconds(naive["cpuSeconds"]),
            f"{seconds(outcomes['floor']['cpuSeconds'])} floor",
            "",
            "",
            None,
        ),
        Row(
            "",
            "resources imported (200)",
            str(ours["puts"]["resourcesImported"]),
            str(naive["puts"]["resourcesImported"]),
            f"{sizes.resources} all",
            "",
            "all",
            complete,
        ),
    ]
    notes = [
        f"1: {sizes.resources} distinct resources, one stream batch, emulator latency {sizes.latency_ms:g} ms, "
        f"MAX_CONCURRENCY={sizes.max_concurrency}, no rate limit, no state table; ideal = "
        f"{sizes.resources} x {sizes.latency_ms:g} ms / {sizes.max_concurrency}. Ours: "
        f"{ours['delivery']['invocations']} invocation(s); naive {naive['wallSeconds'] / ideal:.1f}x ideal. The "
        "handler process's CPU time is a floor under its wall time on a busy machine (the GIL: one core at most); "
        f"the emulator used {_cpu(ours)} (ours) and {_cpu(naive)} (naive) of CPU in its own process, warm-up "
        "included. The floor: the same PUTs (bodies built beforehand) from a bare pool of "
        f"{sizes.max_concurrency} threads on one keep-alive httpx transport, no pipeline: what this machine allows "
        "the client. Timing: wall clock on a shared 2-core machine.",
    ]
    return CaseResult(
        "latency",
        rows,
        notes,
        {
            "ideal": ideal,
            "resources": sizes.resources,
            "latencyMs": sizes.latency_ms,
            "maxConcurrency": sizes.max_concurrency,
            **outcomes,
        },
    )


@contextmanager
def timed_calls() -> Iterator[list[float]]:
    """Each call's seconds at httpx's transport (the request handed in to the answer's headers),
    the layer all three sides call, so their latencies compare (the performance page's picture)."""
    import httpx

    original = httpx.HTTPTransport.handle_request
    durations: list[float] = []

    def timed(transport: httpx.HTTPTransport, request: httpx.Request) -> httpx.Response:
        started = time.perf_counter()
        try:
            return original(transport, request)
        finally:
            durations.append(time.perf_counter() - started)

    httpx.HTTPTransport.handle_request = timed  # type: ignore[method-assign,assignment]
    try:
        yield durations
    finally:
        httpx.HTTPTransport.handle_request = original  # type: ignore[method-assign]


def _milliseconds(durations: list[float]) -> list[float]:
    return sorted(round(duration * 1000, 2) for duration in durations)


def _cpu(outcome: dict[str, Any]) -> str:
    value = outcome.get("emulatorCpuSeconds")
    return "?" if value is None else seconds(value)


def child(config: dict[str, Any]) -> dict[str, Any]:
    """One side, timed in its own process."""
    import httpx

    from bench.fixtures import PutCounts
    from bench.workload import deliver_stream, inserts

    installation_id, count = config["installationId"], config["resources"]
    handler = sides.handler(config["side"], "stream")
    warm_up = deliver_stream(
        handler, inserts(installation_id, 1, start=90_000), batch_size=1, timeout_seconds=TIMEOUT_SECONDS
    )
    if warm_up.left:
        raise RuntimeError(f"the warm-up import did not go through: {warm_up.as_dict()}")
    control = httpx.Client(base_url=config["emulatorUrl"] + "/_emulator", timeout=30)
    control.post("/reset").raise_for_status()  # keeps the token, latency and limit

    records = inserts(installation_id, count)
    with timed_calls() as durations:
        cpu_started, started = time.process_time(), time.perf_counter()
        delivery = deliver_stream(handler, records, batch_size=count, timeout_seconds=TIMEOUT_SECONDS)
        wall = time.perf_counter() - started
        cpu = time.process_time() - cpu_started
    puts = PutCounts.from_calls(control.get("/calls").json(), installation_id)
    return {
        "wallSeconds": wall,
        "cpuSeconds": cpu,
        "delivery": delivery.as_dict(),
        "puts": puts.as_dict(),
        "callMilliseconds": _milliseconds(durations),
    }


def floor_child(config: dict[str, Any]) -> dict[str, Any]:
    """The machine's floor for this case: the same PUTs, bodies built beforehand, from a bare
    thread pool on one keep-alive httpx transport (no batch processing, pipeline or logging)."""
    import json
    import os
    from concurrent.futures import ThreadPoolExecutor

    import boto3
    import httpx

    from bench.fixtures import PutCounts
    from bench.workload import partner_item
    from vercel_sync.transform import build_import_body, parse_partner_record

    installation_id, count, threads = config["installationId"], config["resources"], config["maxConcurrency"]
    secret_id = os.environ["VERCEL_TOKEN_SECRET_ID"].replace("{integrationConfigurationId}", installation_id)
    token = json.loads(boto3.client("secretsmanager").get_secret_value(SecretId=secret_id)["SecretString"])
    headers = {"Authorization": f"Bearer {token['access_token']}", "Content-Type": "application/json"}
    base = f"{os.environ['VERCEL_API_URL']}/v1/installations/{installation_id}/resources/"
    requests = []
    for number in [90_000, *range(count)]:
        item = partner_item(installation_id, number)
        body = build_import_body(parse_partner_record(item))[1]
        requests.append((base + item["resourceId"], json.dumps(body, separators=(",", ":")).encode()))
    # The same httpx layer the handler calls (its pooled transport), so the floor is what any
    # client of this library can do here, ours included.
    transport = httpx.HTTPTransport(limits=httpx.Limits(max_connections=threads, max_keepalive_connections=threads))
    timeout = httpx.Timeout(10.0).as_dict()

    def put(request: tuple[str, bytes]) -> None:
        response = transport.handle_request(
            httpx.Request("PUT", request[0], content=request[1], headers=headers, extensions={"timeout": timeout})
        )
        try:
            response.read()
        finally:
            response.close()
        if response.status_code != 200:
            raise RuntimeError(f"the emulator answered {response.status_code}")

    put(requests[0])  # warm-up, as the other sides
    control = httpx.Client(base_url=config["emulatorUrl"] + "/_emulator", timeout=30)
    control.post("/reset").raise_for_status()
    with timed_calls() as durations:
        cpu_started, started = time.process_time(), time.perf_counter()
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(put, requests[1:]))
        wall = time.perf_counter() - started
        cpu = time.process_time() - cpu_started
    puts = PutCounts.from_calls(control.get("/calls").json(), installation_id)
    return {
        "wallSeconds": wall,
        "cpuSeconds": cpu,
        "puts": puts.as_dict(),
        "callMilliseconds": _milliseconds(durations),
    }
