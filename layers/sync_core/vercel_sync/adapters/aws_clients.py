"""The boto3 clients of one container: one session, each client built on first use, then shared.

The first client of a boto3 session lists botocore's data folder and loads the endpoints and
partitions (``endpoints.json`` alone is 1.2 MB) before the service's own model; the session's
loader keeps them, so a second client costs only its service model. Measured on a cold start
(``bench`` case 5's scripts): the DynamoDB client took 80-130 ms on a session of its own
(``boto3.client``, beside the one Powertools built for Secrets Manager), 35-60 ms on the shared
one. Clients are thread-safe; building one is not, so it happens under a lock (the rate limiter
builds its client in a thread of its own).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any


class AwsClients:
    def __init__(self, boto_config: Any = None, session: Any = None) -> None:
        self._boto_config = boto_config
        self._session = session  # built with the first client
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()

    def client(self, service: str) -> Any:
        with self._lock:
            client = self._clients.get(service)
            if client is None:
                if self._session is None:
                    import boto3.session

                    self._session = boto3.session.Session()
                client = self._clients[service] = self._session.client(service, config=self._boto_config)
            return client

    def factory(self, service: str) -> Callable[[], Any]:
        """A callable giving the shared client of ``service``, built when first called."""
        return lambda: self.client(service)


class LazyClient:
    """An adapter's client of ``service``, built on first call: the client handed in, else the
    container's shared one (``factory``, from :class:`AwsClients`), else one of its own with
    ``boto_config``. Built under a lock: adapters are called from several threads."""

    def __init__(
        self,
        service: str,
        client: Any = None,
        boto_config: Any = None,
        factory: Callable[[], Any] | None = None,
    ) -> None:
        self._service = service
        self._client = client
        self._boto_config = boto_config
        self._factory = factory
        self._lock = threading.Lock()

    def __call__(self) -> Any:
        if self._client is None:
            with self._lock:
                if self._client is None:
                    if self._factory is not None:
                        self._client = self._factory()
                    else:
                        import boto3

                        build: Any = boto3.client  # the service is a plain str, not its typed literal
                        self._client = build(self._service, config=self._boto_config)
        return self._client
