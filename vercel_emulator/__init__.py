"""A local emulator of Vercel's Marketplace API (import, read back, delete, secrets, credentials): the test oracle.

Run it as ``vercel-emulator --port 0 --token icfg_1=secret-token`` (or ``python -m vercel_emulator``),
or in-process with :class:`EmulatorServer`. It is independent of the sync core (it never imports
``vercel_sync``), so it checks the core rather than agreeing with it.

The Vercel API (Marketplace API reference: Import Resource)
-----------------------------------------------------------
``PUT /v1/installations/{integrationConfigurationId}/resources/{resourceId}``
    Import Resource, an upsert. 200 ``{"name": <name>}``; the body is checked by
    :mod:`vercel_emulator.schema` (400 ``bad_request`` naming each field path, never a value).
    ``Content-Type`` must be ``application/json`` (parameters such as ``charset`` are fine);
    ``Accept`` is not checked. Invalid JSON, ``NaN``/``Infinity`` or a non-object body: 400.
``GET /v1/installations/{id}/resources/{resourceId}``
    What it holds for that partner id, Vercel-style: ``{"id": <partner id>, "internalId": "res_...",
    "partnerId", "productId", "name", "status", "ownership"?, "metadata"?, "billingPlan"?,
    "billingPlanId"?, "notification"?, "extras"?, "secrets": [{"name", "prefix"?}]}``, the shape the
    official SDK validates (tests/integration/test_official_sdk.py): its model documents ``id`` as
    the partner's id and ``internalId`` as Vercel's. Secret values are never returned. 404 when not
    held. ``internalId`` is stable: derived from the installation and partner ids.
``DELETE /v1/installations/{id}/resources/{resourceId}``
    Delete Resource: 204 with no body; then ``GET`` of it is 404 and the list leaves it out. Its own
    rate limit, ``--delete-rate-limit`` (default ``100/60``, Vercel's), counted apart from imports:
    every authorised call counts. Then 404 ``not_found`` for a resource not held.
``GET /v1/installations/{id}/resources``
    ``{"resources": [...]}`` in the same shape without ``id`` (the SDK's list model names the partner's
    id ``partnerId`` only), in first-import order.
``PUT /v1/installations/{id}/resources/{resourceId}/secrets``
    Update Resource Secrets (``vercel-api-facts.md``): ``{"secrets": [...], "partial"?: bool}`` with
    the import's secret items, closed (400 as for imports). 201 with no body. Replaces the held
    resource's secrets (``partial: true``: only the named ones, the others kept; Vercel documents
    the flag, not its semantics, so this is the emulator's reading). Its own rate limit,
    ``--secrets-rate-limit`` (default ``240/60``, Vercel's), counted apart from imports: every
    authorised call counts. Then 404 ``not_found`` when the resource was never imported. What it
    stored shows in ``GET .../resources/{resourceId}`` (names) and ``/_emulator/imports`` (values).
``POST /v1/installations/{id}/credentials/rotate`` ``{"client_secret"}``
    A new token for the installation: 200 ``{"access_token", "token_type": "oauth2-token",
    "expires_in", "scope"}`` (the shape ``@vercel/sdk`` validates). The old token stays valid until
    revoked; the new one expires after ``--token-lifetime-seconds``.
``POST /v1/installations/{id}/credentials/revoke`` ``{"client_secret", "access_token"}``
    Retires the named token (the emulator's name for the field): 204; 404 if it is not a live
    token of the installation; 409 ``conflict`` for its last live token. Both credentials routes
    need a live token of the installation and, with ``--client-secret``, that client secret (403
    otherwise; without it any non-empty string is taken).

``POST /v2/oauth/access_token`` (the sync's default ``VERCEL_TOKEN_URL`` path; Vercel's own is not confirmed)
    The OAuth ``client_credentials`` grant for one installation: a form body (or JSON) with
    ``grant_type=client_credentials``, ``client_id``, ``client_secret``, ``installation_id``. 200
    ``{"access_token", "token_type": "Bearer", "expires_in"}``: a short-lived token, valid beside the
    installation's others until it expires after ``--token-lifetime-seconds`` (default 3600; an
    expired token gets 401 like an unknown one). 400 for another grant or a missing field; 401 when
    the client id or secret is not ``--client-id``/``--client-secret`` (either unset: any). Never
    faulted; counted under its installation on route ``oauth/token``. Tokens set with ``--token``
    or the control API never expire (long-lived).

Ids are percent-decoded once per segment from the raw path, after splitting on ``/``, so
``cache%2Feu%20west%231`` is the one resource ``cache/eu west#1``. An id that is not valid
percent-encoded UTF-8: 400. Other paths: 404 ``not_found``; other methods on these paths: 405
``method_not_allowed`` with ``Allow``. Every error is ``{"error": {"code": ..., "message": ...}}``.

Checks, in this order, for an API call:

1. route and method (404, 405);
2. injected faults (below): latency, then drop / 5xx / injected 429;
3. the bearer token: missing, malformed or unknown to every installation: 401 ``unauthorized``
   (with ``WWW-Authenticate: Bearer``); then an installation with no token configured: 404
   ``not_found``; then a token that belongs to another installation: 403 ``forbidden``;
4. for imports: the rate limit (429 ``rate_limited``), then ``Content-Type``, JSON and schema (400);
   for secrets updates: their own rate limit, then 404 for a resource not held, then the body (400);
   for deletions: their own rate limit, then 404 for a resource not held.

Rate limit: ``--rate-limit CALLS/SECONDS`` (default ``100/60``, Vercel's) imports per installation,
in fixed windows that open at the first call after the previous window ended. Every authorised
import counts, including ones then refused with 400; calls refused with 429 do not use up the
next window. ``Retry-After`` is the whole seconds until the window ends, at least 1. Reads are
not limited. With ``--retry-after-in body`` (or ``both``) every 429, injected or not, carries
Vercel's ``error.limit`` ``{"total", "remaining": 0, "reset"}`` (``reset`` in epoch seconds) in
its body, without (or beside) the ``Retry-After`` header.

Faults (``--latency-ms``, ``--error-rate``, ``--throttle-rate``, ``--throttle-retry-after``,
``--retry-after-in``, ``--drop-rate``, ``--slow-rate``, ``--slow-ms``, ``--seed``) apply to the API
routes only. Whether a request is faulted is decided from a hash of (seed, method, installation id,
resource id, n) where n counts that method's calls to that resource, so the same seed gives the
same sequence per resource however concurrent calls to other resources interleave. A faulted request is answered before
authentication, does not count toward the rate limit and changes no stored state: a 5xx or an
injected 429 stores nothing, and a dropped request's connection is aborted (a TCP reset) without
any response or store. Slow requests are only delayed; they are then handled normally.

Call counts: every call on an API route is counted per (method, route, installation, resource)
when it arrives, and its outcome (the status as a string, or ``"dropped"``) when it is answered.
Routes: ``resource`` (import, read and delete of one resource), ``resources`` (the list), ``secrets``,
``credentials/rotate``, ``credentials/revoke``. The fault sequence of each non-resource route is its
own (the method in the hash is ``"PUT secrets"``, ``"POST credentials/rotate"``, ...).

The control API (tests, the demo, benchmarks; no auth, loopback clients only, never faulted)
-------------------------------------------------------------------------------------------
It answers only requests from a loopback address whose ``Host`` is a loopback name with the
server's port (``127.0.0.1:PORT``, ``localhost:PORT``, ``[::1]:PORT``), whose ``Origin``, if any, is a
loopback page, and whose body, if any, is ``Content-Type: application/json`` (403 or 415 otherwise):
a page in the developer's browser can then neither read it through DNS rebinding nor post a form.
``GET /_emulator/health``
    ``{"status": "ok"}``.
``GET /_emulator/calls``
    ``{"total", "byStatus", "byRoute", "calls": [{"method", "route", "installationId", "resourceId",
    "total", "byStatus"}]}`` (``resourceId`` is ``null`` for the list and credentials routes).
``GET /_emulator/imports``
    TEST-ONLY: ``{"imports": [{"installationId", "resourceId", "id", "body"}]}`` with the full last
    imported body per resource, secret values included, so tests can check what arrived. Real
    Vercel never returns secret values.
``POST /_emulator/installations`` ``{"installationId", "token", "keepPreviousTokens"?: false}``
    Adds an installation or sets its token. With ``keepPreviousTokens: true`` the old tokens stay
    valid (Vercel's rotate); setting the new token again without it revokes the rest.
``GET|POST /_emulator/faults``
    The fault settings ``{"latencyMs", "errorRate", "throttleRate", "throttleRetryAfter",
    "retryAfterIn", "dropRate", "slowRate", "slowMs", "seed"}``; POST changes the fields it names.
``GET|POST /_emulator/rate-limit`` ``{"calls", "seconds"}``
    POST replaces the import limit and starts every window afresh.
``GET|POST /_emulator/secrets-rate-limit`` ``{"calls", "seconds"}``
    The same for secrets updates.
``GET|POST /_emulator/delete-rate-limit`` ``{"calls", "seconds"}``
    The same for deletions.
``POST /_emulator/reset``
    Forgets resources, counts and rate windows, and restarts the fault sequence (n = 1 again).
    Tokens, the rate limit and fault settings stay.

Access logging is off unless ``--access-log``; it never logs headers (the token) or bodies.
"""

from vercel_emulator.server import CallCount, EmulatorServer
from vercel_emulator.state import FaultSettings, RateLimit

__all__ = ["CallCount", "EmulatorServer", "FaultSettings", "RateLimit"]
