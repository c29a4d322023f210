"""Finds the line numbers and reasons of a file's unreadable lines, once the engine has said
how many there are and which non-blank lines (by position) they are.

The engine reads fast but numbers only non-blank lines; this module walks the file once,
counting lines as a text editor does, up to the last position asked for, and says for each
line why it is not a record (not UTF-8, not valid JSON and where, or JSON of another kind).
It runs only for files that have unreadable lines.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .loading import sql_text
from .model import MalformedLine
from .sources import SourceFile

if TYPE_CHECKING:
    import duckdb

__all__ = ["locate"]

_BLANK = b" \t\r\n"


def locate(
    con: duckdb.DuckDBPyConnection, source: SourceFile, keep: int
) -> tuple[MalformedLine, ...]:
    """The first ``keep`` unreadable lines of ``source``, with their 1-based line numbers."""
    if keep <= 0:
        return ()
    compression = sql_text("gzip" if source.gzip else "none")
    rows = con.execute(
        f"""
        SELECT position FROM (
            SELECT row_number() OVER () AS position, json
            FROM read_ndjson_objects({sql_text(str(source.readable))}, ignore_errors = true,
                                     compression = {compression})
        ) numbered
        WHERE json IS NULL OR json_type(json) <> 'OBJECT'
        ORDER BY position
        LIMIT {int(keep)}
        """
    ).fetchall()
    return _lines(source, [int(row[0]) for row in rows])


def _lines(source: SourceFile, positions: Sequence[int]) -> tuple[MalformedLine, ...]:
    wanted = set(positions)
    last = max(positions, default=0)
    found: list[MalformedLine] = []
    non_blank = 0
    path: Path = source.readable
    with gzip.open(path, "rb") if source.gzip else path.open("rb") as file:
        for number, raw in enumerate(file, start=1):
            if not raw.strip(_BLANK):
                continue
            non_blank += 1
            if non_blank in wanted:
                found.append(MalformedLine(number, _reason(raw, number), str(source.path)))
            if non_blank >= last:
                break
    return tuple(found)


def _reason(raw: bytes, number: int) -> str:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return "not UTF-8 text"
    if number == 1:
        text = text.removeprefix("\ufeff")
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        return f"not valid JSON ({error.msg} at column {error.colno})"
    if not isinstance(value, dict):
        return f"a JSON {_json_type(value)}, not an object"
    return "not a JSON object the engine can read"


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
