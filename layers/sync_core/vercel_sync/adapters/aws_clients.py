"""The boto3 clients of one container: one session (its endpoints data loaded once), each client built on
first use under a lock, then shared. botocore fixes timeouts per client, so a service has one client per
timeout tier, and each call goes to the longest tier that fits its step's time left (docs/architecture.md, "Deadline").
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from vercel_sync.deadline import seconds_left

# botocore's standard retry mode waits at most 1 s before a second attempt (throttling's base),
# raised to what the answer's ``x-amz-retry-after`` asks, by at most 5 s more.
STANDARD_MODE_MAX_FIRST_BACKOFF_SECONDS = 6.0


@dataclass(frozen=True)
class AwsTimeouts:
    """A tier of timeouts: short, where botocore's defaults (60 s, legacy retries) could outlast any invocation."""

    connect_seconds: float
    read_seconds: float
    max_attempts: int

    @property
    def worst_case_seconds(self) -> float:
        """Every attempt at both timeouts, with the longest backoff between them."""
        attempts = self.max_attempts * (self.connect_seconds + self.read_seconds)
        return attempts + (self.max_attempts - 1) * STANDARD_MODE_MAX_FIRST_BACKOFF_SECONDS

    def config(self) -> Any:
        from botocore.config import Config

        return Config(
            connect_timeout=self.connect_seconds,
            read_timeout=self.read_seconds,
            retries={"mode": "standard", "max_attempts": self.max_attempts},
        )


# Longest first. The shortest is what every step keeps free for parking the record after it.
AWS_TIMEOUT_TIERS: tuple[AwsTimeouts, ...] = (
    AwsTimeouts(connect_seconds=1.0, read_seconds=3.0, max_attempts=2),
    AwsTimeouts(connect_seconds=1.0, read_seconds=3.0, max_attempts=1),
    AwsTimeouts(connect_seconds=0.5, read_seconds=1.5, max_attempts=1),
)
SHORTEST_AWS_TIMEOUTS = AWS_TIMEOUT_TIERS[-1]
# The backfill has no invocation to protect, only a job to finish: patient retries.
PATIENT_AWS_TIMEOUTS = AwsTimeouts(connect_seconds=3.0, read_seconds=20.0, max_attempts=8)
# boto3's default session (a LazyClient's without a factory) cannot build clients in several threads at once.
_DEFAULT_SESSION_LOCK = threading.Lock()


class AwsClients:
    def __init__(self, tiers: Sequence[AwsTimeouts] = AWS_TIMEOUT_TIERS, session: Any = None) -> None:
        self._tiers = tuple(sorted(tiers, key=lambda tier: tier.worst_case_seconds, reverse=True))
        self._configs = [tier.config() for tier in self._tiers]
        self._session = session  # built with the first client
        self._clients: dict[tuple[str, int], Any] = {}
        self._bound: dict[str, DeadlineBoundClient] = {}
        self._lock = threading.Lock()

    def tier_for(self, seconds: float | None) -> int:
        """The longest tier whose worst case fits ``seconds`` (None: no bound), else the shortest."""
        if seconds is None:
            return 0
        for index, tier in enumerate(self._tiers):
            if tier.worst_case_seconds <= seconds:
                return index
        return len(self._tiers) - 1

    def tier_client(self, service: str, tier: int) -> Any:
        client = self._clients.get((service, tier))  # a dict read: no lock once built
        if client is not None:
            return client
        with self._lock:
            client = self._clients.get((service, tier))
            if client is None:
                if self._session is None:
                    import boto3.session

                    self._session = boto3.session.Session()
                client = self._session.client(service, config=self._configs[tier])
                self._clients[(service, tier)] = client
            return client

    def client(self, service: str) -> DeadlineBoundClient:
        """The client of ``service`` the adapters hold: each call bounded by its step's time left."""
        with self._lock:
            return self._bound.setdefault(service, DeadlineBoundClient(self, service))

    def factory(self, service: str) -> Callable[[], Any]:
        """A callable giving the shared client of ``service``, built when first called."""
        return lambda: self.client(service)


class DeadlineBoundClient:
    """A boto3 client of one service whose operations (``client.send_message``) are the tier's that fits the
    calling step's time left."""

    __slots__ = ("_clients", "_service")

    def __init__(self, clients: AwsClients, service: str) -> None:
        self._clients = clients
        self._service = service

    def __getattr__(self, name: str) -> Any:
        clients = self._clients
        return getattr(clients.tier_client(self._service, clients.tier_for(seconds_left())), name)


class LazyClient:
    """An adapter's client, built on first call under a lock: the one handed in, else the container's
    (``factory``, from :class:`AwsClients`), else one of its own with ``boto_config``."""

    def __init__(
        self, service: str, client: Any = None, boto_config: Any = None, factory: Callable[[], Any] | None = None
    ) -> None:
        self._service = service
        self._client = client
        self._boto_config = boto_config
        self._factory = factory
        self._lock = threading.Lock()

    def __call__(self) -> Any:
        if self._client is None:
            with self._lock:
                if self._client is None and self._factory is not None:
                    self._client = self._factory()
                elif self._client is None:
                    import boto3

                    build: Any = boto3.client  # the service is a plain str, not its typed literal
                    with _DEFAULT_SESSION_LOCK:
                        self._client = build(self._service, config=self._boto_config)
        return self._client
