"""The backfill's progress: a bar redrawn in place on a terminal, plain lines otherwise."""

from __future__ import annotations

import shutil
from typing import TextIO

from vercel_sync.backfill.engine import ProgressSnapshot


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02}:{secs:02}" if hours else f"{minutes}:{secs:02}"


def rate_per_second(snapshot: ProgressSnapshot) -> float:
    return snapshot.scanned_this_session / snapshot.elapsed_seconds if snapshot.elapsed_seconds > 0 else 0.0


def fraction_done(snapshot: ProgressSnapshot) -> float | None:
    """How far the scan is, against the table's approximate item count (None: unknown)."""
    if snapshot.finished:
        return 1.0
    if not snapshot.approximate_total:
        return None
    return min(0.99, snapshot.counts.scanned / snapshot.approximate_total)


def seconds_left(snapshot: ProgressSnapshot) -> float | None:
    rate = rate_per_second(snapshot)
    if snapshot.finished:
        return 0.0
    if not snapshot.approximate_total or rate <= 0:
        return None
    return max(0, snapshot.approximate_total - snapshot.counts.scanned) / rate


def summary(snapshot: ProgressSnapshot) -> str:
    counts = snapshot.counts
    total = f"/~{snapshot.approximate_total:,}" if snapshot.approximate_total else ""
    parts = [f"{counts.scanned:,}{total} scanned", f"{counts.sent:,} sent"]
    if counts.filtered:
        parts.append(f"{counts.filtered:,} filtered out")
    if counts.skipped:
        parts.append(f"{counts.skipped:,} skipped")
    parts.append(f"{rate_per_second(snapshot):,.0f} items/s")
    if not snapshot.finished:
        parts.append(f"{duration(seconds_left(snapshot))} left")
    return ", ".join(parts)


def bar_line(snapshot: ProgressSnapshot, width: int) -> str:
    fraction = fraction_done(snapshot)
    text = summary(snapshot)
    percent = f"{fraction * 100:3.0f}%" if fraction is not None else " ?? "
    room = max(10, min(40, width - len(text) - len(percent) - 6))
    filled = int(room * (fraction or 0.0))
    bar = "#" * filled + "-" * (room - filled)
    return f"[{bar}] {percent} {text}"[: max(20, width - 1)]


class ProgressDisplay:
    """``mode``: ``bar`` (one line redrawn with a carriage return), ``lines`` (one line every
    ``line_interval`` seconds, for logs and pipes) or ``off``."""

    def __init__(self, stream: TextIO, mode: str, *, line_interval: float = 5.0) -> None:
        self.stream = stream
        self.mode = mode
        self.line_interval = line_interval
        self._last_line_at: float | None = None
        self._last_text = ""
        self._drawn = False

    @classmethod
    def auto(cls, stream: TextIO, mode: str = "auto") -> ProgressDisplay:
        if mode == "auto":
            mode = "bar" if stream.isatty() else "lines"
        return cls(stream, mode)

    def update(self, snapshot: ProgressSnapshot) -> None:
        if self.mode == "bar":
            width = shutil.get_terminal_size((100, 20)).columns
            self.stream.write("\r\x1b[K" + bar_line(snapshot, width))
            self.stream.flush()
            self._drawn = True
        elif self.mode == "lines" and (
            self._last_line_at is None or snapshot.elapsed_seconds - self._last_line_at >= self.line_interval
        ):
            self._last_line_at = snapshot.elapsed_seconds
            self._line(summary(snapshot))

    def clear(self) -> None:
        """End the redrawn line so other output starts on a fresh one."""
        if self._drawn:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = False

    def finish(self, snapshot: ProgressSnapshot) -> None:
        if self.mode == "bar":
            self.update(snapshot)
            self.clear()
        elif self.mode == "lines" and summary(snapshot) != self._last_text:
            self._line(summary(snapshot))

    def _line(self, text: str) -> None:
        self._last_text = text
        self.stream.write(f"progress: {text}\n")
        self.stream.flush()
