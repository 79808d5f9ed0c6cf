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
  apart: the stream record to a partner mapping (``sources.change_from_stream_record``, which
  decodes the DynamoDB image), the mapping to a ``PartnerRecord`` (``parse_partner_record``),
  and the record plus its secret to the validated import body (``build_import_body``: the
  validated payload and its JSON body, dumped once). Their sum is the floor a handler cannot
  go below with these models; the rest of the handler's time is batch processing, logging, metrics and the fake call.
- peak RSS: the process's high-water mark (``VmHWM``), which is what Lambda's "Max Memory
  Used" reports: interpreter, libraries and event included. Beside it, the RSS before the
  invocation, and in a second process under ``tracemalloc`` (which slows it down, so it is not
  timed), the Python heap's peak during the invocation above what was allocated before it.

The naive side is the Powertools batch example with the same transform and the same fakes.

What Lambda can deliver (judged for memory): Lambda hands a function at most 6 MB of event, so the
10,000 records above (11.9 MiB of JSON) can never arrive in one invocation, and even 10,000 records
holding nothing but the required fields and a ``version`` take about 7 MB (a stream record's
envelope alone - ids, ARN, sequence number, keys - is about 470 bytes). The peak RSS judged is
therefore that of the largest invocations Lambda can deliver: as many records as fit in 6 MB of
event JSON, once with the same records as above (about 4,800) and once with minimal ones (required
fields and ``version``: about 8,000, the most records, so the most per-record state); the larger
of the two peaks is the judged figure. The 10,000-record invocation stays as the timed run (µs per
record does not depend on how large the event is) and its peak RSS stays visible as an extra row,
a worst case beyond Lambda's limit.
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
    deliverable: bool = True  # also the largest events Lambda can deliver (two more processes)


QUICK = Sizes(records=300, deliverable=False)


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
    deliverable = (
        {
            shape: run_child(
                "bench.case_overhead:child",
                {"records": records_that_fit(shape), "side": "ours", "shape": shape, "stages": False},
                environment,
            )
            for shape in SHAPES
        }
        if sizes.deliverable
        else {}
    )
    judged = max(deliverable.values(), key=lambda run: run["peakRssMiB"]) if deliverable else ours
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
        *(
            [
                Row(
                    "",
                    "peak RSS (MiB), 6 MB events",
                    f"{judged['peakRssMiB']:.0f}",
                    "",
                    f"{judged['rssBeforeMiB']:.0f} before",
                    "",
                    f"< {sizes.target_mib:g} MiB",
                    judged["peakRssMiB"] < sizes.target_mib,
                ),
                *(
                    Row(
                        "",
                        f"  {run['records']} {shape} records, {run['eventMiB'] * MIB / 1e6:.2f} MB",
                        f"{run['peakRssMiB']:.0f}",
                        "",
                        f"{run['rssBeforeMiB']:.0f} before",
                        "",
                        "",
                        None,
                    )
                    for shape, run in deliverable.items()
                ),
            ]
            if deliverable
            else []
        ),
        Row(
            "",
            f"peak RSS (MiB), {sizes.records} records" + (" (beyond 6 MB)" if deliverable else ""),
            f"{ours['peakRssMiB']:.0f}",
            f"{naive['peakRssMiB']:.0f}",
            f"{ours['rssBeforeMiB']:.0f} before",
            "",
            "" if deliverable else f"< {sizes.target_mib:g} MiB",
            None if deliverable else ours["peakRssMiB"] < sizes.target_mib,
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
    if deliverable:
        notes.append(
            "4: peak RSS judged on the largest events Lambda delivers (at most 6 MB of JSON): "
            + "; ".join(
                f"{run['records']} {shape} records ({run['eventMiB'] * MIB / 1e6:.2f} MB): "
                f"{run['rssAfterImportsMiB']:.0f} MiB after imports, {run['rssBeforeMiB']:.0f} with the event, "
                f"{run['peakRssMiB']:.0f} peak, {run['usPerRecord']:.0f} µs/record"
                for shape, run in deliverable.items()
            )
            + ". The 10,000-record event above cannot be delivered by Lambda (over 6 MB); its peak is shown "
            "as a worst case."
        )
    return CaseResult(
        "overhead",
        rows,
        notes,
        {
            "ours": ours,
            "naive": naive,
            "oursTraced": traced,
            "naiveTraced": naive_traced,
            "deliverable": deliverable,
        },
    )


# The record shapes of the deliverable runs: the timed run's records, and minimal ones.
SHAPES = ("full", "minimal")


def shaped_inserts(shape: str, installation_id: str, count: int, *, start: int = 0) -> list[dict[str, Any]]:
    """``count`` INSERTs of distinct resources: ``full`` as in the timed run (``bench.workload``'s
    partner items, naming a resource secret), ``minimal`` with the required fields and ``version``."""
    from bench.workload import inserts, partner_item, resource_secret_name, stream_records

    if shape == "full":
        return inserts(installation_id, count, start=start, secrets_arn=resource_secret_name(installation_id))
    required = ("integrationConfigurationId", "resourceId", "productId", "name", "status", "version")
    items = [partner_item(installation_id, start + n) for n in range(count)]
    return stream_records([("INSERT", {key: item[key] for key in required}, None) for item in items])


def records_that_fit(shape: str, limit: int = LAMBDA_PAYLOAD_BYTES, most: int = 10_000) -> int:
    """How many records of ``shape`` the largest event Lambda delivers holds (JSON as the child makes it)."""
    sizes = [len(json.dumps(record)) for record in shaped_inserts(shape, "icfg_bench_overhead", most)]
    total = len(json.dumps({"Records": []}))
    for count, size in enumerate(sizes):
        total += size + (2 if count else 0)  # ", " between records
        if total > limit:
            return count
    return most


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

    def check_owner(self, secret_id: str, installation_id: str) -> None:
        pass

    def resource_secrets(self, secret_id: str, *, installation_id: str) -> Any:
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
    from local_runner.invocation import invoke

    trace = bool(config.get("trace"))
    if trace:
        tracemalloc.start()
    count = config["records"]
    vercel, secrets = FakeVercel(), FakeSecrets()
    if config["side"] == "ours":
        from vercel_sync import wiring
        from vercel_sync.settings import SyncSettings
        from vercel_sync.wiring import build_sync_service

        # No network and no rate limit: only the per-record work is measured.
        service = build_sync_service(
            SyncSettings.from_env(os.environ), vercel=vercel, secrets=secrets, rate_limiter=None
        )
        wiring.sync_service.set(service)
    else:
        from bench import naive

        naive.use(put=vercel.import_resource, token=lambda _: FAKE_TOKEN, resource_secret=lambda _: FAKE_SECRET)
    handler = sides.handler(config["side"], "stream")
    rss_imports = _status_mib("VmRSS")

    # As Lambda's runtime: the event arrives as JSON text and is parsed before the handler runs.
    text = json.dumps({"Records": shaped_inserts(config.get("shape", "full"), "icfg_bench_overhead", count)})
    event_bytes = len(text)
    event = json.loads(text)
    del text
    timeout = 900.0 if trace else TIMEOUT_SECONDS
    warm_up = invoke(
        handler,
        {"Records": shaped_inserts(config.get("shape", "full"), "icfg_bench_overhead", 20, start=count)},
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
        "records": count,
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
    if config["side"] == "ours" and not trace and config.get("stages", True):
        result["stagesUs"] = stage_times(event["Records"], secrets)
    return result


def stage_times(records: list[dict[str, Any]], secrets: FakeSecrets) -> dict[str, float]:
    """µs per record of each step of the pipeline, run apart on the same records."""
    from vercel_sync.sources import change_from_stream_record
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
        document = (
            secrets.resource_secrets(record.secrets_arn or "", installation_id=record.integration_configuration_id)
            if needs_secrets(record, removed=False)
            else None
        )
        build_import_body(record, removed=change.removed, secret_document=document)
        transformed_at = clock()
        parse += parsed_at - started
        validate += validated_at - parsed_at
        transform += transformed_at - validated_at
    count = len(records)
    return {"parse": parse / count * 1e6, "validate": validate / count * 1e6, "transform": transform / count * 1e6}
