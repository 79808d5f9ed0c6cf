"""Case 3, rate limit: a backlog on one installation, drained by concurrent workers under the limit.

``changes`` messages (one per distinct resource, all of one installation) wait in a standard SQS
queue in moto server, created from the template (visibility timeout 360 s, redrive to its
dead-letter queue after 5 receives). ``workers`` processes, each like one Lambda instance (its
own interpreter, handler module and service), poll it as Lambda's SQS mapping does
(``local_runner.queue.QueuePoller``: batches of 10, delete what succeeded, leave what was reported),
sharing the template's sync-state table. The emulator enforces ``calls`` imports per ``seconds``
for the installation (fixed windows, opened by the first call after the last one ended) and
adds ``latency_ms`` to each call; ``VERCEL_RATE_LIMIT`` says the same limit to our side. Nothing
else is set for the shared rate limiter: it needs only the handler and this environment.

The run ends when every resource is imported (drained), or when no import has succeeded for
``stall_seconds`` while no message is visible in the queue (stalled: what is left waits out its
visibility timeout, 360 s, far beyond this run), or after ``max_seconds``.

Achieved rate = resources imported / seconds from the start signal to the last of them, as a
fraction of the limit (calls / seconds). The emulator's fixed windows let a perfect client
drain ``n`` calls in ``(ceil(n / calls) - 1) x seconds`` plus one call (the first window opens
at the first call), so the ideal is slightly *above* 100% of the nominal limit. A stalled run
has no drain rate: its row says how many were imported before it stalled.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench import sides
from bench.fixtures import Servers, Stack, run_workers
from bench.report import CaseResult, Row, seconds

if TYPE_CHECKING:
    from types_boto3_sqs.literals import QueueAttributeNameType
    from types_boto3_sqs.type_defs import SendMessageBatchRequestEntryTypeDef


@dataclass(frozen=True)
class Sizes:
    changes: int = 600
    calls: int = 50
    seconds: float = 5.0
    workers: int = 4
    latency_ms: float = 50.0
    stall_seconds: float = 15.0
    max_seconds: float = 240.0
    target_fraction: float = 0.9


QUICK = Sizes(changes=12, calls=6, seconds=1.0, workers=2, latency_ms=5.0, stall_seconds=3.0, max_seconds=20.0)


def run(servers: Servers, sizes: Sizes) -> CaseResult:
    outcomes: dict[str, dict[str, Any]] = {side: run_side(servers, sizes, side) for side in sides.SIDES}
    limit = sizes.calls / sizes.seconds
    ideal_seconds = (math.ceil(sizes.changes / sizes.calls) - 1) * sizes.seconds + sizes.latency_ms / 1000
    ideal_fraction = sizes.changes / max(ideal_seconds, 1e-9) / limit

    def rate_cell(outcome: dict[str, Any]) -> str:
        if outcome["ending"] != "drained":
            return f"{outcome['ending']} at {outcome['imported']}/{sizes.changes}"
        return f"{outcome['fractionOfLimit']:.0%} ({seconds(outcome['drainSeconds'])})"

    ours, naive = outcomes["ours"], outcomes["naive"]
    ours_fraction = ours["fractionOfLimit"] if ours["ending"] == "drained" else None
    rows = [
        Row(
            "3 rate limit",
            f"rate, % of {sizes.calls}/{sizes.seconds:g} s",
            rate_cell(ours),
            rate_cell(naive),
            f"{ideal_fraction:.0%} ideal ({seconds(ideal_seconds)})",
            "" if ours_fraction is None else f"{ours_fraction / ideal_fraction:.0%}",
            f">= {sizes.target_fraction:.0%} of limit",
            ours_fraction is not None and ours_fraction >= sizes.target_fraction,
        ),
        Row(
            "",
            "429s received",
            str(ours["puts"]["byStatus"].get("429", 0)),
            str(naive["puts"]["byStatus"].get("429", 0)),
            "0",
            "",
            "0",
            ours["puts"]["byStatus"].get("429", 0) == 0,
        ),
        Row(
            "",
            "messages in the DLQ",
            str(ours["deadLettered"]),
            str(naive["deadLettered"]),
            "0",
            "",
            "0",
            ours["deadLettered"] == 0,
        ),
    ]

    def describe(name: str, outcome: dict[str, Any]) -> str:
        return (
            f"{name}: {outcome['ending']} after {seconds(outcome['runSeconds'])}, {outcome['imported']} imported, "
            f"{outcome['puts']['total']} PUTs {outcome['puts']['byStatus']}, {outcome['invocations']} invocations "
            f"({outcome['wholeInvocationFailures']} failed whole), {outcome['leftInQueue']} left in the queue, "
            f"{outcome['receivedTwice']} deliveries of a message already received, "
            f"{outcome['deleteFailures']} deletes refused"
        )

    notes = [
        f"3: {sizes.changes} distinct resources of one installation in a standard queue (from the template), "
        f"{sizes.workers} worker processes polling it (batches of 10), "
        f"emulator limit {sizes.calls}/{sizes.seconds:g} s "
        f"(VERCEL_RATE_LIMIT the same), latency {sizes.latency_ms:g} ms, the state table shared in moto server. "
        f"{describe('Ours', ours)}; {describe('naive', naive)}. A stalled run stopped after {sizes.stall_seconds:g} s "
        "without an import and nothing visible in the queue (the rest wait out the 360 s visibility timeout). "
        "Timing: wall clock on a shared 2-core machine with the workers, moto server and the emulator on it.",
    ]
    raw: dict[str, Any] = {
        "idealSeconds": ideal_seconds,
        "idealFraction": ideal_fraction,
        "limit": {"calls": sizes.calls, "seconds": sizes.seconds},
        "changes": sizes.changes,
        "workers": sizes.workers,
        **outcomes,
    }
    return CaseResult("rate", rows, notes, raw)


def run_side(servers: Servers, sizes: Sizes, side: str) -> dict[str, Any]:
    stack = servers.stack(f"rate-{side}", VERCEL_RATE_LIMIT=f"{sizes.calls}/{sizes.seconds:g}")
    servers.emulator.prepare(
        stack.installation_id, stack.token, latency_ms=sizes.latency_ms, rate_limit=(sizes.calls, sizes.seconds)
    )
    queue = stack.resources.queues["PartnerEventsQueue"]
    send_backlog(stack, queue.url, sizes.changes)
    configs = [{"side": side, "queueUrl": queue.url} for _ in range(sizes.workers)]
    outcome, results = run_workers(
        "bench.case_rate:worker", configs, stack.environment, lambda go: _watch(servers, stack, sizes, go)
    )
    dead_letter = stack.resources.queues["PartnerEventsDeadLetterQueue"].url
    outcome["deadLettered"] = _queue_depth(stack, dead_letter)
    outcome["leftInQueue"] = _queue_depth(stack, queue.url)
    received = [message_id for result in results for message_id in result.pop("receivedMessageIds")]
    outcome["workers"] = results
    outcome["invocations"] = sum(result["invocations"] for result in results)
    outcome["wholeInvocationFailures"] = sum(result["errors"] for result in results)
    outcome["receivedTwice"] = len(received) - len(set(received))
    outcome["neverReceived"] = sizes.changes - len(set(received))
    outcome["deleteFailures"] = sum(result["deleteFailures"] for result in results)
    return outcome


def send_backlog(stack: Stack, queue_url: str, count: int) -> None:
    from bench.workload import partner_item

    sqs = stack.aws["sqs"]
    for start in range(0, count, 10):
        entries: list[SendMessageBatchRequestEntryTypeDef] = [
            {"Id": str(n), "MessageBody": json.dumps(partner_item(stack.installation_id, n))}
            for n in range(start, min(start + 10, count))
        ]
        response = sqs.send_message_batch(QueueUrl=queue_url, Entries=entries)
        if response.get("Failed"):
            raise RuntimeError(f"moto refused {len(response['Failed'])} messages")


def _watch(servers: Servers, stack: Stack, sizes: Sizes, go: Path) -> dict[str, Any]:
    emulator, installation_id = servers.emulator, stack.installation_id
    go.touch()
    started = time.monotonic()
    imported, last_progress, ending = 0, started, "horizon"
    timeline: list[tuple[float, int, int]] = []  # seconds since the start, 200s and 429s so far
    while True:
        time.sleep(0.1)
        now = time.monotonic()
        counts = emulator.put_counts(installation_id)
        timeline.append((round(now - started, 2), counts.by_status.get("200", 0), counts.by_status.get("429", 0)))
        if counts.resources_imported > imported:
            imported, last_progress = counts.resources_imported, now
        if imported >= sizes.changes:
            ending = "drained"
            break
        if now - last_progress > sizes.stall_seconds and _queue_visible(stack) == 0:
            ending = "stalled"
            break
        if now - started > sizes.max_seconds:
            break
    ended = time.monotonic()
    time.sleep(0.5)  # let calls in flight be answered before counting
    counts = emulator.put_counts(installation_id)
    drain = last_progress - started
    limit = sizes.calls / sizes.seconds
    return {
        "ending": ending,
        "imported": counts.resources_imported,
        "drainSeconds": drain,
        "runSeconds": ended - started,
        "fractionOfLimit": (imported / drain / limit) if ending == "drained" and drain > 0 else None,
        "puts": counts.as_dict(),
        "timeline": timeline,
    }


def _queue_visible(stack: Stack) -> int:
    queue_url = stack.resources.queues["PartnerEventsQueue"].url
    attributes = stack.aws["sqs"].get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages"]
    )
    return int(attributes["Attributes"]["ApproximateNumberOfMessages"])


def _queue_depth(stack: Stack, queue_url: str) -> int:
    names: list[QueueAttributeNameType] = [
        "ApproximateNumberOfMessages",
        "ApproximateNumberOfMessagesNotVisible",
        "ApproximateNumberOfMessagesDelayed",
    ]
    attributes = stack.aws["sqs"].get_queue_attributes(QueueUrl=queue_url, AttributeNames=names)["Attributes"]
    return sum(int(attributes.get(name, "0")) for name in names)


def worker(config: dict[str, Any]) -> dict[str, Any]:
    """One Lambda instance: its own handler and service, polling the shared queue until told to stop."""
    import boto3

    from local_runner.queue import QueuePoller

    handler = sides.handler(config["side"], "queue")
    sqs = _WatchedSqs(boto3.client("sqs"))
    poller = QueuePoller(sqs, config["queueUrl"], handler, batch_size=10, wait_time_seconds=1)
    go, stop = Path(config["go"]), Path(config["stop"])
    Path(config["ready"]).touch()
    while not go.exists():
        time.sleep(0.005)
    invocations = records = reported = errors = 0
    while not stop.exists():
        result = poller.poll_once()
        if result.delivered:
            invocations += 1
            records += result.records
            reported += len(result.reported)
            errors += result.error is not None
    return {
        "pid": os.getpid(),
        "invocations": invocations,
        "records": records,
        "reported": reported,
        "errors": errors,  # invocations that failed as a whole (the naive side's when all its records fail)
        "receivedMessageIds": sqs.received,
        "deleteFailures": sqs.delete_failures,
    }


class _WatchedSqs:
    """The worker's SQS client, noting which messages it received and which deletes SQS refused
    (so the run can tell a message delivered twice, as a standard queue may, from a harness fault)."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.received: list[str] = []
        self.delete_failures = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def receive_message(self, **request: Any) -> Any:
        response = self._client.receive_message(**request)
        self.received.extend(message["MessageId"] for message in response.get("Messages", []))
        return response

    def delete_message_batch(self, **request: Any) -> Any:
        response = self._client.delete_message_batch(**request)
        self.delete_failures += len(response.get("Failed", []))
        return response
