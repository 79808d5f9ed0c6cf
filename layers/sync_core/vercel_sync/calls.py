"""The Vercel call policy: retries inside an invocation."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class RetryPolicy:
    """Retries of one record's Vercel call inside an invocation (the remaining time bounds them too)."""

    max_calls: int = 6
    base_delay_seconds: float = 0.2
    max_delay_seconds: float = 20.0

    def backoff_seconds(self, failed_calls: int, uniform: Callable[[float, float], float]) -> float:
        """Full jitter: uniform in [0, min(cap, base * 2^(n-1))] after the n-th failed call."""
        ceiling = min(self.max_delay_seconds, self.base_delay_seconds * 2 ** (failed_calls - 1))
        return uniform(0.0, ceiling)

    def delay_seconds(
        self, failed_calls: int, retry_after_seconds: float | None, uniform: Callable[[float, float], float]
    ) -> float:
        """The wait before the next call: the backoff, never sooner than Vercel's ``Retry-After``."""
        delay = self.backoff_seconds(failed_calls, uniform)
        return delay if retry_after_seconds is None else max(delay, retry_after_seconds)
