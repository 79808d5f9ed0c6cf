"""Case 4, overhead: the handler's own cost per record, with no network at all.

One DynamoDB stream invocation of ``records`` INSERTs of distinct resources (each naming a
resource secret), through ``functions/stream_sync/app.py``'s ``lambda_handler`` with the
service's Vercel client replaced by a zero-latency fake (``import_resource(installation,
resource, body, *, token) -> dict``) and its secrets reader by a fake (``bench.compat``);
``SYNC_STATE_TABLE`` unset (no AWS). The handler's real Powertools logger and metrics run,
writing to ``/dev/null``. The event is handed over as Lambda's runtime does: parsed from its
JSON text (the text's size is shown; Lambda takes at most 6 MB).

- µs per record: the invocation's wall time / records, after a warm-up invocation (the
  service built, the code paths run once).
- parse / validate / transform: the same records through the pipeline's own steps, timed
  apart: the stream record to a partner mapping (``batch.change_from_stream_record``, which
  decodes the DynamoDB image), the mapping to a ``PartnerRecord`` (``parse_partner_record``),
  and the record plus its secret to the validated import body (``build_import_body``, i.e.
  ``build_import_payload(...).to_body()`` dumped once). Their sum is the floor a handler cannot
  go below with these models; the rest of the handler's time is batch processing, logging, metrics and the fake call.
- peak RSS: the process's high-water mark (``VmHWM``), which is what Lambda's "Max Memory
  Used" reports: interpreter, libraries and event included. Beside it, the RSS before the
  invocation, and in a second process under ``tracemalloc`` (which slows it down, so it is not
  timed), the Python heap's peak during the invocation above what was allocated before it.

The naive side is the Powertools batch example with the same transform and the same fakes.
"""

from __future__ import annotations

import json
import os
import threading
import time
import tracemalloc
from dataclasses import dataclass
from typing import Any

from bench import sides
from bench.fixtures import Servers, run_child
from bench.report import CaseResult, Row, ratio

TIMEOUT_SECONDS = 60.0
MIB = 1024 * 1024
LAMBDA_PAYLOAD_BYTES = 6 * 1000 * 1000  # an invocation's event, at most
FAKE_TOKEN = "vrcl_bench_fake_token_never_sent"  # noqa: S105 - goes to a fake, never over a network
FAKE_SECRET = {"DATABASE_URL": "postgres://orders:fake@db.internal:5432/orders", "PGPASSWORD": {"value": "fake"}}


@dataclass(frozen=True)
class Sizes:
    records: int = 10_000
    target_us: float = 200.0
    target_mib: float = 128.0
    heap: bool = True  # also measure the heap under tracemalloc (two more processes)


QUICK = Sizes(records=300)


def run(servers: Servers, sizes: Sizes) -> CaseResult:
    environment = {
        "POWERTOOLS_SERVICE_NAME": "vercel-resource-sync",
        "POWERTOOLS_METRICS_NAMESPACE": "VercelResourceSyncBench",
        "POWERTOOLS_LOG_LEVEL": "INFO",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "RESOURCE_SECRET_PREFIX": "partner/resources/",
        "SYNC_STATE_TABLE": "",
        "AWS_DEFAULT_REGION": "us-east-1",
        # Nothing may reach AWS or Vercel: these point nowhere reachable.
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
        "VERCEL_API_URL": "http://127.0.0.1:9",
    }
    config = {"records": sizes.records}
    ours = run_child("bench.case_overhead:child", config | {"side": "ours"}, environment)
    naive = run_child("bench.case_overhead:child", config | {"side": "naive"}, environment)
    traced, naive_traced = (
        (
            run_child("bench.case_overhead:child", config | {"side": side, "trace": True}, environment)
            for side in ("ours", "naive")
        )
        if sizes.heap
        else ({"heapPeakMiB": float("nan")}, {"heapPeakMiB": float("nan")})
    )
    stages = ours["stagesUs"]
    floor = sum(stages.values())
    rows = [
        Row(
            "4 overhead",
            f"µs/record, {sizes.records} records",
            f"{ours['usPerRecord']:.0f}",
            f"{naive['usPerRecord']:.0f}",
            f"{floor:.0f} floor",
            ratio(ours["usPerRecord"] / floor),
            f"< {sizes.target_us:g} µs",
            ours["usPerRecord"] < sizes.target_us and ours["imported"] == sizes.records,
        ),
        Row(
            "",
            "  parse / validate / transform",
            " / ".join(f"{stages[name]:.0f}" for name in ("parse", "validate", "transform")),
            "",
            "",
            "",
            "",
            None,
        ),
        Row(
            "",
            "peak RSS (MiB)",
            f"{ours['peakRssMiB']:.0f}",
            f"{naive['peakRssMiB']:.0f}",
            f"{ours['rssBeforeMiB']:.0f} before",
            "",
            f"< {sizes.target_mib:g} MiB",
            ours["peakRssMiB"] < sizes.target_mib,
        ),
        Row(
            "",
            "  heap peak in invocation (MiB)",
            f"{traced['heapPeakMiB']:.1f}",
            f"{naive_traced['heapPeakMiB']:.1f}",
            "",
            "",
            "",
            None,
        ),
    ]
    notes = [
        f"4: one stream invocation of {sizes.records} records ({ours['eventMiB']:.1f} MiB of event JSON"
        + (
            "; Lambda hands a function at most 6 MB, so this batch is larger than any it can deliver: a worst case"
            if ours["eventMiB"] * MIB > LAMBDA_PAYLOAD_BYTES
            else ""
        )
        + "), fake Vercel "
        f"client and secrets, no network. RSS: {ours['rssAfterImportsMiB']:.0f} MiB after imports, "
        f"{ours['rssBeforeMiB']:.0f} MiB with the parsed event, {ours['peakRssMiB']:.0f} MiB peak. "
        f"Ours: {ours['wallSeconds']:.2f} s, {ours['threads']} threads at the end; "
        f"naive {naive['wallSeconds']:.2f} s. Stages in µs/record measured apart on the same records "
        f"(parse {stages['parse']:.0f}, validate {stages['validate']:.0f}, transform {stages['transform']:.0f}). "
        "Heap peak: tracemalloc, in a separate process (not timed), above the heap before the invocation "
        "(the event included before). Timing: one run on a shared 2-core machine.",
    ]
    return CaseResult(
        "overhead", rows, notes, {"ours": ours, "naive": naive, "oursTraced": traced, "naiveTraced": naive_traced}
    )


class FakeVercel:
    """Zero latency; thread-safe (the pipeline may call it from several threads)."""

    def __init__(self) -> None:
        self.calls = 0
        self._lock = threading.Lock()

    def import_resource(
        self, integration_configuration_id: str, resource_id: str, body: Any, *, token: str
    ) -> dict[str, Any]:
        with self._lock:
            self.calls += 1
        return {"name": body["name"]}


class FakeSecrets:
    def installation_token(self, integration_configuration_id: str, *, force_fetch: bool = False) -> str:
        return FAKE_TOKEN

    def resource_secrets(self, secret_id: str) -> Any:
        return FAKE_SECRET


def _status_mib(field: str) -> float:
    """A memory figure of this process from /proc/self/status (Linux), in MiB.

    ``VmHWM`` (the peak RSS), not ``getrusage``'s ``ru_maxrss``: that one keeps the high-water
    mark of the process before its ``exec``, i.e. the forking parent's, which is larger here."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def child(config: dict[str, Any]) -> dict[str, Any]:
    from bench.workload import RESOURCE_SECRET_ARN, inserts
    from local_runner.invocation import invoke

    trace = bool(config.get("trace"))
    if trace:
        tracemalloc.start()
    count = config["records"]
    vercel, secrets = FakeVercel(), FakeSecrets()
    if config["side"] == "ours":
        from vercel_sync.runtime import build_sync_service, set_sync_service
        from vercel_sync.settings import Settings

        # No network and no rate limit: only the per-record work is measured.
        service = build_sync_service(Settings.from_env(os.environ), vercel=vercel, secrets=secrets, rate_limiter=None)
        set_sync_service(service)
    else:
        from bench import naive

        naive.use(put=vercel.import_resource, token=lambda _: FAKE_TOKEN, resource_secret=secrets.resource_secrets)
    handler = sides.handler(config["side"], "stream")
    rss_imports = _status_mib("VmRSS")

    # As Lambda's runtime: the event arrives as JSON text and is parsed before the handler runs.
    text = json.dumps({"Records": inserts("icfg_bench_overhead", count, secrets_arn=RESOURCE_SECRET_ARN)})
    event_bytes = len(text)
    event = json.loads(text)
    del text
    timeout = 900.0 if trace else TIMEOUT_SECONDS
    warm_up = invoke(
        handler,
        {"Records": inserts("icfg_bench_overhead", 20, start=count, secrets_arn=RESOURCE_SECRET_ARN)},
        function_name="stream_sync",
        timeout_seconds=timeout,
    )
    if warm_up.error:
        raise RuntimeError(f"warm-up invocation failed: {warm_up.error}")
    vercel.calls = 0

    rss_before = _status_mib("VmRSS")
    if trace:
        heap_before = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
    started = time.perf_counter()
    invocation = invoke(handler, event, function_name="stream_sync", timeout_seconds=timeout)
    wall = time.perf_counter() - started
    heap_peak = tracemalloc.get_traced_memory()[1] - heap_before if trace else 0
    peak_rss = _status_mib("VmHWM")
    if invocation.error or invocation.response.get("batchItemFailures"):
        raise RuntimeError(f"the invocation did not import everything: {invocation.error or 'failures reported'}")

    result: dict[str, Any] = {
        "wallSeconds": wall,
        "usPerRecord": wall / count * 1e6,
        "imported": vercel.calls,
        "eventMiB": event_bytes / MIB,
        "rssAfterImportsMiB": rss_imports,
        "rssBeforeMiB": rss_before,
        "peakRssMiB": peak_rss,
        "heapPeakMiB": heap_peak / MIB,
        "threads": threading.active_count(),
    }
    if config["side"] == "ours" and not trace:
        result["stagesUs"] = stage_times(event["Records"], secrets)
    return result


def stage_times(records: list[dict[str, Any]], secrets: FakeSecrets) -> dict[str, float]:
    """µs per record of each step of the pipeline, run apart on the same records."""
    from vercel_sync.batch import change_from_stream_record
    from vercel_sync.transform import build_import_body, needs_secrets, parse_partner_record

    # One record at a time, as the pipeline goes, keeping nothing: lists of 10,000 results would
    # add garbage-collection work the handler does not do.
    parse = validate = transform = 0.0
    clock = time.perf_counter
    for raw in records:
        started = clock()
        change = change_from_stream_record(raw)
        parsed_at = clock()
        record = parse_partner_record(change.item or {}, json_ready=change.json_ready)
        validated_at = clock()
        document = secrets.resource_secrets(record.secrets_arn or "") if needs_secrets(record, removed=False) else None
        build_import_body(record, removed=change.removed, secret_document=document)
        transformed_at = clock()
        parse += parsed_at - started
        validate += validated_at - parsed_at
        transform += transformed_at - validated_at
    count = len(records)
    return {"parse": parse / count * 1e6, "validate": validate / count * 1e6, "transform": transform / count * 1e6}
