"""``vercel-emulator``: run the emulator until SIGINT or SIGTERM.

It prints ``vercel-emulator listening on http://HOST:PORT`` (flushed) once it accepts
connections, so a parent process can read the port when it passes ``--port 0``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Sequence

from vercel_emulator.server import start_listening
from vercel_emulator.state import (
    DEFAULT_TOKEN_LIFETIME_SECONDS,
    RETRY_AFTER_PLACES,
    EmulatorState,
    FaultSettings,
    RateLimit,
)


def _positive_seconds(text: str) -> int:
    try:
        seconds = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("expected whole seconds, e.g. 3600") from None
    if seconds < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return seconds


def _token(text: str) -> tuple[str, str]:
    installation_id, separator, token = text.partition("=")
    if not separator or not installation_id or not token:
        raise argparse.ArgumentTypeError("expected INSTALLATION_ID=TOKEN")
    return installation_id, token


def _rate_limit(text: str) -> RateLimit:
    try:
        return RateLimit.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError("expected a number between 0 and 1") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError("expected a number between 0 and 1")
    return value


def _milliseconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError("expected milliseconds (a number >= 0)") from None
    if value < 0:
        raise argparse.ArgumentTypeError("expected milliseconds (a number >= 0)")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vercel-emulator",
        description="A local emulator of Vercel's Marketplace Import Resource API, with injectable faults.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8787, help="port (default 8787; 0 picks a free one)")
    parser.add_argument(
        "--token",
        action="append",
        type=_token,
        default=[],
        metavar="INSTALLATION_ID=TOKEN",
        help="an installation and a bearer token it accepts; repeatable (twice for one id: both valid)",
    )
    parser.add_argument(
        "--rate-limit",
        type=_rate_limit,
        default=RateLimit(),
        metavar="CALLS/SECONDS",
        help="imports allowed per installation per fixed window (default 100/60, Vercel's)",
    )
    parser.add_argument(
        "--secrets-rate-limit",
        type=_rate_limit,
        default=RateLimit(240, 60.0),
        metavar="CALLS/SECONDS",
        help="secrets updates allowed per installation per fixed window (default 240/60, Vercel's)",
    )
    parser.add_argument(
        "--delete-rate-limit",
        type=_rate_limit,
        default=RateLimit(100, 60.0),
        metavar="CALLS/SECONDS",
        help="deletions allowed per installation per fixed window (default 100/60, Vercel's)",
    )
    parser.add_argument(
        "--client-secret",
        help="the integration's client secret that credentials/rotate and revoke require (default: any)",
    )
    parser.add_argument(
        "--client-id",
        help="the integration's client id that the token endpoint requires (default: any)",
    )
    parser.add_argument(
        "--token-lifetime-seconds",
        type=_positive_seconds,
        default=DEFAULT_TOKEN_LIFETIME_SECONDS,
        help="how long the tokens the token endpoint and credentials/rotate issue stay valid (default 3600)",
    )
    faults = parser.add_argument_group("injected faults (reproducible from --seed)")
    faults.add_argument("--latency-ms", type=_milliseconds, default=0.0, help="delay added to every API request")
    faults.add_argument("--error-rate", type=_fraction, default=0.0, help="fraction answered 500/502/503/504")
    faults.add_argument("--throttle-rate", type=_fraction, default=0.0, help="fraction answered 429")
    faults.add_argument(
        "--throttle-retry-after", type=int, default=1, metavar="SECONDS", help="Retry-After of injected 429s"
    )
    faults.add_argument(
        "--retry-after-in",
        choices=RETRY_AFTER_PLACES,
        default="header",
        help="where a 429 says when to come back: the Retry-After header (default), the body's error.limit.reset "
        "(epoch seconds), or both",
    )
    faults.add_argument("--drop-rate", type=_fraction, default=0.0, help="fraction closed without a response")
    faults.add_argument("--slow-rate", type=_fraction, default=0.0, help="fraction delayed by --slow-ms")
    faults.add_argument("--slow-ms", type=_milliseconds, default=0.0, help="extra delay of the slow fraction")
    faults.add_argument("--seed", type=int, default=0, help="seed choosing which requests get faults (default 0)")
    parser.add_argument("--access-log", action="store_true", help="log one line per request (never headers or bodies)")
    return parser


async def serve(state: EmulatorState, host: str, port: int, *, access_log: bool) -> None:
    runner, bound_port = await start_listening(state, host, port, access_log=access_log)
    shown_host = f"[{host}]" if ":" in host else host
    print(f"vercel-emulator listening on http://{shown_host}:{bound_port}", flush=True)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signal_number in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signal_number, stopping.set)
    try:
        await stopping.wait()
    finally:
        await runner.cleanup()


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        faults = FaultSettings(
            latency_ms=args.latency_ms,
            error_rate=args.error_rate,
            throttle_rate=args.throttle_rate,
            drop_rate=args.drop_rate,
            slow_rate=args.slow_rate,
            slow_ms=args.slow_ms,
            throttle_retry_after=args.throttle_retry_after,
            retry_after_in=args.retry_after_in,
            seed=args.seed,
        )
    except ValueError as exc:
        parser.error(str(exc))
    tokens: dict[str, list[str]] = {}
    for installation_id, token in args.token:
        tokens.setdefault(installation_id, []).append(token)
    if not tokens:
        print(
            "vercel-emulator: no --token given; every API call answers 401 until one is added "
            "with POST /_emulator/installations",
            file=sys.stderr,
            flush=True,
        )
    if args.access_log:
        logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    state = EmulatorState(
        tokens,
        rate_limit=args.rate_limit,
        secrets_rate_limit=args.secrets_rate_limit,
        delete_rate_limit=args.delete_rate_limit,
        faults=faults,
        client_secret=args.client_secret,
        client_id=args.client_id,
        token_lifetime_seconds=args.token_lifetime_seconds,
    )
    try:
        asyncio.run(serve(state, args.host, args.port, access_log=args.access_log))
    except OSError as exc:
        print(f"vercel-emulator: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # interrupted while starting, before the signal handlers were set
        return 130
    return 0
