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
