"""Streams an event log (JSON Lines) one record at a time, so a large log never sits in memory.

A line that is not a JSON object (bad JSON, not UTF-8, an array or a bare value) is reported
with its 1-based line number and skipped; the rest of the file is still read. Blank lines are
skipped silently. A missing or unreadable file is an :class:`EventLogError` naming the path,
raised before any record is produced. This module knows nothing about what the records mean.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .model import MalformedLine

__all__ = ["DEFAULT_KEEP_MALFORMED", "EventLog", "EventLogError"]

#: How many malformed lines are kept with their reason (all are counted).
DEFAULT_KEEP_MALFORMED = 50


class EventLogError(Exception):
    """The event log cannot be read at all (missing, a directory, no permission)."""


class EventLog:
    """An event log to read once, in order.

    Iterating yields ``(line_number, record)`` for every line holding a JSON object. After
    (or during) iteration, :attr:`lines`, :attr:`malformed` and :attr:`malformed_count` say
    what was read and what was skipped.

    Args:
        path: The JSON Lines file.
        keep_malformed: How many malformed lines to keep with their reason.

    Raises:
        EventLogError: When the file does not exist or is not a readable regular file.
    """

    def __init__(self, path: str | Path, *, keep_malformed: int = DEFAULT_KEEP_MALFORMED) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise EventLogError(f"{self.path}: no such file")
        if not self.path.is_file():
            raise EventLogError(f"{self.path}: not a regular file")
        try:
            with self.path.open("rb"):
                pass
        except OSError as error:
            raise EventLogError(f"{self.path}: cannot be read ({error.strerror})") from error
        self._keep = keep_malformed
        self.lines = 0
        self.malformed: list[MalformedLine] = []
        self.malformed_count = 0

    def __iter__(self) -> Iterator[tuple[int, dict[str, Any]]]:
        try:
            with self.path.open("rb") as file:
                for number, raw in enumerate(file, start=1):
                    self.lines = number
                    record = self._parse(number, raw)
                    if record is not None:
                        yield number, record
        except OSError as error:
            raise EventLogError(f"{self.path}: read failed ({error.strerror})") from error

    def _parse(self, number: int, raw: bytes) -> dict[str, Any] | None:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            self._skip(number, "not UTF-8 text")
            return None
        if not text.strip():
            return None
        try:
            value = json.loads(text)
        except json.JSONDecodeError as error:
            self._skip(number, f"not valid JSON ({error.msg} at column {error.colno})")
            return None
        if not isinstance(value, dict):
            self._skip(number, f"a JSON {_json_type(value)}, not an object")
            return None
        return value

    def _skip(self, number: int, reason: str) -> None:
        self.malformed_count += 1
        if len(self.malformed) < self._keep:
            self.malformed.append(MalformedLine(number, reason))


def _json_type(value: Any) -> str:
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if value is None:
        return "null"
    return "number"
