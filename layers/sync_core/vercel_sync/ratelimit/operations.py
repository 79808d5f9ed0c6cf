"""Buckets of one Vercel operation's own in the shared rate limiter (``<operation>/<installation id>``):
Vercel limits secrets updates, deletions and retrievals apart from imports (reference: rate limits)."""

from __future__ import annotations

from typing import ClassVar

from vercel_sync.ports import RateLimiter


class OperationBuckets:
    operation: ClassVar[str]

    def __init__(self, limiter: RateLimiter) -> None:
        self._limiter = limiter

    def acquire(self, installation_id: str, *, max_wait_seconds: float) -> bool:
        return self._limiter.acquire(f"{self.operation}/{installation_id}", max_wait_seconds=max_wait_seconds)

    def pause(self, installation_id: str, seconds: float) -> None:
        self._limiter.pause(f"{self.operation}/{installation_id}", seconds)


class SecretsUpdateBuckets(OperationBuckets):
    """Rotation's (``secrets-update/<id>``), apart from the imports'."""

    operation = "secrets-update"


class DeletionBuckets(OperationBuckets):
    """The removals' in delete mode (``delete/<id>``), apart from the imports'."""

    operation = "delete"


class ListBuckets(OperationBuckets):
    """Reconciliation's resource lists (``list/<id>``): Vercel allows 1000 retrievals per 60 s."""

    operation = "list"
