"""The audit's entry points: read an event log (files, globs of rotated files, or records
already in memory) through the engine, attribute every guardrail to its experiment run, run
the checks per run, read the metrics, name the findings, decide.

A log may mix several experiments (and several runs of one): each run is audited on its own,
and :attr:`AuditReport.mixes_experiments` says the log held more than one experiment, so a
caller can say so. ``AuditOptions.experiment`` selects one; naming an experiment the log does
not hold raises :class:`ExperimentNotFoundError` listing the ones it does.

The engine needs DuckDB (the ``audit`` extra); without it :func:`audit_file` raises
:class:`~.availability.AuditUnavailableError`, an ImportError that says how to install it.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from .analysis import audit_run
from .attribution import attribute_guardrails
from .model import AuditReport
from .options import AuditOptions
from .tallies import LogTallies

__all__ = ["ExperimentNotFoundError", "audit_file", "audit_records"]


class ExperimentNotFoundError(LookupError):
    """The selected experiment has no events in the log."""

    def __init__(self, experiment: str, available: Iterable[str]) -> None:
        self.experiment = experiment
        self.available = tuple(available)
        listed = ", ".join(self.available) or "none"
        super().__init__(f"no events of experiment {experiment!r}; the log holds: {listed}")


def audit_file(
    path: str | Path | Sequence[str | Path], options: AuditOptions | None = None
) -> AuditReport:
    """Audit an event log: a JSON Lines file (plain or gzip, UTF-8 with or without a byte
    order mark, UTF-16, UTF-32), a Parquet file, a glob of rotated files, or a list of them.

    Raises:
        EventLogError: A file is missing or unreadable, or a glob matches nothing (malformed
            lines are reported, not raised).
        ExperimentNotFoundError: ``options.experiment`` names an experiment the log lacks.
        AuditUnavailableError: DuckDB is not installed.
    """
    from .engine import EngineSettings, tally

    options = options or AuditOptions()
    tallies = tally(
        path,
        encoding=options.encoding,
        segment_by=options.segment_by,
        timeline_metrics=options.deciding_metrics,
        settings=EngineSettings(memory_limit=options.memory_limit, work_dir=options.work_dir),
    )
    source = str(path) if isinstance(path, (str, Path)) else ", ".join(str(p) for p in path)
    return _report(tallies, options, source)


def audit_records(
    records: Iterable[Mapping[str, Any]],
    options: AuditOptions | None = None,
    *,
    source: str = "(events in memory)",
) -> AuditReport:
    """Audit event records already in memory (an ``InMemorySink``'s ``events``)."""
    with tempfile.TemporaryDirectory(prefix="featbit-audit-records-") as tmp:
        path = Path(tmp) / "events.jsonl"
        with path.open("w", encoding="utf-8") as file:
            for record in records:
                file.write(json.dumps(record, default=str) + "\n")
        report = audit_file(path, options)
    return replace(report, source=source)


def _report(tallies: LogTallies, options: AuditOptions, source: str) -> AuditReport:
    runs = dict(tallies.runs)
    by_run, unattributed = attribute_guardrails(runs, tallies.guardrails)
    keys = tuple(sorted({key for key, _ in runs}))
    if options.experiment is not None and options.experiment not in keys:
        raise ExperimentNotFoundError(options.experiment, keys)
    audits = tuple(
        audit_run(run, by_run.get(run_key, []), options)
        for run_key, run in sorted(runs.items())
        if options.experiment is None or run.experiment_key == options.experiment
    )
    return AuditReport(
        source=source,
        lines=tallies.lines,
        malformed=tallies.malformed,
        malformed_count=tallies.malformed_count,
        ignored=dict(tallies.ignored),
        log_experiment_keys=keys,
        experiments=audits,
        unattributed_guardrails=unattributed,
        unattributed_outcomes=tallies.unattributed_outcomes,
        notes=tallies.notes,
    )
