"""A long run's progress (the backfill's, the replay's): a bar redrawn in place on a terminal, plain
lines otherwise."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Status:
    """What a display shows of any run: its summary, how far it is (None: unknown), since when."""

    text: str
    fraction: float | None
    elapsed_seconds: float

    @classmethod
    def of(cls, progress: ProgressSnapshot | Status) -> Status:
        if isinstance(progress, Status):
            return progress
        return cls(summary(progress), fraction_done(progress), progress.elapsed_seconds)

    @classmethod
    def counted(cls, done: int, total: int, what: str, elapsed_seconds: float, details: list[str]) -> Status:
        """``37/120 <what>, <details>, 0.4/s, 3:25 left``: a run over a known number of things."""
        rate = done / elapsed_seconds if elapsed_seconds > 0 else 0.0
        parts = [f"{done:,}/{total:,} {what}", *details, f"{rate:,.1f}/s"]
        if done < total:
            parts.append(f"{duration((total - done) / rate if rate > 0 else None)} left")
        return cls(", ".join(parts), done / total if total else 1.0, elapsed_seconds)


def bar_line(progress: ProgressSnapshot | Status, width: int) -> str:
    status = Status.of(progress)
    fraction, text = status.fraction, status.text
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

    def update(self, progress: ProgressSnapshot | Status) -> None:
        status = Status.of(progress)
        if self.mode == "bar":
            width = shutil.get_terminal_size((100, 20)).columns
            self.stream.write("\r\x1b[K" + bar_line(status, width))
            self.stream.flush()
            self._drawn = True
        elif self.mode == "lines" and (
            self._last_line_at is None or status.elapsed_seconds - self._last_line_at >= self.line_interval
        ):
            self._last_line_at = status.elapsed_seconds
            self._line(status.text)

    def clear(self) -> None:
        """End the redrawn line so other output starts on a fresh one."""
        if self._drawn:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = False

    def finish(self, progress: ProgressSnapshot | Status) -> None:
        """The run is over and its report (which carries the same summary) follows: a bar is erased, not
        left above the report as a second copy of its last line; in lines mode the last state is logged."""
        status = Status.of(progress)
        if self.mode == "bar":
            if self._drawn:
                self.stream.write("\r\x1b[K")
                self.stream.flush()
                self._drawn = False
        elif self.mode == "lines" and status.text != self._last_text:
            self._line(status.text)

    def _line(self, text: str) -> None:
        self._last_text = text
        self.stream.write(f"progress: {text}\n")
        self.stream.flush()
