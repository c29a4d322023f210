"""Where an audit's events come from: files or globs of rotated files, JSON Lines (plain or
gzip) or Parquet. This module resolves the paths and sniffs each file's format, compression and
text encoding from its first bytes; it reads no records.

A byte order mark is honoured: UTF-8 with a BOM is read as UTF-8 (its first record kept), and
UTF-16 or UTF-32 text (with a BOM, or without one but with the NUL bytes that give it away) is
transcoded to UTF-8 in the audit's workspace, because the engine reads UTF-8 only. A file that
cannot be read at all is an :class:`EventLogError` naming it, raised before anything is read.
"""

from __future__ import annotations

import codecs
import glob
import gzip
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, cast

__all__ = ["EventLogError", "SourceFile", "resolve", "sniff", "transcode"]

_GZIP_MAGIC = b"\x1f\x8b"
_PARQUET_MAGIC = b"PAR1"
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_CHUNK = 1 << 20


class EventLogError(Exception):
    """The event log cannot be read at all (missing, a directory, no permission, no match)."""


@dataclass(frozen=True)
class SourceFile:
    """One file of the log and how to read it.

    Args:
        path: The file as named (or matched by a glob).
        kind: ``json`` (JSON Lines) or ``parquet``.
        gzip: Whether the file is gzip-compressed.
        encoding: The text encoding it was read as (``utf-8`` for Parquet).
        how: How the encoding was told (``byte order mark``, ``NUL bytes``, ``asked``), or
            empty for plain UTF-8.
        readable: The file the engine reads: ``path`` itself, or its UTF-8 copy.
    """

    path: Path
    kind: str
    gzip: bool
    encoding: str
    how: str
    readable: Path

    @property
    def transcoded(self) -> bool:
        return self.readable != self.path


def resolve(sources: str | Path | Sequence[str | Path]) -> tuple[Path, ...]:
    """The files named by ``sources`` (paths or glob patterns), each pattern's matches sorted.

    Raises:
        EventLogError: A path does not exist, is not a regular file, cannot be opened, or a
            pattern matches nothing.
    """
    items = [sources] if isinstance(sources, (str, Path)) else list(sources)
    if not items:
        raise EventLogError("no event log named")
    files: list[Path] = []
    for item in items:
        text = str(item)
        if glob.has_magic(text) and not Path(text).exists():
            matches = sorted(Path(p) for p in glob.glob(text, recursive=True))
            matches = [m for m in matches if m.is_file()]
            if not matches:
                raise EventLogError(f"{text}: no file matches")
            files.extend(matches)
        else:
            files.append(_checked(Path(text)))
    return tuple(dict.fromkeys(files))


def _checked(path: Path) -> Path:
    if not path.exists():
        raise EventLogError(f"{path}: no such file")
    if not path.is_file():
        raise EventLogError(f"{path}: not a regular file")
    try:
        with path.open("rb"):
            pass
    except OSError as error:
        raise EventLogError(f"{path}: cannot be read ({error.strerror})") from error
    return path


def sniff(path: Path, encoding: str | None = None) -> SourceFile:
    """How to read ``path``; ``encoding`` overrides what the first bytes suggest for text
    without a byte order mark."""
    head = _head(path, gzipped=False)
    if head.startswith(_PARQUET_MAGIC) or path.suffix == ".parquet":
        return SourceFile(path, "parquet", False, "utf-8", "", path)
    gzipped = head.startswith(_GZIP_MAGIC)
    if gzipped:
        head = _head(path, gzipped=True)
    for bom, name in _BOMS:
        if head.startswith(bom):
            return SourceFile(path, "json", gzipped, name, "byte order mark", path)
    if len(head) >= 2 and head[0] != 0 and head[1] == 0:
        return SourceFile(path, "json", gzipped, "utf-16-le", "NUL bytes", path)
    if len(head) >= 2 and head[0] == 0 and head[1] != 0:
        return SourceFile(path, "json", gzipped, "utf-16-be", "NUL bytes", path)
    if encoding is not None and codecs.lookup(encoding).name != "utf-8":
        return SourceFile(path, "json", gzipped, encoding, "asked", path)
    return SourceFile(path, "json", gzipped, "utf-8", "", path)


def _head(path: Path, *, gzipped: bool) -> bytes:
    try:
        if gzipped:
            with gzip.open(path, "rb") as file:
                return file.read(4)
        with path.open("rb") as file:
            return file.read(4)
    except (OSError, EOFError) as error:
        raise EventLogError(f"{path}: cannot be read ({error})") from error


def _open(source: SourceFile) -> BinaryIO:
    if source.gzip:
        return cast(BinaryIO, gzip.open(source.path, "rb"))
    return source.path.open("rb")


def transcode(source: SourceFile, directory: Path, index: int) -> SourceFile:
    """``source`` as UTF-8 in ``directory`` when it is in another encoding (else itself).
    Bytes that do not decode become U+FFFD, so the line they are on is still read (and a
    record whose JSON they break is reported as malformed)."""
    if source.kind != "json" or source.encoding == "utf-8":
        return source
    target = directory / f"source-{index}.jsonl"
    decoder = codecs.getincrementaldecoder(source.encoding)(errors="replace")
    try:
        with _open(source) as raw, target.open("w", encoding="utf-8", newline="") as out:
            started = False
            while chunk := raw.read(_CHUNK):
                text = decoder.decode(chunk)
                if not started and text:
                    text, started = text.removeprefix("\ufeff"), True
                out.write(text)
            out.write(decoder.decode(b"", final=True))
    except (OSError, EOFError, LookupError) as error:
        raise EventLogError(
            f"{source.path}: cannot be read as {source.encoding} ({error})"
        ) from error
    return SourceFile(source.path, "json", False, source.encoding, source.how, target)
