"""A burst on one installation through a standard queue dead-letters nothing (bench case 6, smaller).

The template's queue and redrive policy in moto server, the real queue handler in as many worker
processes as the trigger's MaximumConcurrency, polling as Lambda does, the emulator enforcing the
template's limit, time scaled ten times faster (``bench/case_burst.py`` says why the receives per
message stay as at full scale). As the burst arrives the installation's calls are paused (a 429's
Retry-After of 200 s at full scale: another caller used them), so every message received meanwhile
goes back: each return spends a receive of the dead-letter limit unless it is sent again as a new
message.
"""

from __future__ import annotations

import pytest

from bench import case_burst
from bench.fixtures import servers


@pytest.mark.integration
@pytest.mark.timeout(150)
def test_a_burst_waiting_for_the_rate_limit_sends_nothing_to_the_dead_letter_queue() -> None:
    sizes = case_burst.Sizes(changes=100, latency_ms=5.0, max_seconds=50.0, paused_seconds=20.0)
    with servers() as running:
        outcome = case_burst.run_burst(running, sizes)

    assert outcome["deadLettered"] == 0
    assert outcome["imported"] == sizes.changes
    assert outcome["puts"]["byStatus"].get("429", 0) == 0
