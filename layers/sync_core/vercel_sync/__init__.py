"""Vercel Resource Sync: the shared core of the sync functions (a Lambda layer).

Pure modules (no AWS or HTTP library): ``settings``, ``payload``, ``partner_schema``,
``transform``, ``changes``, ``errors``, ``redaction``, ``paths``, ``failed_record``.
Edges: ``adapters`` (Vercel over httpx, Secrets Manager, SQS), ``pipeline`` and ``batch``
(Powertools batch processing), ``observability`` and ``runtime`` (wiring per container).
"""

PRODUCT_NAME = "vercel-resource-sync"
__version__ = "0.1.0"
