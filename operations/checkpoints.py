"""A backfill run's checkpoints in a local JSON file (the command line's default store).

One file per run, ``<directory>/<run id>.json``, rewritten whole (write, then rename) after each
batch: a crash leaves the previous version or the new one, never half of one.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

from vercel_sync.backfill.checkpoints import BackfillError, RunState, SegmentState, validate_run_id

DEFAULT_DIRECTORY = Path(".backfill")


class FileCheckpoints:
    def __init__(self, directory: Path = DEFAULT_DIRECTORY) -> None:
        self.directory = directory
        self._states: dict[str, RunState] = {}
        self._lock = threading.Lock()

    def path(self, run_id: str) -> Path:
        return self.directory / f"{validate_run_id(run_id)}.json"

    def load(self, run_id: str) -> RunState | None:
        path = self.path(run_id)
        if not path.exists():
            return None
        try:
            state = RunState.from_dict(json.loads(path.read_text()))
        except (ValueError, KeyError, TypeError) as exc:
            raise BackfillError(f"checkpoint {path} is unreadable ({type(exc).__name__})") from None
        with self._lock:
            self._states[run_id] = state
        return state

    def create(self, state: RunState) -> None:
        if self.path(state.run_id).exists():
            raise BackfillError(f"run {state.run_id} exists already ({self.path(state.run_id)})")
        with self._lock:
            self._states[state.run_id] = state
            self._write(state)

    def save(self, run_id: str, segment: SegmentState) -> None:
        with self._lock:
            state = self._states[run_id]
            state.segments[segment.segment] = segment
            self._write(state)

    def _write(self, state: RunState) -> None:
        write_whole(self.path(state.run_id), state.to_dict())


def write_whole(path: Path, document: dict[str, Any]) -> None:
    """``document`` as ``path``'s JSON, written then renamed: a crash leaves the old file or the new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(f".json.{os.getpid()}.tmp")
    temporary.write_text(json.dumps(document, indent=1, sort_keys=True))
    os.replace(temporary, path)
