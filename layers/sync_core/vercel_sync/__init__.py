"""Vercel Resource Sync: the shared core of the functions (a Lambda layer); docs/architecture.md maps it."""

PRODUCT_NAME = "vercel-resource-sync"
__version__ = "0.1.0"
