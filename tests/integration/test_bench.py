"""The benchmark harness (``make bench``) runs end to end at a tiny size. It measures nothing
here: it checks that each side is driven, counted and reported, and that the minimum number of
calls is computed as ``bench/case_calls.py`` defines it."""

from __future__ import annotations

from typing import Any

import pytest

from bench import case_coldstart, case_overhead, case_rate
from bench.fixtures import servers
from bench.report import table
from bench.workload import Change, deliver_stream, inserts, minimum_calls, mixed_changes, partner_item


def _change(number: int, *, revision: int = 0, note: int = 0) -> Change:
    return Change("MODIFY", partner_item("icfg", number, revision=revision, note=note), None, True)


def test_minimum_calls_counts_per_batch_the_resources_whose_newest_visible_state_changed() -> None:
    changes = [
        _change(1),  # batch 1: resource 1 new -> 1 call
        _change(1, revision=1),  # coalesced with the one above
        _change(2),  # resource 2 new -> 1 call
        _change(1, revision=1, note=1),  # batch 2: only a field Vercel does not see -> 0
        _change(2, revision=1),  # resource 2 changed -> 1 call
        _change(2, revision=2),  # coalesced
        _change(1, revision=2),  # batch 3: -> 1 call
        _change(1, revision=1),  # ...back to what Vercel holds: the batch's newest equals it -> 0
    ]
    assert minimum_calls(changes, batch_size=3) == 3
    assert minimum_calls(changes, batch_size=1) == 7
    assert minimum_calls(changes, batch_size=8) == 2


def test_mixed_changes_has_the_requested_share_of_invisible_changes() -> None:
    changes = mixed_changes("icfg", changes=100, resources=10, invisible_fraction=0.3)
    assert len(changes) == 100
    assert sum(not change.visible for change in changes) == 30
    assert {change.new["resourceId"] for change in changes if change.event_name == "INSERT"} == {
        f"db_{n:05d}" for n in range(10)
    }


def test_stream_delivery_resumes_at_the_reported_record_and_retries_a_failed_invocation() -> None:
    records = inserts("icfg", 7)
    batches: list[list[str]] = []
    outcomes: list[Any] = [
        {"batchItemFailures": [{"itemIdentifier": records[2]["dynamodb"]["SequenceNumber"]}]},  # 0, 1 done
        RuntimeError("the function failed"),  # the same batch again
        None,  # 2, 3, 4 done
        {"batchItemFailures": []},  # 5, 6 done
    ]

    def handler(event: dict[str, Any], context: Any) -> Any:
        batches.append([record["dynamodb"]["Keys"]["resourceId"]["S"] for record in event["Records"]])
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    delivery = deliver_stream(handler, records, batch_size=3, timeout_seconds=60)
    assert [batch[0] for batch in batches] == ["db_00000", "db_00002", "db_00002", "db_00005"]
    assert (delivery.invocations, delivery.reported, len(delivery.errors), delivery.left) == (4, 1, 1, 0)


@pytest.mark.integration
def test_the_suite_runs_at_a_tiny_size() -> None:
    """Cases 3 to 5, the ones with their own processes and scripts (cases 1 and 2 drive the
    stream, checked above; ``make bench ARGS=--quick`` runs every case), in under 20 s."""
    # The shared limiter spaces 2/1 s calls 0.625 s apart: a stall is declared only after 3 s
    # without an import (0.5 s declared a loaded machine's slow second call a stall).
    with servers() as running:
        results = [
            case_rate.run(
                running,
                case_rate.Sizes(
                    changes=3, calls=2, seconds=1.0, workers=1, latency_ms=0.0, stall_seconds=3.0, max_seconds=15.0
                ),
            ),
            case_overhead.run(running, case_overhead.Sizes(records=20, heap=False)),
            case_coldstart.run(running, case_coldstart.Sizes(runs=1, warm_up_rounds=0, variants=("ours", "bare"))),
        ]
    rate, overhead, cold = (result.raw for result in results)
    for side in ("ours", "naive"):
        assert rate[side]["ending"] in {"drained", "stalled"}
        assert rate[side]["imported"] >= 2  # the first window's calls went through
    assert overhead["ours"]["imported"] == overhead["naive"]["imported"] == 20
    assert set(overhead["ours"]["stagesUs"]) == {"parse", "validate", "transform"}
    assert cold["medians"]["ours"] > 0
    assert cold["medians"]["bare"] > 0
    rendered = table(results)
    for case in ("3 rate limit", "4 overhead", "5 cold start"):
        assert case in rendered
