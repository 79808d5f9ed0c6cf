"""Token buckets: GCRA planning (``bucket``), call slots for waiting threads (``limiter``), kept in
memory or in the sync-state table (``adapters/bucket_table.py``). The argument: docs/rate-limiter.md."""
