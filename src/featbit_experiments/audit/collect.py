"""Folds experiment event records into compact per-run tallies, in one pass, in any order.

Exposures, outcomes and guardrails from several processes may arrive interleaved, so nothing is
joined here: exposures become a set of variants per unit ID, outcomes are tallied per
(metric, unit ID, variant, units, IDs, segment) cell, guardrails per name. Memory grows with
distinct units, not with events. The checks run on the tallies once the whole log is read.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from .. import event_schema as schema

__all__ = ["Collector", "OutcomeCell", "OutcomeKey", "RunEvents", "RunKey"]

#: (experiment key, run id)
RunKey = tuple[str, str]


class OutcomeKey(NamedTuple):
    """What makes outcome records interchangeable for the checks (a tuple: one is built
    per outcome record, so it must be cheap)."""

    metric: str
    unit_id: str | None
    variant: str | None
    metric_unit: str | None
    assignment_unit: str | None
    ids: tuple[tuple[str, str], ...]
    segment: str | None


@dataclass
class OutcomeCell:
    """Outcome records sharing one key: how many, their sum, and whether every value was 1 /
    every value was 0 or 1."""

    count: int = 0
    total: float = 0.0
    all_ones: bool = True
    all_binary: bool = True

    def add(self, value: float) -> None:
        self.count += 1
        self.total += value
        self.all_ones = self.all_ones and value == 1
        self.all_binary = self.all_binary and value in (0, 1)


@dataclass
class RunEvents:
    """Tallies of one experiment run."""

    experiment_key: str
    run_id: str
    flag_keys: dict[str, None] = field(default_factory=dict)
    unit_variants: dict[str, dict[str, None]] = field(default_factory=dict)
    unit_assignment: dict[str, dict[str, None]] = field(default_factory=dict)
    other_ids: dict[str, set[str]] = field(default_factory=dict)
    exposure_reasons: Counter[str] = field(default_factory=Counter)
    exposures_without_unit: int = 0
    outcomes: dict[OutcomeKey, OutcomeCell] = field(default_factory=dict)
    outcomes_without_value: int = 0
    guardrails: Counter[str] = field(default_factory=Counter)
    first_timestamp: str | None = None
    last_timestamp: str | None = None

    def seen_at(self, timestamp: Any) -> None:
        if not isinstance(timestamp, str):
            return
        if self.first_timestamp is None or timestamp < self.first_timestamp:
            self.first_timestamp = timestamp
        if self.last_timestamp is None or timestamp > self.last_timestamp:
            self.last_timestamp = timestamp


class Collector:
    """Receives records one at a time (:meth:`add`) and keeps the tallies.

    Args:
        segment_by: A record field (top level, else inside ``attributes``) whose value splits
            outcomes into segments, or None.
    """

    def __init__(self, *, segment_by: str | None = None) -> None:
        self._segment_by = segment_by
        self.records = 0
        self.runs: dict[RunKey, RunEvents] = {}
        self.ignored: Counter[str] = Counter()
        self.unattributed_outcomes = 0
        #: (experiment key, run id, flag key, guardrail name) -> count; attributed later.
        self.guardrails: Counter[tuple[str | None, str | None, str | None, str]] = Counter()

    def add(self, record: Mapping[str, Any]) -> None:
        self.records += 1
        kind = record.get(schema.EVENT)
        if kind == schema.EXPOSURE:
            self._exposure(record)
        elif kind == schema.OUTCOME:
            self._outcome(record)
        elif kind == schema.GUARDRAIL:
            self._guardrail(record)
        else:
            self.ignored[str(kind) if kind is not None else "(no event field)"] += 1

    def _run(self, record: Mapping[str, Any]) -> RunEvents | None:
        key = _text(record.get(schema.EXPERIMENT_KEY))
        if key is None:
            return None
        run_id = _text(record.get(schema.RUN_ID)) or ""
        run = self.runs.get((key, run_id))
        if run is None:
            run = self.runs[(key, run_id)] = RunEvents(key, run_id)
        flag = _text(record.get(schema.FLAG_KEY))
        if flag is not None:
            run.flag_keys[flag] = None
        run.seen_at(record.get(schema.TIMESTAMP))
        return run

    def _exposure(self, record: Mapping[str, Any]) -> None:
        run = self._run(record)
        if run is None:
            self.ignored[f"{schema.EXPOSURE} without {schema.EXPERIMENT_KEY}"] += 1
            return
        run.exposure_reasons[_text(record.get(schema.REASON)) or "(none)"] += 1
        unit_id = _text(record.get(schema.UNIT_ID))
        if unit_id is None:
            run.exposures_without_unit += 1
            return
        variant = _variant(record) or "(none)"
        run.unit_variants.setdefault(unit_id, {})[variant] = None
        unit = _text(record.get(schema.ASSIGNMENT_UNIT)) or "(none)"
        run.unit_assignment.setdefault(unit_id, {})[unit] = None
        for name in schema.UNIT_ID_FIELDS:
            other = _text(record.get(name))
            if other is not None and other != unit_id:
                run.other_ids.setdefault(name, set()).add(other)

    def _outcome(self, record: Mapping[str, Any]) -> None:
        run = self._run(record)
        if run is None:
            self.unattributed_outcomes += 1
            return
        value = _number(record.get(schema.VALUE))
        if value is None:
            run.outcomes_without_value += 1
            return
        key = OutcomeKey(
            metric=_text(record.get(schema.METRIC)) or "(unnamed)",
            unit_id=_text(record.get(schema.UNIT_ID)),
            variant=_variant(record),
            metric_unit=_text(record.get(schema.METRIC_UNIT)),
            assignment_unit=_text(record.get(schema.ASSIGNMENT_UNIT)),
            ids=tuple(
                (name, text)
                for name in schema.UNIT_ID_FIELDS
                if (text := _text(record.get(name))) is not None
            ),
            segment=self._segment_of(record),
        )
        cell = run.outcomes.get(key)
        if cell is None:
            cell = run.outcomes[key] = OutcomeCell()
        cell.add(value)

    def _guardrail(self, record: Mapping[str, Any]) -> None:
        name = _text(record.get(schema.GUARDRAIL_NAME)) or "(unnamed)"
        key = _text(record.get(schema.EXPERIMENT_KEY))
        run_id = _text(record.get(schema.RUN_ID))
        flag = _text(record.get(schema.FLAG_KEY))
        self.guardrails[(key, run_id, flag, name)] += 1

    def _segment_of(self, record: Mapping[str, Any]) -> str | None:
        if self._segment_by is None:
            return None
        value = record.get(self._segment_by)
        if value is None:
            attributes = record.get(schema.ATTRIBUTES)
            if isinstance(attributes, Mapping):
                value = attributes.get(self._segment_by)
        return None if value is None else str(value)


def _text(value: Any) -> str | None:
    """A non-empty string field (numbers are accepted as IDs and written as text)."""
    if type(value) is str:  # the common case first: this runs for every field read
        return value or None
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return str(value)
    return value or None if isinstance(value, str) else None


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, (int, float)) and value == value and abs(value) != float("inf"):
        return float(value)
    return None


def _variant(record: Mapping[str, Any]) -> str | None:
    return _text(record.get(schema.VARIATION)) or _text(record.get(schema.VARIATION_ID))
