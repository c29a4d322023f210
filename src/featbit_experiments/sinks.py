"""A JSON Lines event sink: one experiment event per line, appended to a file for analysis, with
every event accounted for.

Events are buffered in memory up to ``buffer_size`` lines and written in one append when the
buffer fills, on :meth:`JsonLinesSink.flush` / :meth:`~JsonLinesSink.close`, and at interpreter
exit, so the caller's request pays for a file write only once every ``buffer_size`` events and
memory never holds more than that.

What a log file goes through, and what the sink does:

* **Disk full, or any write error.** The lines that reached the file whole stay; a line cut
  short is truncated away, so the file never holds a partial line; every other line of the batch
  is counted as failed and the sink raises :class:`~featbit_experiments.guardrails.SinkFailed`,
  which the event fanout turns into a throttled ``sink_failed`` guardrail for the other sinks.
* **Moved (a log rotator) or deleted.** Before each write the sink compares the path's device
  and inode with the file it has open (as ``logging.handlers.WatchedFileHandler`` does) and
  reopens the path, creating it (and its directory) again.

:meth:`JsonLinesSink.counts` says how many events were accepted, written, failed and are still
buffered; ``accepted == written + failed + buffered`` always. Safe to share between threads.
Several processes may append to one file (each write is one ``write`` of whole lines in append
mode), but removing a partial line after a failed write assumes no other process appended in
between: give each process its own file when the disk may fill.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .guardrails import SinkFailed

logger = logging.getLogger("featbit_experiments")

DEFAULT_BUFFER_SIZE = 256


@dataclass(frozen=True)
class SinkCounts:
    """Every event a sink accepted is written, failed, or still buffered."""

    accepted: int
    written: int
    failed: int
    buffered: int


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
        self._buffer_size = buffer_size
        self._file = _LogFile(self.path)
        self._lines: list[str] = []
        self._lock = threading.Lock()
        self._closed = False
        self._accepted = self._written = self._failed = 0
        self._finalizer = weakref.finalize(
            self, _flush_at_exit, self._lock, self._lines, self._file
        )

    def emit(self, event: Mapping[str, Any]) -> None:
        line = json.dumps(event, ensure_ascii=False, separators=(",", ":"), default=str)
        with self._lock:
            self._accepted += 1
            if self._closed:
                self._failed += 1
                raise SinkFailed(f"{self!r} is closed", lost=1)
            self._lines.append(line)
            if len(self._lines) >= self._buffer_size:
                self._write()

    def flush(self) -> None:
        """Write buffered events; raises SinkFailed when some could not be written."""
        with self._lock:
            if self._lines:
                self._write()

    def close(self) -> None:
        """Flush and close the file. Idempotent; later events are counted as failed."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._finalizer.detach()
            try:
                if self._lines:
                    self._write()
            finally:
                self._file.close()

    def counts(self) -> SinkCounts:
        with self._lock:
            return SinkCounts(self._accepted, self._written, self._failed, len(self._lines))

    def __enter__(self) -> JsonLinesSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"JsonLinesSink({str(self.path)!r})"

    def _write(self) -> None:
        """Write the buffer (called with the lock held); the buffer is emptied either way, so
        a failing disk costs counted events, never unbounded memory."""
        lines = len(self._lines)
        data = ("\n".join(self._lines) + "\n").encode("utf-8")
        self._lines.clear()
        written, error = self._file.append(data)
        self._written += written
        if error is not None:
            self._failed += lines - written
            raise SinkFailed(
                f"{self!r}: {lines - written} of {lines} events not written ({error})",
                lost=lines - written,
            )


class _LogFile:
    """An append-only file descriptor on a path, reopened when the path moves or vanishes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None
        self._identity: tuple[int, int] | None = None
        self._open()

    def append(self, data: bytes) -> tuple[int, OSError | None]:
        """Append whole lines; (lines that reached the file whole, the error if any). A line
        cut short by the error is truncated away."""
        try:
            self._follow_path()
            fd = self._fd
            assert fd is not None
        except OSError as error:
            return 0, error
        done = 0
        try:
            while done < len(data):
                done += os.write(fd, data[done:])
        except OSError as error:
            return self._keep_whole_lines(fd, data, done), error
        return data.count(b"\n"), None

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
        status = os.fstat(fd)
        self.close()
        self._fd, self._identity = fd, (status.st_dev, status.st_ino)

    def _follow_path(self) -> None:
        """Reopen the path when it no longer names the open file (moved, deleted, replaced)."""
        try:
            status = os.stat(self.path)
            current: tuple[int, int] | None = (status.st_dev, status.st_ino)
        except FileNotFoundError:
            current = None
        if self._fd is None or current != self._identity:
            self._open()

    def _keep_whole_lines(self, fd: int, data: bytes, done: int) -> int:
        """After a write that stopped ``done`` bytes in: cut the partial line off the file and
        return how many lines it holds whole."""
        whole = data.rfind(b"\n", 0, done) + 1
        if whole < done:
            try:
                end = os.lseek(fd, 0, os.SEEK_END)
                os.ftruncate(fd, end - (done - whole))
            except OSError as error:  # pragma: no cover - a file that cannot even shrink
                logger.error("could not remove a partial line from %s: %s", self.path, error)
        return data.count(b"\n", 0, whole)


def _flush_at_exit(lock: threading.Lock, lines: list[str], file: _LogFile) -> None:
    with lock:
        if lines:
            data = ("\n".join(lines) + "\n").encode("utf-8")
            lost = len(lines) - file.append(data)[0]
            lines.clear()
            if lost:
                logger.error("%d events not written to %s at exit", lost, file.path)
        file.close()
