"""Case 6, burst: 2,000 changes to one installation through a standard queue, none dead-lettered.

The queue, its dead-letter queue and redrive policy (``maxReceiveCount``), its visibility timeout,
the trigger's batch size and maximum concurrency, the function timeout and the rate limit are the
template's defaults (read from ``template.yaml``, the queue created from it in moto server).
``MaximumConcurrency`` worker processes, each like one Lambda instance (its own interpreter,
handler and service), poll the queue as Lambda's SQS mapping does (``local_runner.queue.QueuePoller``:
a batch of the template's size, the queue's visibility timeout, successes deleted, reported messages
left for their visibility timeout or the handler's deferral) and share the template's sync-state
table; Lambda takes no more messages than these invocations can hold, so neither does the bench.
A backlog fills every batch at once, so the trigger's batching window (which only waits for a batch
to fill) is not played.

Time is scaled by ``scale``: the emulator's limit and ``VERCEL_RATE_LIMIT`` become the same calls per
``seconds / scale``, and the visibility timeout is divided by ``scale``. Of the function timeout, the
part a record may spend waiting for the limit is divided by ``scale``; the part every invocation keeps
for its last call, parking and returning (``TimeBudget.record_ms``, 5 s) is not, as it is the time of
AWS and Vercel calls, which do not run faster here. Every duration that decides how often a message
is received (how long it waits for the limit, how long an invocation may wait, a deferral computed
from the limit's interval, the visibility timeout) then shrinks by the same factor, so the receives
per message, the figure ``maxReceiveCount`` is compared with, stay as at full scale. The calls' own
latency and this machine's CPU do not shrink: they only make an invocation slower than at full scale.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.case_rate import _queue_depth, _WatchedSqs, send_backlog
from bench.fixtures import Servers, Stack, run_workers
from bench.rate_limit_workers import max_in_window
from bench.report import CaseResult, Row, seconds


@dataclass(frozen=True)
class Sizes:
    changes: int = 2_000
    scale: float = 10.0  # time runs this many times faster than the template's figures
    latency_ms: float = 20.0
    max_seconds: float = 300.0
    # None: the trigger's MaximumConcurrency as the template deploys it; else a provider's QueueMaximumConcurrency.
    max_concurrency: int | None = None
    # The installation's bucket drained this long (scaled seconds) as the burst starts, as a 429's
    # Retry-After drains it when another caller used the installation's calls.
    paused_seconds: float = 0.0


QUICK = Sizes(changes=40, scale=10.0, latency_ms=5.0, max_seconds=60.0)


STANDARD_QUEUE = {"CreatedPartnerQueueType": "standard"}  # as bench.fixtures creates each stack's queue


@dataclass(frozen=True)
class TemplateFigures:
    """What the template deploys by default, as the case scales it."""

    calls: int
    seconds: float  # the rate limit's window, unscaled
    batch_size: int
    max_concurrency: int
    max_receive_count: int
    visibility_timeout: int
    function_timeout: float

    @classmethod
    def read(cls) -> TemplateFigures:
        from local_aws.template import Template

        template = Template.load(STANDARD_QUEUE)
        calls, window = template.parameters["VercelRateLimit"].split("/")
        source = template.resolve(template.event_source("QueueSyncFunction", "PartnerEvents"), lambda name: name)
        queue = template.resolve(template.resources["PartnerEventsQueue"]["Properties"], lambda name: name)
        return cls(
            calls=int(calls),
            seconds=float(window),
            batch_size=int(source["BatchSize"]),
            max_concurrency=int(source["ScalingConfig"]["MaximumConcurrency"]),
            max_receive_count=int(queue["RedrivePolicy"]["maxReceiveCount"]),
            visibility_timeout=int(queue["VisibilityTimeout"]),
            function_timeout=template.function_timeout_seconds(),
        )


def run(servers: Servers, sizes: Sizes) -> CaseResult:
    outcome = run_burst(servers, sizes)
    figures = outcome["template"]
    limit = f"{figures['calls']}/{figures['seconds'] / sizes.scale:g} s"
    rows = [
        Row(
            "6 burst",
            "messages dead-lettered",
            str(outcome["deadLettered"]),
            "-",
            "0",
            "",
            "0",
            outcome["deadLettered"] == 0,
        ),
        Row(
            "",
            f"peak calls in any {figures['seconds'] / sizes.scale:g} s (sampled)",
            str(outcome["peakCallsPerWindow"]),
            "-",
            f"{figures['calls']} (limit)",
            f"{outcome['peakCallsPerWindow'] / figures['calls']:.0%}",
            "zero 429s",
            outcome["puts"]["byStatus"].get("429", 0) == 0,
        ),
        Row(
            "",
            "all imported, total time",
            f"{outcome['imported']}/{sizes.changes} in {seconds(outcome['runSeconds'])}",
            "-",
            f"{seconds(outcome['idealSeconds'])} at the limit",
            "",
            "all",
            outcome["imported"] == sizes.changes,
        ),
    ]
    notes = [
        f"6: {sizes.changes} changes to distinct resources of one installation in a standard queue from the "
        f"template (maxReceiveCount {figures['maxReceiveCount']}, visibility {figures['visibilityTimeout']} s), "
        f"{figures['maxConcurrency']} worker processes (the trigger's MaximumConcurrency) taking batches of "
        f"{figures['batchSize']}, the template's {figures['calls']}/{figures['seconds']:g} s limit and "
        f"{figures['functionTimeout']:g} s timeout with time scaled {sizes.scale:g}x faster ({limit}, timeout "
        f"{_scaled_timeout(figures['functionTimeout'], sizes.scale):g} s, "
        f"visibility {figures['visibilityTimeout'] / sizes.scale:g} s), "
        f"latency {sizes.latency_ms:g} ms. {outcome['puts']['total']} PUTs {outcome['puts']['byStatus']}, "
        f"{outcome['invocations']} invocations, {outcome['received']} receives ({outcome['mostReceives']} at most "
        f"of one message id; a message sent again is a new id), {outcome['leftInQueue']} left in the queue. "
        "Peak: the most 200s counted in any window of the limit's length, from counts sampled every 0.1 s, so "
        "a call may be placed up to 0.1 s late (a window can show one sample's calls more than it held); the "
        "emulator itself refuses (429) any call beyond the limit in its windows, and counts them exactly. "
        "The naive baseline has no rate limiter (case 3 shows it): not run.",
    ]
    return CaseResult("burst", rows, notes, outcome)


def run_burst(servers: Servers, sizes: Sizes) -> dict[str, Any]:
    """Run the burst once; every figure of it (the test asserts on these)."""
    figures = TemplateFigures.read()
    if sizes.max_concurrency is not None:
        figures = dataclasses.replace(figures, max_concurrency=sizes.max_concurrency)
    window = figures.seconds / sizes.scale
    rate_limit = f"{figures.calls}/{window:g}"
    stack = servers.stack("burst", VERCEL_RATE_LIMIT=rate_limit)
    servers.emulator.prepare(
        stack.installation_id, stack.token, latency_ms=sizes.latency_ms, rate_limit=(figures.calls, window)
    )
    queue = stack.resources.queues["PartnerEventsQueue"]
    visibility = max(1, round(figures.visibility_timeout / sizes.scale))
    stack.aws["sqs"].set_queue_attributes(QueueUrl=queue.url, Attributes={"VisibilityTimeout": str(visibility)})
    send_backlog(stack, queue.url, sizes.changes)
    if sizes.paused_seconds:
        _pause_bucket(stack, rate_limit, sizes.paused_seconds)
    config = {
        "queueUrl": queue.url,
        "batchSize": figures.batch_size,
        "timeoutSeconds": _scaled_timeout(figures.function_timeout, sizes.scale),
    }
    outcome, results = run_workers(
        "bench.case_burst:worker",
        [config] * figures.max_concurrency,
        stack.environment,
        lambda go: _watch(servers, stack, sizes, go, window),
    )
    received = [message_id for result in results for message_id in result.pop("receivedMessageIds")]
    counts: dict[str, int] = {}
    for message_id in received:
        counts[message_id] = counts.get(message_id, 0) + 1
    outcome.update(
        deadLettered=_queue_depth(stack, stack.resources.queues["PartnerEventsDeadLetterQueue"].url),
        leftInQueue=_queue_depth(stack, queue.url),
        invocations=sum(result["invocations"] for result in results),
        received=len(received),
        mostReceives=max(counts.values(), default=0),
        idealSeconds=(math.ceil(sizes.changes / figures.calls) - 1) * window,
        template={
            "calls": figures.calls,
            "seconds": figures.seconds,
            "batchSize": figures.batch_size,
            "maxConcurrency": figures.max_concurrency,
            "maxReceiveCount": figures.max_receive_count,
            "visibilityTimeout": figures.visibility_timeout,
            "functionTimeout": figures.function_timeout,
        },
    )
    return outcome


def _watch(servers: Servers, stack: Stack, sizes: Sizes, go: Path, window: float) -> dict[str, Any]:
    """Until every change is imported, or nothing is left to receive, or ``max_seconds``."""
    go.touch()
    started = time.monotonic()
    ok_times: list[float] = []  # one entry per 200, at the sample that first counted it
    seen = 0
    while True:
        time.sleep(0.1)
        now = time.monotonic()
        counts = servers.emulator.put_counts(stack.installation_id)
        ok = counts.by_status.get("200", 0)
        ok_times.extend([now - started] * (ok - seen))
        seen = ok
        if counts.resources_imported >= sizes.changes or now - started > sizes.max_seconds:
            break
        if _queue_depth(stack, stack.resources.queues["PartnerEventsQueue"].url) == 0:
            break  # nothing left to receive: the rest (if any) is in the dead-letter queue
    ended = time.monotonic()
    time.sleep(0.5)  # calls in flight answered before counting
    counts = servers.emulator.put_counts(stack.installation_id)
    return {
        "imported": counts.resources_imported,
        "runSeconds": ended - started,
        "puts": counts.as_dict(),
        "peakCallsPerWindow": max_in_window(ok_times, window),
    }


def _scaled_timeout(timeout: float, scale: float) -> float:
    """The part of ``timeout`` an invocation may wait, scaled; the part kept for its calls, not."""
    from vercel_sync.settings import Settings
    from vercel_sync.wiring import time_budget

    kept = time_budget(Settings()).record_ms / 1000
    return kept + (timeout - kept) / scale


def _pause_bucket(stack: Stack, rate_limit: str, seconds: float) -> None:
    from vercel_sync.adapters.bucket_table import DynamoDbRateLimiter
    from vercel_sync.settings import RateLimit

    table = stack.resources.tables["SyncStateTable"].name
    limiter = DynamoDbRateLimiter(table, RateLimit.parse(rate_limit), dynamodb_client=stack.aws["dynamodb"])
    limiter.pause(stack.installation_id, seconds)


def worker(config: dict[str, Any]) -> dict[str, Any]:
    """One Lambda instance of the queue function: its own handler, polling until told to stop."""
    import boto3

    from local_runner.queue import QueuePoller
    from tools.lambda_local import load_handler

    handler = load_handler("queue_sync").lambda_handler
    sqs = _WatchedSqs(boto3.client("sqs"))
    poller = QueuePoller(
        sqs,
        config["queueUrl"],
        handler,
        batch_size=config["batchSize"],
        wait_time_seconds=1,
        timeout_seconds=config["timeoutSeconds"],
    )
    go, stop = Path(config["go"]), Path(config["stop"])
    Path(config["ready"]).touch()
    while not go.exists():
        time.sleep(0.005)
    invocations = errors = 0
    while not stop.exists():
        result = poller.poll_once()
        if result.delivered:
            invocations += 1
            errors += result.error is not None
    return {
        "pid": os.getpid(),
        "invocations": invocations,
        "errors": errors,
        "receivedMessageIds": sqs.received,
        "deleteFailures": sqs.delete_failures,
    }
