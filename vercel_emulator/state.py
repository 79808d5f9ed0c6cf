"""What the emulator holds and decides, with no I/O: tokens, resources, counters, rate limit, faults.

Everything here is touched only from the server's event loop (or under the caller's own
serialisation), so nothing takes a lock. Times are passed in (``time.monotonic()`` seconds) so the
rate limiter is testable without sleeping.
"""

from __future__ import annotations

import hashlib
import math
import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

INJECTED_ERROR_STATUSES = (500, 502, 503, 504)

# Outcome key used in the call counters for a connection closed without a response.
DROPPED = "dropped"
# The outcome of a call whose client went away before it was answered.
ABORTED = "aborted"

# The API routes, as the call counters name them.
ROUTE_RESOURCE = "resource"  # GET, PUT (import) or DELETE .../resources/{resourceId}
ROUTE_LIST = "resources"  # GET .../resources
ROUTE_SECRETS = "secrets"  # PUT .../resources/{resourceId}/secrets
ROUTE_ROTATE = "credentials/rotate"  # POST .../credentials/rotate
ROUTE_REVOKE = "credentials/revoke"  # POST .../credentials/revoke
ROUTES = (ROUTE_RESOURCE, ROUTE_LIST, ROUTE_SECRETS, ROUTE_ROTATE, ROUTE_REVOKE)
ROUTE_TOKEN = "oauth/token"  # noqa: S105 - POST the token endpoint (client_credentials): counted under its installation  # nosec B105
# Vercel's short-lived tokens live one hour.
DEFAULT_TOKEN_LIFETIME_SECONDS = 3600


def default_route(resource_id: str | None) -> str:
    """The route a call counted without one is on: one resource, or the list."""
    return ROUTE_LIST if resource_id is None else ROUTE_RESOURCE


def fault_method_key(method: str, route: str) -> str:
    """What stands for the method in a fault decision: the method alone on the resource routes (so
    their fault sequences are the ones they always were), the method and route on the others."""
    return method if route in (ROUTE_RESOURCE, ROUTE_LIST) else f"{method} {route}"


@dataclass(frozen=True)
class RateLimit:
    """``calls`` per ``seconds`` per installation (Vercel's: 100 imports, 240 secrets updates per 60 s)."""

    calls: int = 100
    seconds: float = 60.0

    def __post_init__(self) -> None:
        if self.calls < 1 or not self.seconds > 0:
            raise ValueError("a rate limit needs at least 1 call per a positive number of seconds")

    @classmethod
    def parse(cls, text: str) -> RateLimit:
        """``"CALLS/SECONDS"``, e.g. ``"100/60"``."""
        calls, separator, seconds = text.partition("/")
        try:
            if not separator:
                raise ValueError
            parsed_calls, parsed_seconds = int(calls), float(seconds)
        except ValueError:
            raise ValueError(f"expected CALLS/SECONDS such as 100/60, got {text!r}") from None
        return cls(parsed_calls, parsed_seconds)

    def __str__(self) -> str:
        return f"{self.calls}/{self.seconds:g}"


# The control API speaks camelCase, as Vercel's API does.
_FAULT_JSON_NAMES: Mapping[str, str] = {
    "latencyMs": "latency_ms",
    "errorRate": "error_rate",
    "throttleRate": "throttle_rate",
    "dropRate": "drop_rate",
    "slowRate": "slow_rate",
    "slowMs": "slow_ms",
    "throttleRetryAfter": "throttle_retry_after",
    "retryAfterIn": "retry_after_in",
    "seed": "seed",
}
# Where a 429 says when to come back: the ``Retry-After`` header, the body's ``error.limit``
# (Vercel's ``{total, remaining, reset}``, reset in epoch seconds), or both.
RETRY_AFTER_PLACES = ("header", "body", "both")


@dataclass(frozen=True)
class FaultSettings:
    """Injected faults. Rates are fractions of requests; drop + error + throttle must not exceed 1.

    ``latency_ms`` delays every API request, and a ``slow_rate`` fraction of them (drawn on its
    own) ``slow_ms`` more. One other draw per request picks, in this order, whether it is dropped
    (``drop_rate``), answered 500/502/503/504 (``error_rate``) or answered 429 with
    ``Retry-After: throttle_retry_after`` (``throttle_rate``); else it is handled normally. Which
    requests are chosen depends only on the seed and the call's identity (see
    :func:`decide_fault`), so a run is reproducible however its requests interleave.
    ``retry_after_in`` (one of :data:`RETRY_AFTER_PLACES`) says where every 429, injected or past
    the rate limit, carries its wait.
    """

    latency_ms: float = 0.0
    error_rate: float = 0.0
    throttle_rate: float = 0.0
    drop_rate: float = 0.0
    slow_rate: float = 0.0
    slow_ms: float = 0.0
    throttle_retry_after: int = 1
    retry_after_in: str = "header"
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("error_rate", "throttle_rate", "drop_rate", "slow_rate"):
            rate = getattr(self, name)
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1")
        if self.error_rate + self.throttle_rate + self.drop_rate > 1.0 + 1e-9:
            raise ValueError("error_rate + throttle_rate + drop_rate must not exceed 1")
        if self.latency_ms < 0 or self.slow_ms < 0:
            raise ValueError("latency_ms and slow_ms must not be negative")
        if self.throttle_retry_after < 0:
            raise ValueError("throttle_retry_after must not be negative")
        if self.retry_after_in not in RETRY_AFTER_PLACES:
            raise ValueError(f"retry_after_in must be one of {', '.join(RETRY_AFTER_PLACES)}")

    @property
    def draws_needed(self) -> bool:
        """Whether any request can be chosen for a fault (the hash is skipped otherwise)."""
        return bool(self.error_rate or self.throttle_rate or self.drop_rate or self.slow_rate)

    def to_json(self) -> dict[str, Any]:
        values = asdict(self)
        return {json_name: values[name] for json_name, name in _FAULT_JSON_NAMES.items()}

    def updated_from_json(self, changes: Mapping[str, Any]) -> FaultSettings:
        """These settings with the given camelCase fields changed; ``ValueError`` on a bad field."""
        unknown = sorted(set(changes) - set(_FAULT_JSON_NAMES))
        if unknown:
            raise ValueError(f"unknown fault setting(s): {', '.join(unknown)}")
        updates: dict[str, Any] = {}
        for json_name, value in changes.items():
            name = _FAULT_JSON_NAMES[json_name]
            if name == "retry_after_in":
                updates[name] = value  # a word, checked by __post_init__
                continue
            integral = name in ("seed", "throttle_retry_after")
            if type(value) is bool or not isinstance(value, int | float) or (integral and not isinstance(value, int)):
                raise ValueError(f"{json_name} must be {'an integer' if integral else 'a number'}")
            updates[name] = value if integral else float(value)
        return replace(self, **updates)


@dataclass(frozen=True)
class FaultDecision:
    kind: Literal["none", "drop", "error", "throttle"]
    status: int | None = None  # the status answered for "error" and "throttle"
    slow: bool = False


NO_FAULT = FaultDecision("none")


def decide_fault(
    settings: FaultSettings, method: str, installation_id: str, resource_id: str | None, call_number: int
) -> FaultDecision:
    """The fault for the ``call_number``-th ``method`` call on one resource (or the list, ``None``).

    Derived from a hash of (seed, method, installation id, resource id, call number) rather than
    one shared random stream, so concurrent calls on other resources cannot shift the choice.
    """
    if not settings.draws_needed:
        return NO_FAULT
    resource_key = "\x00list" if resource_id is None else resource_id
    identity = (
        f"{settings.seed}|{method}|{len(installation_id)}:{installation_id}|"
        f"{len(resource_key)}:{resource_key}|{call_number}"
    )
    digest = hashlib.blake2b(identity.encode("utf-8", "surrogatepass"), digest_size=16).digest()
    fault_draw = int.from_bytes(digest[0:7]) / 2**56
    slow = int.from_bytes(digest[7:14]) / 2**56 < settings.slow_rate
    if fault_draw < settings.drop_rate:
        return FaultDecision("drop", None, slow)
    if fault_draw < settings.drop_rate + settings.error_rate:
        return FaultDecision("error", INJECTED_ERROR_STATUSES[digest[14] % len(INJECTED_ERROR_STATUSES)], slow)
    if fault_draw < settings.drop_rate + settings.error_rate + settings.throttle_rate:
        return FaultDecision("throttle", 429, slow)
    return FaultDecision("none", None, slow) if slow else NO_FAULT


class FixedWindowRateLimiter:
    """``limit.calls`` per ``limit.seconds`` per installation, in fixed windows.

    A window opens with the first call after the previous one ended (not on wall-clock
    boundaries) and admits ``calls`` calls; later ones are refused until it ends. Refused calls
    do not use up the next window.
    """

    def __init__(self, limit: RateLimit) -> None:
        self.limit = limit
        self._windows: dict[str, list[float]] = {}  # installation id -> [window start, calls admitted]

    def admit(self, installation_id: str, now: float) -> int | None:
        """``None`` when the call is admitted; else the whole seconds (>= 1) until the window ends."""
        window = self._windows.get(installation_id)
        if window is None or now >= window[0] + self.limit.seconds:
            self._windows[installation_id] = [now, 1]
            return None
        if window[1] < self.limit.calls:
            window[1] += 1
            return None
        return max(1, math.ceil(window[0] + self.limit.seconds - now))

    def reset(self) -> None:
        self._windows.clear()


class TokenRegistry:
    """Which bearer tokens each installation accepts (several while a rotation is in progress)."""

    def __init__(
        self, tokens: Mapping[str, str | Iterable[str]] | None = None, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._installation_by_token: dict[str, str] = {}
        self._tokens_by_installation: dict[str, set[str]] = {}
        self._expires_at: dict[str, float] = {}  # the tokens that expire (issued or rotated), monotonic
        self._clock = clock
        # Told each token the emulator makes (rotate, the token endpoint): tests register them with their leak scan.
        self.on_issue: Callable[[str], None] | None = None
        for installation_id, given in (tokens or {}).items():
            for token in [given] if isinstance(given, str) else given:
                self.set_token(installation_id, token, keep_previous=True)

    def set_token(self, installation_id: str, token: str, *, keep_previous: bool = False) -> int:
        """Accept ``token`` for the installation (adding it when unknown); returns how many it accepts.

        Without ``keep_previous`` its other tokens are revoked: rotate with ``keep_previous=True``,
        then revoke by setting the new token again without it.
        """
        if not installation_id or not token:
            raise ValueError("installationId and token must be non-empty strings")
        previous_owner = self._installation_by_token.get(token)
        if previous_owner is not None and previous_owner != installation_id:
            self._tokens_by_installation[previous_owner].discard(token)
        tokens = self._tokens_by_installation.setdefault(installation_id, set())
        if not keep_previous:
            for old in tokens - {token}:
                del self._installation_by_token[old]
                self._expires_at.pop(old, None)
            tokens.clear()
        self._expires_at.pop(token, None)  # set by hand: it never expires
        tokens.add(token)
        self._installation_by_token[token] = installation_id
        return len(tokens)

    def installation_for(self, token: str) -> str | None:
        """The installation ``token`` belongs to, while it is valid (an expired token is forgotten)."""
        expires_at = self._expires_at.get(token)
        if expires_at is not None and expires_at <= self._clock():
            self._forget(token)
        return self._installation_by_token.get(token)

    def accepted(self, installation_id: str) -> int:
        """How many tokens the installation accepts now."""
        return sum(
            self.installation_for(token) is not None
            for token in self._tokens_by_installation.get(installation_id, set()).copy()
        )

    def rotate(self, installation_id: str, lifetime_seconds: float | None = None) -> str:
        """Vercel's credentials/rotate: a new token for the installation; the old ones stay valid.
        ``lifetime_seconds``: it expires then (the answer's ``expires_in``)."""
        token = "vrcl_emu_" + secrets.token_urlsafe(24)
        if self.on_issue is not None:
            self.on_issue(token)
        self.set_token(installation_id, token, keep_previous=True)
        if lifetime_seconds is not None:
            self._expires_at[token] = self._clock() + lifetime_seconds
        return token

    def issue(self, installation_id: str, lifetime_seconds: float) -> str:
        """A short-lived token (the client_credentials grant): valid beside the others until it expires."""
        return self.rotate(installation_id, lifetime_seconds)

    def _forget(self, token: str) -> None:
        owner = self._installation_by_token.pop(token, None)
        self._expires_at.pop(token, None)
        if owner is not None:
            self._tokens_by_installation.get(owner, set()).discard(token)

    def revoke(self, installation_id: str, token: str) -> Literal["revoked", "unknown", "last"]:
        """Vercel's credentials/revoke: retire one of the installation's tokens, never its last."""
        tokens = self._tokens_by_installation.get(installation_id, set())
        if token not in tokens:
            return "unknown"
        if len(tokens) == 1:
            return "last"
        self._forget(token)
        return "revoked"

    def is_known_installation(self, installation_id: str) -> bool:
        return bool(self._tokens_by_installation.get(installation_id))


@dataclass
class StoredResource:
    emulator_id: str
    body: dict[str, Any]  # the last imported body, as received (holds secret values)


def emulator_resource_id(installation_id: str, resource_id: str) -> str:
    """A stable Vercel-style id for a partner's resource (the same across imports and restarts)."""
    identity = f"{len(installation_id)}:{installation_id}|{resource_id}".encode("utf-8", "surrogatepass")
    return "res_" + hashlib.blake2b(identity, digest_size=12).hexdigest()


_VIEW_FIELDS = ("productId", "name", "status", "ownership", "metadata", "billingPlan", "notification", "extras")


def vercel_view(partner_id: str, stored: StoredResource, *, listed: bool = False) -> dict[str, Any]:
    """The resource as Vercel reports it: secret names (and prefixes), never their values. The official
    SDK validates ``internalId`` (Vercel's id), reads the plan as ``billingPlanId`` and drops the rest;
    the partner's id is ``partnerId`` in the list and ``id`` in Get Resource (its models say so)."""
    view: dict[str, Any] = {"internalId": stored.emulator_id, "partnerId": partner_id}
    if not listed:
        view["id"] = partner_id
    body = stored.body
    for name in _VIEW_FIELDS:
        if name in body:
            view[name] = body[name]
    plan = body.get("billingPlan")
    if isinstance(plan, dict) and isinstance(plan.get("id"), str):
        view["billingPlanId"] = plan["id"]
    view["secrets"] = [
        {"name": secret["name"], **({"prefix": secret["prefix"]} if "prefix" in secret else {})}
        for secret in body.get("secrets", ())
    ]
    return view


class CallCounter:
    """Calls received per (method, route, installation, resource), and their outcomes by status.

    ``total`` counts a call when it arrives; its outcome (an HTTP status, or ``"dropped"``) is
    counted when it is answered, so ``total`` exceeds the sum of outcomes only while calls are in
    flight. The list and credentials routes count under resource ``None``. Without a route, a call
    is on the resource route (or the list route for resource ``None``), as before routes were named.
    """

    def __init__(self) -> None:
        self._counts: dict[tuple[str, str, str, str | None], tuple[list[int], dict[str, int]]] = {}

    @staticmethod
    def _key(
        method: str, installation_id: str, resource_id: str | None, route: str | None
    ) -> tuple[str, str, str, str | None]:
        return (method, route or default_route(resource_id), installation_id, resource_id)

    def received(self, method: str, installation_id: str, resource_id: str | None, route: str | None = None) -> int:
        """Count an arriving call; returns its number (1 for the first) for that key."""
        key = self._key(method, installation_id, resource_id, route)
        entry = self._counts.get(key)
        if entry is None:
            entry = self._counts[key] = ([0], {})
        entry[0][0] += 1
        return entry[0][0]

    def answered(
        self, method: str, installation_id: str, resource_id: str | None, outcome: str, route: str | None = None
    ) -> None:
        entry = self._counts.get(self._key(method, installation_id, resource_id, route))
        if entry is None:
            return  # received before a reset: it belongs to the counts that were cleared
        by_status = entry[1]
        by_status[outcome] = by_status.get(outcome, 0) + 1

    def count(
        self, method: str, installation_id: str, resource_id: str | None, route: str | None = None
    ) -> tuple[int, dict[str, int]]:
        entry = self._counts.get(self._key(method, installation_id, resource_id, route))
        return (0, {}) if entry is None else (entry[0][0], dict(entry[1]))

    def to_json(self) -> dict[str, Any]:
        rows = []
        overall: dict[str, int] = {}
        by_route: dict[str, int] = {}
        total = 0
        for (method, route, installation_id, resource_id), (received, by_status) in self._counts.items():
            rows.append(
                {
                    "method": method,
                    "route": route,
                    "installationId": installation_id,
                    "resourceId": resource_id,
                    "total": received[0],
                    "byStatus": dict(by_status),
                }
            )
            total += received[0]
            by_route[route] = by_route.get(route, 0) + received[0]
            for outcome, count in by_status.items():
                overall[outcome] = overall.get(outcome, 0) + count
        return {"total": total, "byStatus": overall, "byRoute": by_route, "calls": rows}

    def clear(self) -> None:
        self._counts.clear()


class EmulatorState:
    """All the emulator holds. ``reset()`` forgets resources, counts and rate windows, and restarts
    the fault sequence; tokens, the rate limits and the fault settings stay."""

    def __init__(
        self,
        tokens: Mapping[str, str | Iterable[str]] | None = None,
        *,
        rate_limit: RateLimit | None = None,
        secrets_rate_limit: RateLimit | None = None,
        delete_rate_limit: RateLimit | None = None,
        faults: FaultSettings | None = None,
        client_secret: str | None = None,
        client_id: str | None = None,
        token_lifetime_seconds: int = DEFAULT_TOKEN_LIFETIME_SECONDS,
    ) -> None:
        self.tokens = TokenRegistry(tokens)
        # The integration's client id the token endpoint requires (None: any); the life of the tokens
        # it and credentials/rotate issue.
        self.client_id = client_id
        self.token_lifetime_seconds = token_lifetime_seconds
        # The expires_in the token endpoint announces (None: the true lifetime). Longer: tokens end before
        # the client expects (chaos: every expiry is met by a 401).
        self.announced_expires_in: int | None = None
        self.rate_limiter = FixedWindowRateLimiter(rate_limit or RateLimit())
        # Vercel limits secrets updates on their own: 240 per 60 s per installation.
        self.secrets_rate_limiter = FixedWindowRateLimiter(secrets_rate_limit or RateLimit(240, 60.0))
        # And deletions: 100 per 60 s per installation.
        self.delete_rate_limiter = FixedWindowRateLimiter(delete_rate_limit or RateLimit(100, 60.0))
        self.faults = faults or FaultSettings()
        # The integration's client secret that credentials/rotate and revoke require (None: any).
        self.client_secret = client_secret
        self.calls = CallCounter()
        self.resources: dict[str, dict[str, StoredResource]] = {}  # installation id -> partner id -> resource

    def store(self, installation_id: str, resource_id: str, body: dict[str, Any]) -> None:
        held = self.resources.setdefault(installation_id, {})
        existing = held.get(resource_id)
        if existing is None:
            held[resource_id] = StoredResource(emulator_resource_id(installation_id, resource_id), body)
        else:
            existing.body = body

    def update_secrets(
        self, installation_id: str, resource_id: str, secrets: list[dict[str, Any]], *, partial: bool
    ) -> bool:
        """Replace a held resource's secrets (``partial``: only the named ones, the others kept).
        False when the resource is not held."""
        stored = self.resource(installation_id, resource_id)
        if stored is None:
            return False
        if partial:
            named = {secret["name"]: secret for secret in secrets}
            kept = [secret for secret in stored.body.get("secrets", ()) if secret["name"] not in named]
            secrets = kept + list(named.values())
        stored.body = {**stored.body, "secrets": secrets}
        return True

    def remove(self, installation_id: str, resource_id: str) -> bool:
        """Forget a held resource (Vercel's delete); False when it is not held."""
        return self.resources.get(installation_id, {}).pop(resource_id, None) is not None

    def resource(self, installation_id: str, resource_id: str) -> StoredResource | None:
        return self.resources.get(installation_id, {}).get(resource_id)

    def decide_fault(
        self, method: str, installation_id: str, resource_id: str | None, call_number: int
    ) -> FaultDecision:
        return decide_fault(self.faults, method, installation_id, resource_id, call_number)

    def set_rate_limit(self, limit: RateLimit) -> None:
        self.rate_limiter = FixedWindowRateLimiter(limit)

    def set_secrets_rate_limit(self, limit: RateLimit) -> None:
        self.secrets_rate_limiter = FixedWindowRateLimiter(limit)

    def set_delete_rate_limit(self, limit: RateLimit) -> None:
        self.delete_rate_limiter = FixedWindowRateLimiter(limit)

    def reset(self) -> None:
        self.resources.clear()
        self.calls.clear()
        self.rate_limiter.reset()
        self.secrets_rate_limiter.reset()
        self.delete_rate_limiter.reset()
