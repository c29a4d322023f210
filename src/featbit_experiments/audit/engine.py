"""Runs the audit's SQL on embedded DuckDB: loads the log into ``events``, runs the files of
``sql/`` in order, and fetches the aggregated tables as :class:`~.tallies.LogTallies`.

DuckDB works in a private workspace (a temporary directory holding its database file and
spill files, removed afterwards) within a memory limit, so a log larger than memory is read
without running out of it. This module computes no statistic.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Sequence
from importlib import resources
from pathlib import Path

from .sources import SourceFile, resolve, sniff, transcode

try:
    import duckdb
except ImportError as error:  # pragma: no cover - exercised in a subprocess test
    from .availability import AuditUnavailableError

    raise AuditUnavailableError() from error

from .fetch import fetch
from .loading import load_events
from .tallies import LogTallies

__all__ = ["SQL_FILES", "EngineSettings", "sql_script", "tally"]

#: Input size (as uncompressed JSON) above which the engine works in a database file.
_IN_MEMORY_BYTES = 256 * 2**20
#: How much larger than its file a log is as uncompressed JSON, roughly.
_EXPANSION = {"json": 1, "parquet": 10}
_GZIP_EXPANSION = 8

#: The SQL files, in the order they run.
SQL_FILES = (
    "01_records.sql",
    "02_exposures.sql",
    "03_unit_ids.sql",
    "04_outcome_join.sql",
    "05_metrics.sql",
    "06_segments.sql",
    "07_guardrails.sql",
    "08_timeline.sql",
)
_EXPOSURE, _OUTCOME, _GUARDRAIL = (
    "experiment_exposure",
    "experiment_outcome",
    "experiment_guardrail",
)


class EngineSettings:
    """How the engine runs.

    Args:
        memory_limit: DuckDB's memory limit (``"1GB"``); past it, DuckDB spills to disk.
        work_dir: Where the temporary workspace goes (the system's temp directory if None).
        threads: DuckDB threads (all cores if None).
        keep_malformed: How many unreadable lines to locate and keep (all are counted).
    """

    def __init__(
        self,
        *,
        memory_limit: str = "1GB",
        work_dir: str | Path | None = None,
        threads: int | None = None,
        keep_malformed: int = 50,
    ) -> None:
        self.memory_limit = memory_limit
        self.work_dir = None if work_dir is None else Path(work_dir)
        self.threads = threads
        self.keep_malformed = keep_malformed


def sql_script(name: str) -> str:
    """The text of one of the SQL files (package data)."""
    return resources.files(__package__).joinpath("sql").joinpath(name).read_text(encoding="utf-8")


def tally(
    sources: str | Path | Sequence[str | Path],
    *,
    encoding: str | None = None,
    segment_by: str | None = None,
    timeline_metrics: Iterable[str] = (),
    settings: EngineSettings | None = None,
) -> LogTallies:
    """Read ``sources`` (paths or globs) and return the aggregated tables.

    Raises:
        EventLogError: A source is missing, unreadable, or matches no file.
    """
    settings = settings or EngineSettings()
    paths = resolve(sources)
    with tempfile.TemporaryDirectory(prefix="featbit-audit-", dir=settings.work_dir) as tmp:
        workspace = Path(tmp)
        files = [transcode(sniff(p, encoding), workspace, i) for i, p in enumerate(paths)]
        con = duckdb.connect(_database(workspace, files))
        try:
            _configure(con, workspace, settings)
            load_events(con, files, segment_by)
            con.execute("CREATE OR REPLACE TABLE audit_timeline_metrics (metric VARCHAR)")
            metrics = list(dict.fromkeys(timeline_metrics))
            if metrics:
                con.executemany(
                    "INSERT INTO audit_timeline_metrics VALUES (?)", [(m,) for m in metrics]
                )
            for name in SQL_FILES:
                con.execute(sql_script(name))
            return fetch(con, files, settings.keep_malformed)
        finally:
            con.close()


def _database(workspace: Path, files: Sequence[SourceFile]) -> str:
    """Memory for a small log (every step is faster there), a database file for a large one:
    DuckDB writes a large table compressed as it loads (tens of bytes a record instead of
    hundreds), so the log never has to fit in memory."""
    expanded = sum(
        f.readable.stat().st_size * (_EXPANSION[f.kind] if not f.gzip else _GZIP_EXPANSION)
        for f in files
    )
    return str(workspace / "audit.duckdb") if expanded > _IN_MEMORY_BYTES else ":memory:"


def _configure(con: duckdb.DuckDBPyConnection, workspace: Path, settings: EngineSettings) -> None:
    con.execute(f"SET memory_limit = '{settings.memory_limit}'")
    con.execute(f"SET temp_directory = '{workspace / 'spill'}'")
    con.execute("SET preserve_insertion_order = false")
    con.execute("SET enable_progress_bar = false")
    if settings.threads is not None:
        con.execute(f"SET threads = {int(settings.threads)}")
