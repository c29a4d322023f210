"""A pilot's event log as the preflight needs it: per experiment, the units exposed and over
how long, the evaluations refused for a missing or invalid unit ID (by where the ID came from),
and the outcome metrics seen.

A small reader of its own over the JSON Lines the sinks write (``event_schema``), independent
of the audit's engine: it keeps one set of unit IDs per experiment and counts the rest, and it
never judges what it reads (the checks do). Malformed lines are counted, not fatal.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from types import MappingProxyType
from typing import Any

from .. import event_schema as schema
from ..guardrails import Guardrail

__all__ = ["PilotLog", "PilotStats", "read_pilot_log"]

_REFUSALS = frozenset({str(Guardrail.MISSING_UNIT_ID), str(Guardrail.INVALID_UNIT_ID)})
#: How the resolver names the attribute an invalid ID was read from (``units.UnitCatalog.read``).
_ATTRIBUTE = re.compile(r"\(attribute ([^)\s]+)\)")
_SECONDS_PER_DAY = 86400.0
#: A pilot shorter than this is extrapolated from this long, not from its few seconds.
_SHORTEST_SPAN = 3600.0


@dataclass(frozen=True)
class PilotStats:
    """One experiment in the pilot log.

    Args:
        exposed_units: Distinct unit IDs with an exposure.
        exposures: Exposure records.
        span_seconds: From the first to the last exposure.
        refused_by_source: Evaluations refused for a missing or invalid unit ID, by source.
        outcome_metrics: Outcome metric names seen for the experiment.
    """

    exposed_units: int = 0
    exposures: int = 0
    span_seconds: float = 0.0
    refused_by_source: Mapping[str, int] = field(default_factory=dict)
    outcome_metrics: frozenset[str] = frozenset()

    @property
    def refused(self) -> int:
        return sum(self.refused_by_source.values())

    @property
    def units_per_day(self) -> float | None:
        """Exposed units a day over the pilot (a pilot under an hour counts as an hour)."""
        if not self.exposed_units:
            return None
        return self.exposed_units * _SECONDS_PER_DAY / max(self.span_seconds, _SHORTEST_SPAN)


@dataclass(frozen=True)
class PilotLog:
    """What a pilot log says, per experiment key."""

    path: str
    experiments: Mapping[str, PilotStats]
    #: Refusals recorded before any experiment was known (the Starlette middleware), by
    #: (unit, source): they count against every experiment on that unit.
    unattributed: Mapping[tuple[str, str], int]
    malformed_lines: int = 0

    def stats(self, experiment_key: str, unit: str) -> PilotStats:
        found = self.experiments.get(experiment_key, PilotStats())
        extra = {source: n for (on, source), n in self.unattributed.items() if on == unit}
        if not extra:
            return found
        merged = Counter(found.refused_by_source)
        merged.update(extra)
        return PilotStats(
            found.exposed_units,
            found.exposures,
            found.span_seconds,
            MappingProxyType(dict(merged)),
            found.outcome_metrics,
        )


class _Tally:
    def __init__(self) -> None:
        self.units: set[str] = set()
        self.exposures = 0
        self.first: datetime | None = None
        self.last: datetime | None = None
        self.refused: Counter[str] = Counter()
        self.metrics: set[str] = set()

    def expose(self, record: Mapping[str, Any]) -> None:
        self.exposures += 1
        unit_id = record.get(schema.UNIT_ID)
        if isinstance(unit_id, str):
            self.units.add(unit_id)
        when = _timestamp(record.get(schema.TIMESTAMP))
        if when is not None:
            self.first = when if self.first is None else min(self.first, when)
            self.last = when if self.last is None else max(self.last, when)

    def stats(self) -> PilotStats:
        span = (self.last - self.first).total_seconds() if self.first and self.last else 0.0
        return PilotStats(
            len(self.units),
            self.exposures,
            span,
            MappingProxyType(dict(self.refused)),
            frozenset(self.metrics),
        )


def read_pilot_log(path: str | Path) -> PilotLog:
    """Read a JSON Lines event log; raises OSError when the file cannot be read."""
    file = Path(path)
    with file.open(encoding="utf-8-sig", errors="replace") as lines:
        return pilot_from_lines(lines, source=str(file))


def pilot_from_lines(lines: Iterable[str], *, source: str = "events") -> PilotLog:
    tallies: dict[str, _Tally] = {}
    unattributed: Counter[tuple[str, str]] = Counter()
    malformed = 0
    for line in lines:
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            malformed += 1
            continue
        if not isinstance(record, dict):
            malformed += 1
            continue
        kind = record.get(schema.EVENT)
        key = record.get(schema.EXPERIMENT_KEY)
        tally = tallies.setdefault(key, _Tally()) if isinstance(key, str) and key else None
        if kind == schema.EXPOSURE and tally is not None:
            tally.expose(record)
        elif kind == schema.OUTCOME and tally is not None:
            metric = record.get(schema.METRIC)
            if isinstance(metric, str):
                tally.metrics.add(metric)
        elif kind == schema.GUARDRAIL and _is_evaluation_refusal(record):
            count = 1 + _suppressed(record)
            where = _source_of(record)
            if tally is not None:
                tally.refused[where] += count
            else:
                unit = str(record.get(schema.ASSIGNMENT_UNIT) or "unknown unit")
                unattributed[(unit, where)] += count
    return PilotLog(
        source,
        MappingProxyType({key: tally.stats() for key, tally in tallies.items()}),
        MappingProxyType(dict(unattributed)),
        malformed,
    )


def _is_evaluation_refusal(record: Mapping[str, Any]) -> bool:
    """A refused evaluation (an outcome refused for its ID carries a ``metric`` instead)."""
    return record.get(schema.GUARDRAIL_NAME) in _REFUSALS and schema.METRIC not in record


def _source_of(record: Mapping[str, Any]) -> str:
    """Where the refused ID came from: the middleware's ``source``, the attribute the resolver
    read it from, or that no ID was found at all."""
    source = record.get("source")
    if isinstance(source, str) and source:
        return source
    match = _ATTRIBUTE.search(str(record.get(schema.MESSAGE, "")))
    if match is not None:
        return f"attribute {match.group(1)}"
    if record.get(schema.GUARDRAIL_NAME) == str(Guardrail.MISSING_UNIT_ID):
        return "no ID in the context"
    return "ambiguous or unreadable ID"


def _suppressed(record: Mapping[str, Any]) -> int:
    value = record.get("suppressed")
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _timestamp(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=timezone.utc)
