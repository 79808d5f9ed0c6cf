"""The benchmark suite: ``make bench`` or ``python -m bench``; see ``bench/suite.py``.

Five cases, each run side by side in one go: our handlers (``functions/*/app.py``), a naive
baseline (``bench/naive.py``: one PUT per record in a plain loop) and the ideal bound:

1. ``case_latency``: latency-bound wall time vs ``resources x latency / MAX_CONCURRENCY``;
2. ``case_calls``: calls made vs the minimum (``workload.minimum_calls``);
3. ``case_rate``: achieved rate under a shared limit, and 429s, with concurrent workers;
4. ``case_overhead``: µs per record and peak memory with no network;
5. ``case_coldstart``: a fresh process's first record vs the bare floor.

It prints a table; it is not a test (``tests/integration/test_bench.py`` only checks that the
harness runs at a tiny size). ``emulator_load.py`` is the emulator's own throughput.
"""
