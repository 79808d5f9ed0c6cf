"""The backfill: every partner table item through the partner events queue, resumable."""
