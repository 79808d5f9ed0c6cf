"""Case 2, calls: many changes over few resources, some of which change nothing Vercel sees.

``changes`` changes over ``resources`` resources (each resource's first change its INSERT, the
rest MODIFYs; exactly ``invisible_fraction`` of all changes touch only ``internalNote``, a field
outside the import body; every change bumps ``version``), shuffled with a fixed seed, arrive as
DynamoDB stream batches of ``batch_size`` (the template's stream batch size), one invocation
each, in order. The template's environment is used as deployed, so ``SYNC_STATE_TABLE`` is the
template's sync-state table in moto server (change suppression lives there); the rate limit is
set very high at both ends, since calls, not time, are measured here.

The minimum (``workload.minimum_calls``): a sync cannot wait for batches it has not been given,
so for each batch, each resource whose newest change in that batch shows Vercel something other
than what Vercel last received for it (nothing, before its first import) needs exactly one
call; nothing else needs any. "What Vercel sees" is the record's import-body fields
(``workload.VERCEL_VISIBLE_FIELDS``), compared independently of the code under test.

Each side also has to leave Vercel (the emulator) holding every resource's newest state.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from bench import sides
from bench.fixtures import Servers, run_child
from bench.report import CaseResult, Row, ratio, seconds
from bench.workload import final_views, minimum_calls, mixed_changes

TIMEOUT_SECONDS = 60.0  # the template's


@dataclass(frozen=True)
class Sizes:
    changes: int = 1000
    resources: int = 100
    invisible_fraction: float = 0.3
    batch_size: int = 100
    seed: int = 5


QUICK = Sizes(changes=60, resources=10, batch_size=20)


def run(servers: Servers, sizes: Sizes) -> CaseResult:
    outcomes: dict[str, dict[str, Any]] = {}
    for side in sides.SIDES:
        # A fresh stack (state table) per side, so neither inherits the other's digests.
        stack = servers.stack(f"calls-{side}", VERCEL_RATE_LIMIT="1000000000/60")
        servers.emulator.prepare(stack.installation_id, stack.token)
        outcomes[side] = run_child(
            "bench.case_calls:child",
            {"side": side, "installationId": stack.installation_id, "emulatorUrl": servers.emulator.url}
            | {"sizes": sizes.__dict__},
            stack.environment,
        )
    changes = mixed_changes(
        "icfg",
        changes=sizes.changes,
        resources=sizes.resources,
        invisible_fraction=sizes.invisible_fraction,
        seed=sizes.seed,
    )
    minimum = minimum_calls(changes, sizes.batch_size)
    visible = sum(change.visible for change in changes)
    ours, naive = outcomes["ours"], outcomes["naive"]
    rows = [
        Row(
            "2 calls",
            f"PUT calls, {sizes.changes} changes",
            str(ours["puts"]["total"]),
            str(naive["puts"]["total"]),
            f"{minimum} minimum",
            ratio(ours["puts"]["total"] / minimum),
            "= minimum",
            ours["puts"]["total"] == minimum and ours["finalStateCorrect"],
        ),
        Row(
            "",
            "Vercel holds the newest state",
            "yes" if ours["finalStateCorrect"] else f"NO ({ours['wrongResources']} wrong)",
            "yes" if naive["finalStateCorrect"] else f"NO ({naive['wrongResources']} wrong)",
            f"all {sizes.resources}",
            "",
            "yes",
            ours["finalStateCorrect"],
        ),
    ]
    notes = [
        f"2: {sizes.changes} changes over {sizes.resources} resources ({visible} visible to Vercel, "
        f"{sizes.changes - visible} touching only a field outside the import body), stream batches of "
        f"{sizes.batch_size}, the state table in moto server. Minimum = sum over batches of the resources whose "
        f"newest change in the batch differs (in its import-body fields) from what Vercel last received: {minimum}. "
        f"Invocations: ours {ours['delivery']['invocations']}, naive {naive['delivery']['invocations']}; "
        f"wall time ours {seconds(ours['wallSeconds'])}, naive {seconds(naive['wallSeconds'])} "
        "(no latency; informational).",
    ]
    return CaseResult("calls", rows, notes, {"minimum": minimum, "visibleChanges": visible, **outcomes})


def child(config: dict[str, Any]) -> dict[str, Any]:
    import httpx

    from bench.fixtures import PutCounts
    from bench.workload import deliver_stream, stream_records

    sizes = Sizes(**config["sizes"])
    installation_id = config["installationId"]
    changes = mixed_changes(
        installation_id,
        changes=sizes.changes,
        resources=sizes.resources,
        invisible_fraction=sizes.invisible_fraction,
        seed=sizes.seed,
    )
    records = stream_records([(change.event_name, change.new, change.old) for change in changes])
    handler = sides.handler(config["side"], "stream")
    started = time.perf_counter()
    delivery = deliver_stream(handler, records, batch_size=sizes.batch_size, timeout_seconds=TIMEOUT_SECONDS)
    wall = time.perf_counter() - started

    control = httpx.Client(base_url=config["emulatorUrl"] + "/_emulator", timeout=30)
    puts = PutCounts.from_calls(control.get("/calls").json(), installation_id)
    held = {
        entry["resourceId"]: entry["body"]
        for entry in control.get("/imports").json()["imports"]
        if entry["installationId"] == installation_id
    }
    expected = final_views(changes)
    # The body carries the visible fields as imported (status mapped onto Vercel's word); compare
    # the ones the changes move, plus the name.
    wrong = 0
    for resource_id, view in expected.items():
        body = held.get(resource_id)
        newest = {k: v for k, v in json.loads(view).items() if k in ("name", "metadata")}
        if body is None or {k: body.get(k) for k in newest} != newest:
            wrong += 1
    return {
        "wallSeconds": wall,
        "delivery": delivery.as_dict(),
        "puts": puts.as_dict(),
        "finalStateCorrect": wrong == 0,
        "wrongResources": wrong,
    }
