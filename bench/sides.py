"""The two sides every case runs: our handlers (``functions/*/app.py``) and the naive baseline."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

Side = Literal["ours", "naive"]
Source = Literal["stream", "queue"]
SIDES: tuple[Side, ...] = ("ours", "naive")


def handler(side: Side, source: Source) -> Callable[[dict[str, Any], Any], Any]:
    """The Lambda handler of ``side`` for ``source``, loaded as Lambda loads it."""
    if side == "ours":
        from tools.lambda_local import load_handler

        lambda_handler: Callable[[dict[str, Any], Any], Any] = load_handler(
            "stream_sync" if source == "stream" else "queue_sync"
        ).lambda_handler
        return lambda_handler
    from bench import naive

    return naive.lambda_stream_handler if source == "stream" else naive.lambda_queue_handler
