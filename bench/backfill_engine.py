"""The backfill engine's own throughput: scan pages, classify, batch, checkpoint, with an
in-memory table and queue (no AWS, no pacing), so the figure is the engine's cost alone.

    python bench/backfill_engine.py [--items 100000] [--segments 8]

Against real DynamoDB and SQS a run is bound by their latency (a Scan page and a
SendMessageBatch each take milliseconds, in parallel per segment) and, by design, by the
pacing per installation (Vercel's 100 imports per 60 s by default).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from operations.checkpoints import FileCheckpoints
from vercel_sync.backfill.checkpoints import BackfillPlan, Key, start_or_resume
from vercel_sync.backfill.engine import Backfill, OutboundMessage, Page, ScannedItem


class MemoryTable:
    def __init__(self, items: int, segments: int) -> None:
        self.segments: list[list[ScannedItem]] = [[] for _ in range(segments)]
        for n in range(items):
            record = {
                "integrationConfigurationId": f"icfg_{n % 50:03}",
                "resourceId": f"res_{n:07}",
                "productId": "postgres",
                "name": f"resource-{n}",
                "status": "active",
                "metadata": {"region": "iad1", "storageGb": 20},
                "version": 1_790_000_000 + n,
            }
            self.segments[n % segments].append(ScannedItem({"id": {"N": str(n)}}, record))

    def approximate_item_count(self) -> int:
        return sum(len(s) for s in self.segments)

    def scan_page(self, segment: int, total_segments: int, start_key: Key | None, limit: int) -> Page:
        items = self.segments[segment]
        start = 0 if start_key is None else int(start_key["id"]["N"]) // total_segments + 1
        page = items[start : start + limit]
        return Page(page, page[-1].key if start + limit < len(items) else None)


class CountingQueue:
    def __init__(self) -> None:
        self.sent = 0

    def send_batch(self, messages: Sequence[OutboundMessage]) -> None:
        self.sent += len(messages)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--segments", type=int, default=8)
    args = parser.parse_args()
    table, queue = MemoryTable(args.items, args.segments), CountingQueue()
    with tempfile.TemporaryDirectory() as directory:
        store: Any = FileCheckpoints(Path(directory))
        plan = BackfillPlan("bench", "https://sqs.example/1/q.fifo", args.segments)
        state, _ = start_or_resume(store, "bench", plan)
        started = time.perf_counter()
        result = Backfill(state, source=table, sink=queue, checkpoints=store).run()
        seconds = time.perf_counter() - started
    assert result.complete
    assert queue.sent == args.items
    print(
        f"{args.items:,} items, {args.segments} segments: {seconds:.2f} s, {args.items / seconds:,.0f} items/s "
        f"(classify, batch, a checkpoint file write per batch of 10)"
    )


if __name__ == "__main__":
    main()
