"""The one Vercel call policy, for the import and for rotation (docs/architecture.md, "Calls")."""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass, field
from datetime import UTC, datetime

from vercel_sync.deadline import Deadline
from vercel_sync.errors import InstallationUnavailableError, PermanentSyncError, TransientSyncError
from vercel_sync.ports import CallObserver, RateLimiter, SecretStore, StableDigestKeys
from vercel_sync.sync.crew import waiting


@dataclass(frozen=True)
class Clock:
    """The time the services read and wait out; tests hand in fakes, so waits take no real time."""

    now: Callable[[], datetime] = lambda: datetime.now(UTC)
    monotonic: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    uniform: Callable[[float, float], float] = random.uniform  # jitter, not a secret


@dataclass(frozen=True)
class RetryPolicy:
    """Retries of one record's Vercel call inside an invocation."""

    max_calls: int = 6
    base_delay_seconds: float = 0.2
    max_delay_seconds: float = 20.0

    def backoff_seconds(self, failed_calls: int, uniform: Callable[[float, float], float]) -> float:
        """Full jitter: uniform in [0, min(cap, base * 2^(n-1))] after the n-th failed call."""
        ceiling = min(self.max_delay_seconds, self.base_delay_seconds * 2 ** (failed_calls - 1))
        return uniform(0.0, ceiling)


class Installation:
    """One installation's calls in one batch (or event): its token, a 429 pause, a stop (403, 404, 410)."""

    def __init__(self, installation_id: str) -> None:
        self.id = installation_id
        self.lock = threading.Lock()
        self.token: str | None = None
        self.tokens_used: list[str] = []
        self.token_error: Exception | None = None
        self.refreshed = False
        self.paused_until = 0.0  # monotonic
        self.deferred = 0  # calls sent back for want of a call under the rate limit
        self.stopped: InstallationUnavailableError | None = None


@dataclass(slots=True)
class Tries:
    calls: int = 0  # Vercel calls made for one resource in this invocation


@dataclass
class Calls:
    """The Vercel calls of one batch (or rotation event), by the policy docs/architecture.md, "Calls", sets out."""

    secrets: SecretStore
    rate_limiter: RateLimiter | None
    retry: RetryPolicy
    clock: Clock
    deadline: Deadline
    _: KW_ONLY
    call_interval_seconds: float = 0.0
    max_limiter_wait_seconds: float = math.inf
    pause_locally: bool = True
    _installations: dict[str, Installation] = field(default_factory=dict, init=False)

    def installation(self, installation_id: str) -> Installation:
        known = self._installations.get(installation_id)
        return known or self._installations.setdefault(installation_id, Installation(installation_id))

    def token(self, installation: Installation) -> str:
        """The installation's token, read once per batch."""
        token = installation.token  # no lock: one attribute read is atomic
        if token is not None:
            return token
        with installation.lock:
            if installation.token is not None:
                return installation.token
            if installation.token_error is not None:
                raise installation.token_error
            self.deadline.require("aws_read", "reading the installation token")
            try:
                with self.deadline.limit("aws_read"), waiting("token"):
                    token = self.secrets.installation_token(installation.id)
            except (PermanentSyncError, TransientSyncError) as error:
                installation.token_error = error  # the rest of the batch gets the same answer
                raise
            installation.token = token
            installation.tokens_used.append(token)
            return token

    def digest_key(self, installation: Installation, token: str) -> str:
        """What keys change suppression's digests: the token, unless the store has a steadier secret."""
        if isinstance(self.secrets, StableDigestKeys):
            return self.secrets.digest_key(installation.id)
        return token

    def call[S](
        self,
        installation: Installation,
        send: Callable[..., object],
        subject: S,
        observer: CallObserver[S],
        tries: Tries,
        *,
        rate_limiter: RateLimiter | None = None,
    ) -> float:
        """``send(token=...)`` until Vercel accepts it (after :meth:`token`); the latency in ms, or the last failure.
        ``rate_limiter``: the buckets of an operation Vercel limits on its own (default: the batch's)."""
        limiter = rate_limiter if rate_limiter is not None else self.rate_limiter
        failed_calls = 0
        while True:
            token = self._ready(installation, limiter)
            started = time.perf_counter()
            tries.calls += 1
            try:
                with self.deadline.limit("vercel_call"), waiting("vercel"):
                    send(token=token)
                if installation.refreshed and installation.token == token:
                    # The re-read token worked: when it expires (short-lived), it gets a re-read of its own.
                    with installation.lock:
                        installation.refreshed = installation.token != token
                return (time.perf_counter() - started) * 1000
            except TransientSyncError as error:
                if error.http_status == 401:
                    refreshed = self._refresh_token(installation, token, observer)
                    observer.call_failed(subject, error, retry_in_seconds=0.0 if refreshed else None)
                    if refreshed:
                        continue
                    raise
                failed_calls += 1
                delay = self._retry_delay(installation, error, failed_calls, limiter)
                observer.call_failed(subject, error, retry_in_seconds=delay)
                if delay is None:
                    raise
                self.sleep(delay)

    def sleep(self, seconds: float) -> None:
        with waiting("sleep", seconds):
            self.clock.sleep(seconds)

    def _ready(self, installation: Installation, limiter: RateLimiter | None) -> str:
        """The token to call with, once a pause is waited out and the rate limiter gave a call."""
        self._wait_while_paused(installation)
        if limiter is not None:
            wait = min(self.max_limiter_wait_seconds, self.deadline.spare_seconds("vercel_call"))
            with waiting("limiter"):
                acquired = limiter.acquire(installation.id, max_wait_seconds=wait)
            if not acquired:
                raise TransientSyncError(
                    "no call left under the rate limit in this invocation: back to the source",
                    retry_after_seconds=self._come_back_in(installation, 0.0),
                    rate_limited=True,
                )
        self.deadline.require("vercel_call", "the Vercel call")
        token = installation.token
        assert token is not None
        return token

    def _refresh_token[S](self, installation: Installation, used: str, observer: CallObserver[S]) -> bool:
        """After a 401 with ``used``: True if a newer token is now at hand (re-read once per batch)."""
        with installation.lock:
            if installation.token != used:
                return True  # another resource of this installation has re-read it already
            if installation.refreshed:
                return False
            installation.refreshed = True
            with self.deadline.bound("aws_read", "re-reading the installation token"), waiting("token"):
                token = self.secrets.installation_token(installation.id, force_fetch=True)
            installation.token = token
            installation.tokens_used.append(token)
        observer.token_refreshed(installation.id)
        return True

    def _retry_delay(
        self, installation: Installation, error: TransientSyncError, failed_calls: int, limiter: RateLimiter | None
    ) -> float | None:
        """The wait before the next call (never sooner than ``Retry-After``), or None: no retry here."""
        if error.http_status == 429:
            self._pause(installation, error, failed_calls, limiter)
        delay = self.retry.backoff_seconds(failed_calls, self.clock.uniform)
        if error.retry_after_seconds is not None:
            delay = max(delay, error.retry_after_seconds)
        if failed_calls >= self.retry.max_calls or delay > self.deadline.spare_seconds("vercel_call"):
            return None
        return delay

    def _pause(
        self, installation: Installation, error: TransientSyncError, failed_calls: int, limiter: RateLimiter | None
    ) -> None:
        seconds = error.retry_after_seconds
        if seconds is None:
            seconds = self.retry.backoff_seconds(failed_calls, lambda _low, high: high)
        if self.pause_locally:
            with installation.lock:
                installation.paused_until = max(installation.paused_until, self.clock.monotonic() + seconds)
        # Best effort: the bucket's own spacing still holds.
        if limiter is not None and self.deadline.allows_best_effort_aws_call():
            with self.deadline.limit("aws_read"):
                limiter.pause(installation.id, seconds)

    def _wait_while_paused(self, installation: Installation) -> None:
        while True:
            wait = installation.paused_until - self.clock.monotonic()
            if wait <= 0:
                return
            if wait > self.deadline.spare_seconds("vercel_call"):
                raise TransientSyncError(
                    f"Vercel asked to wait {wait:.1f} s (429) and this invocation cannot: back to the source",
                    http_status=429,
                    retry_after_seconds=self._come_back_in(installation, wait),
                    rate_limited=True,
                )
            self.sleep(wait)

    def _come_back_in(self, installation: Installation, wait: float) -> float:
        """When a call sent back should return: after ``wait``, one call interval after the previous one."""
        with installation.lock:
            installation.deferred += 1
            return wait + installation.deferred * self.call_interval_seconds
