"""Small adapters at the edges: Vercel over httpx, Secrets Manager, the failed-records queue.

The pipeline is handed instances (see ``vercel_sync.runtime``), so tests swap them for fakes.
"""
