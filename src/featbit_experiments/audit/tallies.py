"""The aggregated tables the engine hands to the statistics: per-run counts and per-variant
aggregates of per-unit values, small whatever the size of the log.

This is the boundary between SQL and Python: everything here is a count, a sum or a standard
deviation computed by the SQL files; nothing here is a test or an interval.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from .model import MalformedLine, UnitIdChange

__all__ = [
    "DailyExposure",
    "DailyMetric",
    "GuardrailTally",
    "LogTallies",
    "RunKey",
    "RunTallies",
    "VariantAggregate",
]

#: (experiment key, run id)
RunKey = tuple[str, str]


@dataclass(frozen=True)
class VariantAggregate:
    """One variant's per-unit values of a metric: ``units`` units, the sum and sample SD of
    their means; ``all_ones``: every record was 1; ``binary``: every unit's mean is 0 or 1."""

    variant: str
    units: int
    total: float
    sd: float
    all_ones: bool
    binary: bool


@dataclass(frozen=True)
class GuardrailTally:
    """Guardrail records sharing an experiment key, run id, flag key and name. ``suppressed``
    sums what throttled records say they stood for; ``units`` counts distinct unit IDs."""

    experiment_key: str | None
    run_id: str | None
    flag_key: str | None
    name: str
    records: int
    suppressed: int
    units: int
    records_without_unit_id: int

    @property
    def events(self) -> int:
        """Occurrences: the records and the ones they say were suppressed."""
        return self.records + self.suppressed

    @property
    def affected_units(self) -> int:
        """Units it touched, at most: named units, plus one per record without a unit ID and
        per suppressed occurrence (whose units were not written down)."""
        return self.units + self.records_without_unit_id + self.suppressed


@dataclass(frozen=True)
class DailyExposure:
    """Units first exposed to ``variant`` on ``day`` (``sticky`` of them saw only it)."""

    day: str
    variant: str
    units: int
    sticky: int


@dataclass(frozen=True)
class DailyMetric:
    """The change on ``day`` of a metric's per-variant n, sum and sum of squares of unit
    means (see ``sql/08_timeline.sql``)."""

    metric: str
    variant: str
    day: str
    new_units: int
    sum_change: float
    square_change: float


@dataclass
class RunTallies:
    """Everything the SQL files counted for one experiment run."""

    experiment_key: str
    run_id: str
    flag_keys: tuple[str, ...] = ()
    first_timestamp: str | None = None
    last_timestamp: str | None = None
    #: Units per variant (a mixed unit under each of its variants) and sticky units.
    variant_units: dict[str, int] = field(default_factory=dict)
    sticky_units: dict[str, int] = field(default_factory=dict)
    #: Units per assignment unit, the run's own (most units) first.
    assignment_units: dict[str, int] = field(default_factory=dict)
    exposed_units: int = 0
    mixed_units: int = 0
    mixed_examples: tuple[str, ...] = ()
    exposure_reasons: dict[str, int] = field(default_factory=dict)
    exposures_without_unit: int = 0
    unit_id_changes: tuple[UnitIdChange, ...] = ()
    #: Outcomes per join status (``sql/04_outcome_join.sql``), and per other unit.
    join: dict[str, int] = field(default_factory=dict)
    keyed_at_other_unit: dict[str, int] = field(default_factory=dict)
    outcomes_without_value: int = 0
    metrics: dict[str, tuple[VariantAggregate, ...]] = field(default_factory=dict)
    #: (metric, unit, outcomes) measured or keyed at another unit than the run's.
    metric_unit_mismatches: tuple[tuple[str, str, int], ...] = ()
    directions: dict[str, dict[str, int]] = field(default_factory=dict)
    #: metric -> segment -> variants; segment -> variant -> sticky exposed units.
    segments: dict[str, dict[str, tuple[VariantAggregate, ...]]] = field(default_factory=dict)
    segment_units: dict[str, dict[str, int]] = field(default_factory=dict)
    #: Exposure and outcome records that carry the segment field.
    segment_coverage: tuple[int, int] = (0, 0)
    daily_exposures: tuple[DailyExposure, ...] = ()
    daily_metrics: tuple[DailyMetric, ...] = ()

    @property
    def unit(self) -> str | None:
        """The run's assignment unit: the one most units were exposed under."""
        return next(iter(self.assignment_units), None)


@dataclass(frozen=True)
class LogTallies:
    """The whole log: what was read, what was skipped, and each run's tallies."""

    lines: int
    malformed: tuple[MalformedLine, ...]
    malformed_count: int
    notes: tuple[str, ...]
    ignored: Mapping[str, int]
    unattributed_outcomes: int
    runs: Mapping[RunKey, RunTallies]
    guardrails: tuple[GuardrailTally, ...]
