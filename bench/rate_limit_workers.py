"""N workers, each like one Lambda instance, drain a backlog of imports for one installation.

Each worker has its own ``DynamoDbRateLimiter`` (its own boto3 client, with the functions' short
timeouts) and its own ``VercelClient``, and runs ``threads`` threads, as the pipeline does with
``MAX_CONCURRENCY``. They share only the bucket, an item of one DynamoDB table, and the backlog.
A worker's clock may be offset (``clock_offsets``) to stand for instances whose clocks differ.

For the benchmark suite and the tests::

    result = drive_workers(vercel_api_url=..., token=..., installation_id=..., aws_endpoint=...,
                           table_name=..., limit=RateLimit(calls=50, seconds=5), calls=600)
    print(result.table())

or standalone (starts moto server and the emulator in this process)::

    .venv/bin/python -m bench.rate_limit_workers --calls 600 --limit 50/5 --workers 4 --threads 4
"""

from __future__ import annotations

import argparse
import json
import queue
import secrets
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any

from vercel_sync.adapters.bucket_table import DynamoDbRateLimiter
from vercel_sync.adapters.vercel import VercelClient
from vercel_sync.errors import PermanentSyncError, TransientSyncError
from vercel_sync.ratelimit.limiter import LimiterStats
from vercel_sync.settings import RateLimit
from vercel_sync.wiring import aws_client_config


@dataclass(frozen=True)
class WorkersResult:
    """What a run did, as the emulator would count it, and what the bucket cost."""

    limit: str
    workers: int
    threads_per_worker: int
    calls: int  # the backlog
    imported: int  # answered 200
    throttled: int  # answered 429
    other_errors: int
    not_in_time: int  # acquire returned False (the record went back to the backlog)
    elapsed_seconds: float  # from the start to the last answer
    achieved_rate: float  # imported per second over elapsed_seconds
    limit_rate: float  # calls / seconds of the limit
    fraction_of_limit: float
    max_sent_in_any_window: int  # calls sent within any span of the limit's seconds (client clock)
    dynamodb_calls: int
    dynamodb_calls_per_call: float
    conflicts: int
    lapsed_slots: int
    limiter_errors: int

    def table(self) -> str:
        rows = [
            ("rate limit (calls/s)", f"{self.limit} ({self.limit_rate:.3f}/s)"),
            ("workers x threads", f"{self.workers} x {self.threads_per_worker}"),
            ("backlog (calls)", str(self.calls)),
            ("imported", str(self.imported)),
            ("429s received", str(self.throttled)),
            ("other errors", str(self.other_errors)),
            ("no slot in time (requeued)", str(self.not_in_time)),
            ("elapsed", f"{self.elapsed_seconds:.2f} s"),
            ("achieved rate", f"{self.achieved_rate:.3f}/s = {self.fraction_of_limit:.1%} of the limit"),
            ("most calls sent in any window", str(self.max_sent_in_any_window)),
            ("DynamoDB calls", f"{self.dynamodb_calls} ({self.dynamodb_calls_per_call:.2f} per Vercel call)"),
            ("conditional-write conflicts", str(self.conflicts)),
            ("slots lapsed", str(self.lapsed_slots)),
            ("limiter errors", str(self.limiter_errors)),
        ]
        width = max(len(name) for name, _ in rows)
        return "\n".join(f"{name.ljust(width)}  {value}" for name, value in rows)


def max_in_window(times: Sequence[float], seconds: float) -> int:
    """The most of ``times`` within any half-open span ``[t, t + seconds)``."""
    ordered = sorted(times)
    best = start = 0
    for end, moment in enumerate(ordered):
        while moment - ordered[start] >= seconds:
            start += 1
        best = max(best, end - start + 1)
    return best


def drive_workers(
    *,
    vercel_api_url: str,
    token: str,
    installation_id: str,
    aws_endpoint: str,
    table_name: str,
    limit: RateLimit,
    calls: int,
    workers: int = 4,
    threads_per_worker: int = 4,
    clock_offsets: Sequence[float] = (),
    max_wait_seconds: float = 30.0,
    give_up_after_seconds: float | None = None,
    resource_prefix: str = "rl",
    region: str = "us-east-1",
) -> WorkersResult:
    """Drain ``calls`` imports (distinct resources) of one installation with ``workers`` workers."""
    import boto3
    from botocore.config import Config

    from local_aws.moto_server import LOCAL_AWS_ENVIRONMENT

    boto_config = aws_client_config()
    assert isinstance(boto_config, Config)  # the core declares it as object
    session = boto3.session.Session(
        aws_access_key_id=LOCAL_AWS_ENVIRONMENT["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=LOCAL_AWS_ENVIRONMENT["AWS_SECRET_ACCESS_KEY"],
        region_name=region,
    )
    backlog: queue.Queue[str] = queue.Queue()
    for number in range(calls):
        backlog.put(f"{resource_prefix}-{number:05d}")
    lock = threading.Lock()
    done = threading.Event()
    counts = {"imported": 0, "throttled": 0, "other_errors": 0, "not_in_time": 0}
    sent: list[float] = []
    last_answer = [0.0]
    remaining = [calls]
    limiters: list[DynamoDbRateLimiter] = []
    clients: list[VercelClient] = []

    def count(name: str) -> None:
        with lock:
            counts[name] += 1

    def run(limiter: DynamoDbRateLimiter, vercel: VercelClient) -> None:
        while not done.is_set():
            try:
                resource_id = backlog.get(timeout=0.05)
            except queue.Empty:
                continue
            if not limiter.acquire(installation_id, max_wait_seconds=max_wait_seconds):
                count("not_in_time")
                backlog.put(resource_id)
                continue
            moment = time.time()
            body = {"productId": "postgres", "name": resource_id, "status": "ready"}
            try:
                vercel.import_resource(installation_id, resource_id, body, token=token)
            except TransientSyncError as exc:
                with lock:
                    sent.append(moment)
                if exc.http_status == 429:
                    count("throttled")
                    limiter.pause(installation_id, exc.retry_after_seconds or 1.0)
                else:
                    count("other_errors")
                backlog.put(resource_id)
                continue
            except PermanentSyncError:
                count("other_errors")
                finished = True
            else:
                count("imported")
                finished = True
            with lock:
                sent.append(moment)
                last_answer[0] = time.time()
                if finished:
                    remaining[0] -= 1
                    if remaining[0] == 0:
                        done.set()

    threads: list[threading.Thread] = []
    for number in range(workers):
        offset = clock_offsets[number % len(clock_offsets)] if clock_offsets else 0.0
        client = session.client("dynamodb", endpoint_url=aws_endpoint, config=boto_config)
        limiter = DynamoDbRateLimiter(table_name, limit, dynamodb_client=client, clock=_offset_clock(offset))
        vercel = VercelClient(vercel_api_url, max_connections=threads_per_worker)
        limiters.append(limiter)
        clients.append(vercel)
        for thread_number in range(threads_per_worker):
            threads.append(threading.Thread(target=run, args=(limiter, vercel), name=f"worker{number}-{thread_number}"))
    budget = give_up_after_seconds or max(60.0, 3 * calls * limit.seconds / limit.calls)
    started = time.time()
    for thread in threads:
        thread.start()
    done.wait(timeout=budget)
    done.set()
    for thread in threads:
        thread.join(timeout=max_wait_seconds + 10)
    for vercel in clients:
        vercel.close()

    stats = _total([limiter.stats() for limiter in limiters])
    elapsed = max(last_answer[0] - started, 1e-9)
    limit_rate = limit.calls / limit.seconds
    achieved = counts["imported"] / elapsed
    vercel_calls = max(1, len(sent))
    return WorkersResult(
        limit=str(limit),
        workers=workers,
        threads_per_worker=threads_per_worker,
        calls=calls,
        imported=counts["imported"],
        throttled=counts["throttled"],
        other_errors=counts["other_errors"],
        not_in_time=counts["not_in_time"],
        elapsed_seconds=elapsed,
        achieved_rate=achieved,
        limit_rate=limit_rate,
        fraction_of_limit=achieved / limit_rate,
        max_sent_in_any_window=max_in_window(sent, limit.seconds),
        dynamodb_calls=stats.dynamodb_calls,
        dynamodb_calls_per_call=stats.dynamodb_calls / vercel_calls,
        conflicts=stats.conflicts,
        lapsed_slots=stats.lapsed,
        limiter_errors=stats.errors,
    )


def _offset_clock(offset: float) -> Callable[[], float]:
    return lambda: time.time() + offset


def _total(all_stats: Sequence[LimiterStats]) -> LimiterStats:
    total = LimiterStats()
    for stats in all_stats:
        for name, value in vars(stats).items():
            setattr(total, name, getattr(total, name) + value)
    return total


@contextmanager
def atomic_moto_dynamodb_writes() -> Iterator[None]:
    """Make moto's DynamoDB writes atomic in this process (moto server started here included).

    moto checks a write's condition and then applies it without a lock, so two concurrent
    conditional writes can both succeed, which DynamoDB never allows (measured with moto 5.2.5
    server: 16 threads, 1,200 compare-and-set updates that all reported success, 2 of them
    lost). A shared bucket tested on that would look broken for moto's reasons: its writes run
    one at a time here, as DynamoDB serialises writes to one item.
    """
    from moto.dynamodb.models import DynamoDBBackend

    lock = threading.RLock()
    names = ("put_item", "update_item", "delete_item", "transact_write_items")
    originals: dict[str, Any] = {name: getattr(DynamoDBBackend, name) for name in names}

    def serialised(original: Any) -> Any:
        def write(*args: Any, **kwargs: Any) -> Any:
            with lock:
                return original(*args, **kwargs)

        return write

    for name, original in originals.items():
        setattr(DynamoDBBackend, name, serialised(original))
    try:
        yield
    finally:
        for name, original in originals.items():
            setattr(DynamoDBBackend, name, original)


def create_bucket_table(dynamodb: Any, table_name: str) -> None:
    """A table shaped like the sync-state table (key ``pk``, TTL ``expiresAt``)."""
    dynamodb.create_table(
        TableName=table_name,
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    dynamodb.update_time_to_live(
        TableName=table_name, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expiresAt"}
    )


def main(argv: Sequence[str] | None = None) -> int:
    from local_aws.moto_server import aws_clients, moto_server
    from vercel_emulator import EmulatorServer

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--calls", type=int, default=600, help="the backlog (default 600)")
    parser.add_argument("--limit", default="50/5", help="CALLS/SECONDS, the emulator's and the bucket's (50/5)")
    parser.add_argument("--workers", type=int, default=4, help="instances sharing the bucket (4)")
    parser.add_argument("--threads", type=int, default=4, help="threads per worker, like MAX_CONCURRENCY (4)")
    parser.add_argument("--skew", type=float, default=0.02, help="workers' clocks spread over +-SKEW s (0.02)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args(argv)

    limit = RateLimit.parse(args.limit)
    installation_id = "icfg_bench_rate"
    token = "vrcl_bench_" + secrets.token_urlsafe(18)
    offsets = _spread(args.skew, args.workers)
    with atomic_moto_dynamodb_writes(), moto_server() as endpoint:
        create_bucket_table(aws_clients(endpoint)["dynamodb"], "bench-sync-state")
        with EmulatorServer(tokens={installation_id: token}, rate_limit=str(limit)) as emulator:
            result = drive_workers(
                vercel_api_url=emulator.url,
                token=token,
                installation_id=installation_id,
                aws_endpoint=endpoint,
                table_name="bench-sync-state",
                limit=limit,
                calls=args.calls,
                workers=args.workers,
                threads_per_worker=args.threads,
                clock_offsets=offsets,
            )
    print(json.dumps(asdict(result), indent=2) if args.json else result.table())
    return 0 if result.throttled == 0 and result.imported == args.calls else 1


def _spread(skew: float, workers: int) -> list[float]:
    """``workers`` clock offsets evenly over ``[-skew, +skew]``."""
    if workers < 2 or skew == 0:
        return [0.0] * max(workers, 1)
    return [-skew + 2 * skew * number / (workers - 1) for number in range(workers)]


if __name__ == "__main__":
    raise SystemExit(main())
