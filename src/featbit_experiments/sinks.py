"""A JSON Lines event sink: one experiment event per line, appended to a file for analysis.

Events are buffered in memory up to ``buffer_size`` lines and written in one append when the
buffer fills, on :meth:`JsonLinesSink.flush` / :meth:`~JsonLinesSink.close`, and at interpreter
exit, so the caller's request pays for a file write only once every ``buffer_size`` events and
memory never holds more than that. Safe to share between threads; several processes may append
to one file, since each flush is a single ``write`` of whole lines in append mode (keep
``buffer_size`` moderate if lines must never interleave on your filesystem).
"""

from __future__ import annotations

import json
import logging
import threading
import weakref
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

logger = logging.getLogger("featbit_experiments")

DEFAULT_BUFFER_SIZE = 256


class JsonLinesSink:
    """Appends events to ``path`` as JSON Lines.

    Args:
        path: The file to append to; its directory is created if missing.
        buffer_size: Lines held in memory before they are written (1 writes every event).
    """

    def __init__(self, path: str | Path, *, buffer_size: int = DEFAULT_BUFFER_SIZE) -> None:
        if buffer_size < 1:
            raise ValueError("buffer_size must be at least 1")
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._buffer_size = buffer_size
        self._lines: list[str] = []
        self._lock = threading.Lock()
        self._file: IO[str] | None = self.path.open("a", encoding="utf-8")
        self._finalizer = weakref.finalize(
            self, _close_at_exit, self._lock, self._lines, self._file
        )

    def emit(self, event: Mapping[str, Any]) -> None:
        line = json.dumps(event, ensure_ascii=False, separators=(",", ":"), default=str)
        with self._lock:
            if self._file is None:
                logger.warning("JsonLinesSink(%s) is closed; event dropped", self.path)
                return
            self._lines.append(line)
            if len(self._lines) >= self._buffer_size:
                _write(self._file, self._lines)

    def flush(self) -> None:
        """Write buffered events and flush the file."""
        with self._lock:
            if self._file is not None:
                _write(self._file, self._lines)

    def close(self) -> None:
        """Flush and close the file. Idempotent; later events are dropped with a warning."""
        with self._lock:
            if self._file is None:
                return
            _write(self._file, self._lines)
            self._file.close()
            self._file = None
        self._finalizer.detach()

    def __enter__(self) -> JsonLinesSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"JsonLinesSink({str(self.path)!r})"


def _write(file: IO[str], lines: list[str]) -> None:
    # The buffer is emptied even when the write fails (disk full): the failure is logged by
    # the event fanout, and a buffer that kept growing would trade a lost log for lost memory.
    try:
        if lines:
            file.write("\n".join(lines) + "\n")
        file.flush()
    finally:
        lines.clear()


def _close_at_exit(lock: threading.Lock, lines: list[str], file: IO[str]) -> None:
    with lock:
        if not file.closed:
            _write(file, lines)
            file.close()
