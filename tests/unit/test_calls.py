"""The Vercel call policy (``calls.py``): backoff with full jitter never sooner than Retry-After,
retries only with the time for them, a 429 pausing the installation and reaching the shared rate
limiter, one token re-read on 401 for the whole installation."""

from __future__ import annotations

from functools import partial
from typing import Any

import pytest

from tests.builders import INSTALLATION, Sleeps, make_service, record_without_secret, sqs
from tests.fakes import (
    ROTATED_TOKEN,
    TOKEN,
    FakeFailedRecords,
    FakeSecrets,
    FakeStateStore,
    FakeVercel,
    make_sync_service,
    sync_one,
    vercel_unavailable,
)
from tests.leak_scan import register_secret
from vercel_sync.calls import RetryPolicy
from vercel_sync.deadline import TimeBudget
from vercel_sync.errors import TransientSyncError

THIRD_TOKEN = "vrcl_third_token_for_calls_tests"  # nosec B105 - a test value
register_secret(THIRD_TOKEN, label="a third installation token (test_calls)")


def test_backoff_is_exponential_with_full_jitter_and_never_sooner_than_retry_after() -> None:
    error_with_wait = TransientSyncError("Vercel answered 503", http_status=503, retry_after_seconds=3.0)
    vercel = FakeVercel(script={"r1": [vercel_unavailable(500), vercel_unavailable(502), error_with_wait]})
    sleeps = Sleeps()
    service = make_service(vercel, sleeps=sleeps, retry_policy=RetryPolicy(base_delay_seconds=0.5))

    assert sync_one(service, sqs(record_without_secret())) == "imported"

    # The jitter is drawn at its ceiling here: 0.5, 1.0, then Retry-After's 3 s beats 2.0.
    assert sleeps.seconds == [0.5, 1.0, 3.0]
    assert len(vercel.calls) == 4


def test_jitter_is_uniform_below_the_ceiling() -> None:
    draws: list[tuple[float, float]] = []
    policy = RetryPolicy(base_delay_seconds=0.2, max_delay_seconds=1.0)

    for failed_calls in (1, 2, 3, 4, 5):
        policy.backoff_seconds(failed_calls, lambda low, high: draws.append((low, high)) or 0.0)

    assert draws == [(0.0, 0.2), (0.0, 0.4), (0.0, 0.8), (0.0, 1.0), (0.0, 1.0)]


def test_retries_stop_when_the_invocation_could_not_wait_and_still_finish() -> None:
    now = [1000.0]
    wait = TransientSyncError("Vercel answered 429", http_status=429, retry_after_seconds=20.0)
    vercel = FakeVercel(failing={"r1": wait})
    sleeps = Sleeps()
    service = make_service(
        vercel,
        sleeps=sleeps,
        time_budget=TimeBudget(aws_call_ms=1_000, vercel_call_ms=5_000, margin_ms=1_000),
        monotonic=lambda: now[0],
    )

    # 30 s left: enough to start (7 s), not to wait 20 s and then call (20 + 7 s > 30 - the start).
    with pytest.raises(TransientSyncError, match="429"):
        sync_one(service, sqs(record_without_secret()), time_left_ms=25_000)

    assert len(vercel.calls) == 1
    assert sleeps.seconds == []


def test_a_429_pauses_every_call_of_that_installation() -> None:
    throttled = TransientSyncError("Vercel answered 429", http_status=429, retry_after_seconds=2.0)
    vercel = FakeVercel(script={"r1": [throttled]})
    now = [0.0]
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        now[0] += seconds

    service = make_sync_service(
        vercel=vercel,
        secrets=FakeSecrets(),
        failed_records=FakeFailedRecords(),
        max_concurrency=1,
        sleep=sleep,
        monotonic=lambda: now[0],
        uniform=lambda low, high: 0.0,
    )
    changes = [
        sqs(record_without_secret("r1"), "a"),
        sqs(record_without_secret("r2"), "b"),
        sqs(record_without_secret("r3", integrationConfigurationId="other")),
    ]

    results = service.sync_batch(changes)

    assert all(r.outcome == "imported" for r in results)
    # r1 waited Retry-After; r2 (same installation) found the pause still on, r3 (another) did not.
    assert sleeps == [2.0]
    assert [c.resource_id for c in vercel.calls] == ["r1", "r1", "r2", "r3"]


def test_a_429_reaches_the_shared_rate_limiter() -> None:
    class Limiter:
        def __init__(self) -> None:
            self.acquired: list[float] = []
            self.paused: list[tuple[str, float]] = []

        def acquire(self, installation_id: str, *, max_wait_seconds: float) -> bool:
            self.acquired.append(max_wait_seconds)
            return True

        def pause(self, installation_id: str, seconds: float) -> None:
            self.paused.append((installation_id, seconds))

    limiter = Limiter()
    throttled = TransientSyncError("Vercel answered 429", http_status=429, retry_after_seconds=1.5)
    service = make_service(FakeVercel(script={"r1": [throttled]}), rate_limiter=limiter)

    assert sync_one(service, sqs(record_without_secret())) == "imported"
    assert limiter.paused == [(INSTALLATION, 1.5)]
    assert len(limiter.acquired) == 2  # a token for each call


@pytest.mark.parametrize("call_seconds", [0.0, 18.5])
def test_calls_that_decide_nothing_are_skipped_when_the_invocation_is_nearly_over(call_seconds: float) -> None:
    """Sharing a 429's pause and releasing a claim are best effort: with less time left than one AWS
    call and the margin (20 s left, the call took 18.5 s; 2 s needed), they are not started (the
    claim's lease lapses by itself), so they cannot make the invocation overrun its timeout."""

    class Limiter:
        def __init__(self) -> None:
            self.paused: list[tuple[str, float]] = []

        def acquire(self, installation_id: str, *, max_wait_seconds: float) -> bool:
            return True

        def pause(self, installation_id: str, seconds: float) -> None:
            self.paused.append((installation_id, seconds))

    class SlowThrottledVercel(FakeVercel):
        def import_resource(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
            sleeps.clock += call_seconds  # the call took this long
            return super().import_resource(*args, **kwargs)

    sleeps = Sleeps()
    limiter, state = Limiter(), FakeStateStore()
    throttled = TransientSyncError("Vercel answered 429", http_status=429, retry_after_seconds=30.0)
    service = make_service(
        SlowThrottledVercel(failing={"r1": throttled}),
        state=state,
        sleeps=sleeps,
        rate_limiter=limiter,
        time_budget=TimeBudget(aws_call_ms=1_000, vercel_call_ms=5_000, margin_ms=1_000),
    )

    with pytest.raises(TransientSyncError, match="429"):
        sync_one(service, sqs(record_without_secret(version=1)), time_left_ms=20_000)

    claimed = "claim" in state.items[(INSTALLATION, "r1")]
    assert limiter.paused == ([] if call_seconds else [(INSTALLATION, 30.0)])
    assert claimed == bool(call_seconds)


def test_no_token_from_the_rate_limiter_in_time_sends_the_record_back() -> None:
    class Empty:
        def acquire(self, installation_id: str, *, max_wait_seconds: float) -> bool:
            return False

        def pause(self, installation_id: str, seconds: float) -> None:
            pass

    vercel = FakeVercel()
    service = make_service(vercel, rate_limiter=Empty())

    with pytest.raises(TransientSyncError, match="rate limit"):
        sync_one(service, sqs(record_without_secret()))
    assert vercel.calls == []


def test_a_401_rereads_the_token_once_for_the_whole_installation() -> None:
    vercel = FakeVercel(valid_tokens={ROTATED_TOKEN})
    secrets = FakeSecrets()
    reads: list[bool] = []

    def token(installation_id: str, *, force_fetch: bool = False) -> str:
        reads.append(force_fetch)
        return ROTATED_TOKEN if force_fetch else TOKEN

    secrets.installation_token = token  # type: ignore[method-assign]
    service = make_sync_service(
        vercel=vercel, secrets=secrets, failed_records=FakeFailedRecords(), max_concurrency=1, sleep=lambda _s: None
    )

    results = service.sync_batch([sqs(record_without_secret("r1"), "a"), sqs(record_without_secret("r2"), "b")])

    assert [r.outcome for r in results] == ["imported", "imported"]
    assert reads == [False, True]
    assert [c.token for c in vercel.calls] == [TOKEN, ROTATED_TOKEN, ROTATED_TOKEN]


def test_a_token_refused_again_after_its_reread_sends_the_record_back() -> None:
    vercel = FakeVercel(valid_tokens=set())  # Vercel takes neither the cached token nor the re-read one
    secrets = FakeSecrets()
    reads: list[bool] = []

    def token(installation_id: str, *, force_fetch: bool = False) -> str:
        reads.append(force_fetch)
        if len(reads) > 3:
            raise AssertionError("the token is re-read once per batch")
        return ROTATED_TOKEN if force_fetch else TOKEN

    secrets.installation_token = token  # type: ignore[method-assign]
    service = make_sync_service(vercel=vercel, secrets=secrets, failed_records=FakeFailedRecords())

    with pytest.raises(TransientSyncError, match="401"):
        sync_one(service, sqs(record_without_secret("r1"), "a"))

    assert reads == [False, True]
    assert [c.token for c in vercel.calls] == [TOKEN, ROTATED_TOKEN]


def test_a_401_for_a_token_another_call_has_replaced_is_retried_with_the_new_one() -> None:
    """Two calls in flight with the old token: the second 401 finds the token re-read already."""
    from vercel_sync.calls import Calls, Clock, Installation, Tries
    from vercel_sync.deadline import Deadline
    from vercel_sync.ports import NullObserver

    secrets = FakeSecrets()
    reads: list[bool] = []

    def token(installation_id: str, *, force_fetch: bool = False) -> str:
        reads.append(force_fetch)
        return ROTATED_TOKEN if force_fetch else TOKEN

    secrets.installation_token = token  # type: ignore[method-assign]
    clock = Clock(sleep=lambda _s: None)
    calls = Calls(secrets, None, RetryPolicy(), clock, Deadline(None, None, clock.monotonic))
    installation = Installation(INSTALLATION)
    calls.token(installation)
    sent: list[tuple[str, str]] = []

    def send(resource: str, *, token: str) -> None:
        sent.append((resource, token))
        if resource == "first" and len(sent) == 1:  # the other call runs, and re-reads, while this one is out
            calls.call(installation, partial(send, "other"), "other", NullObserver(), Tries())
        if token != ROTATED_TOKEN:
            raise TransientSyncError("Vercel refused the installation token (401)", http_status=401)

    calls.call(installation, partial(send, "first"), "first", NullObserver(), Tries())

    assert reads == [False, True]
    assert sent == [("first", TOKEN), ("other", TOKEN), ("other", ROTATED_TOKEN), ("first", ROTATED_TOKEN)]


def test_a_shorter_retry_after_does_not_cut_an_installations_pause_short() -> None:
    """Two calls in flight get 429s: the longer wait Vercel asked for holds for both."""
    from vercel_sync.calls import Calls, Clock, Installation, Tries
    from vercel_sync.deadline import Deadline
    from vercel_sync.ports import NullObserver

    now = [1000.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    clock = Clock(monotonic=lambda: now[0], sleep=sleep, uniform=lambda _low, _high: 0.0)
    budget = TimeBudget(aws_call_ms=1_000, vercel_call_ms=1_000, margin_ms=1_000)
    # 8 s left, 3 s of it kept for a call and what follows: 5 s to wait at most.
    calls = Calls(FakeSecrets(), None, RetryPolicy(), clock, Deadline(8_000, budget, clock.monotonic))
    installation = Installation(INSTALLATION)
    calls.token(installation)
    sent: list[str] = []

    def send(resource: str, *, token: str) -> None:
        sent.append(resource)
        if resource == "other":
            raise TransientSyncError("Vercel answered 429", http_status=429, retry_after_seconds=10.0)
        if len(sent) == 1:  # while this call is out, the other one is told to wait 10 s
            with pytest.raises(TransientSyncError):
                calls.call(installation, partial(send, "other"), "other", NullObserver(), Tries())
            raise TransientSyncError("Vercel answered 429", http_status=429, retry_after_seconds=1.0)

    with pytest.raises(TransientSyncError, match=r"asked to wait 9\.0 s"):
        calls.call(installation, partial(send, "first"), "first", NullObserver(), Tries())
    assert sent == ["first", "other"]


def test_a_429_without_retry_after_pauses_the_installation_for_the_backoffs_ceiling() -> None:
    throttled = TransientSyncError("Vercel answered 429", http_status=429)
    vercel = FakeVercel(script={"r1": [throttled]})
    sleeps = Sleeps()
    service = make_sync_service(
        vercel=vercel,
        secrets=FakeSecrets(),
        failed_records=FakeFailedRecords(),
        retry_policy=RetryPolicy(base_delay_seconds=0.2),
        sleep=sleeps,
        monotonic=sleeps.now,
        uniform=lambda low, _high: low,  # the backoff drawn at its floor: only the pause waits
    )

    assert sync_one(service, sqs(record_without_secret("r1"))) == "imported"
    assert sleeps.seconds == [0.0, pytest.approx(0.2)]


def test_a_401_answered_by_a_reread_is_reported_as_retried_at_once() -> None:
    from vercel_sync.ports import NullObserver

    reported: list[tuple[int | None, float | None]] = []

    class Failures(NullObserver):
        def call_failed(self, subject: Any, error: TransientSyncError, *, retry_in_seconds: float | None) -> None:
            reported.append((error.http_status, retry_in_seconds))

    secrets = FakeSecrets()
    secrets.installation_token = lambda _id, *, force_fetch=False: ROTATED_TOKEN if force_fetch else TOKEN  # type: ignore[method-assign]
    service = make_sync_service(
        vercel=FakeVercel(valid_tokens={ROTATED_TOKEN}),
        secrets=secrets,
        failed_records=FakeFailedRecords(),
        observer=Failures(),
    )

    assert sync_one(service, sqs(record_without_secret("r1"))) == "imported"
    assert reported == [(401, 0.0)]


def test_a_refreshed_token_that_worked_gets_a_refresh_of_its_own_when_refused_later() -> None:
    """Short-lived tokens expire within a batch: a re-read token Vercel accepted and later refuses (it
    expired) is re-read again; one refused straight after its re-read is not (the test above)."""
    from vercel_sync.calls import Calls, Clock, Installation, Tries
    from vercel_sync.deadline import Deadline
    from vercel_sync.ports import NullObserver

    handed = iter([TOKEN, ROTATED_TOKEN, THIRD_TOKEN])
    reads: list[bool] = []

    def token(installation_id: str, *, force_fetch: bool = False) -> str:
        reads.append(force_fetch)
        return next(handed)

    secrets = FakeSecrets()
    secrets.installation_token = token  # type: ignore[method-assign]
    clock = Clock(sleep=lambda _s: None)
    calls = Calls(secrets, None, RetryPolicy(), clock, Deadline(None, None, clock.monotonic))
    installation = Installation(INSTALLATION)
    calls.token(installation)
    accepted = {ROTATED_TOKEN}
    sent: list[str] = []

    def send(*, token: str) -> None:
        sent.append(token)
        if token not in accepted:
            raise TransientSyncError("Vercel refused the installation token (401)", http_status=401)

    calls.call(installation, send, "first", NullObserver(), Tries())
    accepted.clear()
    accepted.add(THIRD_TOKEN)  # the re-read token has expired
    calls.call(installation, send, "second", NullObserver(), Tries())

    assert reads == [False, True, True]
    assert sent == [TOKEN, ROTATED_TOKEN, ROTATED_TOKEN, THIRD_TOKEN]


# --- short-lived tokens under 401 storms: one refresh, bounded, an endpoint outage transient ------------

STORM_TOKENS = [f"vrcl_storm_token_{n:02d}_calls_tests" for n in range(8)]
register_secret(*STORM_TOKENS, label="short-lived tokens of the 401 storms (test_calls)")


class StormEndpoint:
    """A token endpoint handing out STORM_TOKENS in turn, slowly (threads pile up on it); ``down``: refuses."""

    def __init__(self) -> None:
        self.requests = 0
        self.down = False

    def request(self, installation_id: str, client_id: str, client_secret: str) -> tuple[str, float]:
        import time

        self.requests += 1
        time.sleep(0.05)
        if self.down:
            raise TransientSyncError("the token endpoint answered 503", http_status=503)
        return STORM_TOKENS[self.requests - 1], 3600.0


def storm_calls(endpoint: StormEndpoint) -> Any:
    from vercel_sync.adapters.installation_tokens import ShortLivedTokens
    from vercel_sync.calls import Calls, Clock
    from vercel_sync.deadline import Deadline

    class Credentials:
        def integration_credentials(self, *, force_fetch: bool = False) -> tuple[str, str]:
            return "client", "secret"

    tokens = ShortLivedTokens(Credentials(), endpoint)  # type: ignore[arg-type]
    clock = Clock(sleep=lambda _s: None)
    return Calls(tokens, None, RetryPolicy(), clock, Deadline(None, None, clock.monotonic))


def call_from_threads(calls: Any, send: Any, count: int) -> list[BaseException | None]:
    import threading

    from vercel_sync.calls import Tries
    from vercel_sync.ports import NullObserver

    installation = calls.installation(INSTALLATION)
    calls.token(installation)
    start = threading.Barrier(count)
    outcomes: list[BaseException | None] = [None] * count

    def one(index: int) -> None:
        start.wait()
        try:
            calls.call(installation, send, index, NullObserver(), Tries())
        except BaseException as error:  # noqa: BLE001 - kept for the assertions
            outcomes[index] = error

    threads = [threading.Thread(target=one, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


def test_many_calls_refused_at_once_make_one_token_request() -> None:
    endpoint = StormEndpoint()
    calls = storm_calls(endpoint)

    def send(*, token: str) -> None:
        if token != STORM_TOKENS[1]:  # the first token has expired for every call in flight
            raise TransientSyncError("Vercel refused the installation token (401)", http_status=401)

    assert call_from_threads(calls, send, 12) == [None] * 12
    assert endpoint.requests == 2


def test_a_token_refused_right_after_its_refresh_ends_in_a_bounded_number_of_requests() -> None:
    endpoint = StormEndpoint()
    calls = storm_calls(endpoint)

    def send(*, token: str) -> None:
        raise TransientSyncError("Vercel refused the installation token (401)", http_status=401)

    outcomes = call_from_threads(calls, send, 6)
    assert all(isinstance(error, TransientSyncError) and error.http_status == 401 for error in outcomes)
    assert endpoint.requests == 2


def test_a_token_endpoint_down_during_the_refresh_sends_the_records_back() -> None:
    endpoint = StormEndpoint()
    calls = storm_calls(endpoint)
    calls.token(calls.installation(INSTALLATION))
    endpoint.down = True

    def send(*, token: str) -> None:
        raise TransientSyncError("Vercel refused the installation token (401)", http_status=401)

    outcomes = call_from_threads(calls, send, 4)
    assert all(type(error) is TransientSyncError for error in outcomes)
    assert endpoint.requests == 2
