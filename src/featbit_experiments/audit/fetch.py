"""Reads the tables the SQL files built into :class:`~.tallies.LogTallies`: one query per
table, rows grouped by run. It also turns the engine's unreadable-line counts into the
report's malformed lines (located by ``malformed``). No statistic is computed here.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .loading import blank_rows, count_unreadable
from .malformed import locate
from .model import MalformedLine, UnitIdChange
from .sources import SourceFile
from .tallies import (
    DailyExposure,
    DailyMetric,
    GuardrailTally,
    LogTallies,
    RunKey,
    RunTallies,
    VariantAggregate,
)

if TYPE_CHECKING:
    import duckdb

__all__ = ["fetch"]

_EXPOSURE, _OUTCOME, _GUARDRAIL = (
    "experiment_exposure",
    "experiment_outcome",
    "experiment_guardrail",
)
Rows = dict[RunKey, list[tuple[Any, ...]]]


def fetch(
    con: duckdb.DuckDBPyConnection, files: Sequence[SourceFile], keep_malformed: int
) -> LogTallies:
    unreadable = count_unreadable(con, files) if blank_rows(con) else {}
    malformed_count = sum(u.total for u in unreadable.values())
    malformed: list[MalformedLine] = []
    if malformed_count:
        con.execute("SET preserve_insertion_order = true")  # positions in file order
        for source in files:
            found = unreadable.get(str(source.readable))
            if found is not None and found.total:
                malformed.extend(locate(con, source, keep_malformed - len(malformed)))
    ignored, unattributed = _kinds(con, malformed_count)
    return LogTallies(
        lines=int(con.execute("SELECT count(*) FROM events").fetchall()[0][0]),
        malformed=tuple(malformed),
        malformed_count=malformed_count,
        notes=tuple(
            f"{f.path}: read as {f.encoding} ({f.how})" for f in files if f.encoding != "utf-8"
        ),
        ignored=ignored,
        unattributed_outcomes=unattributed,
        runs=_runs(con),
        guardrails=tuple(
            GuardrailTally(key, run_id, flag, name, *map(int, counts))
            for key, run_id, flag, name, *counts in con.execute(
                "SELECT experiment_key, run_id, flag_key, guardrail, records, suppressed, "
                "units, records_without_unit_id FROM audit_guardrails ORDER BY ALL"
            ).fetchall()
        ),
    )


def _kinds(con: duckdb.DuckDBPyConnection, malformed: int) -> tuple[dict[str, int], int]:
    """Records that are not audited, by kind, and outcomes that name no experiment."""
    ignored: dict[str, int] = {}
    unattributed = 0
    rows = con.execute(
        "SELECT event, names_experiment, records FROM audit_record_kinds ORDER BY ALL"
    ).fetchall()
    for event, names_experiment, records in rows:
        if event is None:
            # Unreadable lines are rows of NULLs too; they are counted as malformed instead.
            if records - malformed > 0:
                ignored["(no event field)"] = records - malformed
        elif event == _OUTCOME and not names_experiment:
            unattributed += records
        elif event == _EXPOSURE and not names_experiment:
            ignored[f"{_EXPOSURE} without experimentKey"] = records
        elif event not in (_EXPOSURE, _OUTCOME, _GUARDRAIL):
            ignored[str(event)] = ignored.get(str(event), 0) + records
    return ignored, unattributed


def _grouped(con: duckdb.DuckDBPyConnection, sql: str) -> Rows:
    groups: Rows = defaultdict(list)
    for row in con.execute(sql).fetchall():
        groups[(row[0], row[1])].append(row[2:])
    return groups


def _runs(con: duckdb.DuckDBPyConnection) -> dict[RunKey, RunTallies]:
    q = {
        "flags": "SELECT experiment_key, run_id, flag_key FROM audit_run_flags "
        "ORDER BY experiment_key, run_id, first_seen, flag_key",
        "variants": "SELECT experiment_key, run_id, variant, units, sticky_units "
        "FROM audit_variant_units ORDER BY ALL",
        "assignment": "SELECT experiment_key, run_id, assignment_unit, units "
        "FROM audit_assignment_units "
        "ORDER BY experiment_key, run_id, units DESC, first_seen, assignment_unit",
        "mixed": "SELECT * FROM audit_mixed_units",
        "examples": "SELECT * FROM audit_mixed_examples ORDER BY ALL",
        "reasons": "SELECT * FROM audit_exposure_reasons "
        "ORDER BY experiment_key, run_id, exposures DESC, reason",
        "changes": "SELECT * FROM audit_unit_id_changes "
        "ORDER BY experiment_key, run_id, exposures DESC, assignment_unit, matched_field",
        "join": "SELECT * FROM audit_join ORDER BY ALL",
        "valueless": "SELECT * FROM audit_valueless_outcomes",
        "metrics": "SELECT experiment_key, run_id, metric, variant, units, total, sd, "
        "all_ones, is_binary FROM audit_metric_variants ORDER BY ALL",
        "mismatches": "SELECT * FROM audit_metric_unit_mismatches ORDER BY ALL",
        "directions": "SELECT * FROM audit_metric_directions ORDER BY ALL",
        "segments": "SELECT experiment_key, run_id, metric, segment, variant, units, total, "
        "sd, all_ones, is_binary FROM audit_segment_variants ORDER BY ALL",
        "segment_units": "SELECT * FROM audit_segment_units ORDER BY ALL",
        "coverage": "SELECT * FROM audit_segment_coverage",
        "daily": "SELECT * FROM audit_daily_exposures ORDER BY ALL",
        "looks": "SELECT experiment_key, run_id, metric, variant, day, new_units, "
        "sum_change, square_change FROM audit_daily_metrics ORDER BY ALL",
    }
    tables = {name: _grouped(con, sql) for name, sql in q.items()}
    runs: dict[RunKey, RunTallies] = {}
    for key, run_id, first, last in con.execute(
        "SELECT * FROM audit_runs ORDER BY experiment_key, run_id"
    ).fetchall():
        run = RunTallies(key, run_id, first_timestamp=first, last_timestamp=last)
        _fill(run, {name: rows.get((key, run_id), []) for name, rows in tables.items()})
        runs[(key, run_id)] = run
    return runs


def _fill(run: RunTallies, t: dict[str, list[tuple[Any, ...]]]) -> None:
    run.flag_keys = tuple(flag for (flag,) in t["flags"])
    for variant, units, sticky in t["variants"]:
        run.variant_units[variant] = int(units)
        run.sticky_units[variant] = int(sticky)
    run.assignment_units = {unit: int(units) for unit, units in t["assignment"]}
    for units, mixed in t["mixed"]:
        run.exposed_units, run.mixed_units = int(units), int(mixed)
    run.mixed_examples = tuple(unit_id for (unit_id,) in t["examples"])
    for reason, exposures, without_unit in t["reasons"]:
        run.exposure_reasons[reason] = int(exposures)
        run.exposures_without_unit += int(without_unit)
    run.unit_id_changes = tuple(
        UnitIdChange(unit, field, int(exposures), int(units), since)
        for unit, field, exposures, units, since in t["changes"]
    )
    for status, other, outcomes in t["join"]:
        run.join[status] = run.join.get(status, 0) + int(outcomes)
        if status == "other_unit":
            run.keyed_at_other_unit[other] = int(outcomes)
    run.outcomes_without_value = sum(int(n) for (n,) in t["valueless"])
    for metric, *row in t["metrics"]:
        run.metrics[metric] = (*run.metrics.get(metric, ()), _aggregate(row))
    run.metric_unit_mismatches = tuple((m, u, int(n)) for m, u, n in t["mismatches"])
    for metric, direction, outcomes in t["directions"]:
        run.directions.setdefault(metric, {})[direction] = int(outcomes)
    for metric, segment, *row in t["segments"]:
        by_segment = run.segments.setdefault(metric, {})
        by_segment[segment] = (*by_segment.get(segment, ()), _aggregate(row))
    for segment, variant, units in t["segment_units"]:
        run.segment_units.setdefault(segment, {})[variant] = int(units)
    for exposures, outcomes in t["coverage"]:
        run.segment_coverage = (int(exposures), int(outcomes))
    run.daily_exposures = tuple(
        DailyExposure(day, variant, int(units), int(sticky))
        for day, variant, units, sticky in t["daily"]
    )
    run.daily_metrics = tuple(
        DailyMetric(metric, variant, day, int(new), float(change), float(square))
        for metric, variant, day, new, change, square in t["looks"]
    )


def _aggregate(row: Sequence[Any]) -> VariantAggregate:
    variant, units, total, sd, all_ones, binary = row
    return VariantAggregate(
        variant, int(units), float(total), float(sd or 0.0), bool(all_ones), bool(binary)
    )
