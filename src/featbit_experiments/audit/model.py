"""The shape of an audit's result: plain frozen dataclasses that the table, JSON and HTML
renderers read and that code (the demo, a release script) can inspect directly.

Nothing here computes anything; see ``checks`` and ``decision`` for that. What the audit reads
from outcomes (estimates, effects, segments, timeline) is in ``estimates``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum

from .estimates import MetricReadout, SegmentEffect, SegmentReview, Timeline

__all__ = [
    "Action",
    "AuditReport",
    "Decision",
    "DirectionConflict",
    "ExperimentAudit",
    "Finding",
    "GuardrailImpact",
    "JoinSummary",
    "MalformedLine",
    "MetricUnitMismatch",
    "MixedUnits",
    "SampleRatioTest",
    "Severity",
    "UnitIdChange",
    "VariantExposure",
]


class Action(str, Enum):
    """The decision actions a release owner chooses from."""

    CONTINUE = "continue"
    PAUSE = "pause"
    ROLL_BACK = "roll_back"
    SEGMENT = "segment"
    SHIP = "ship"
    REDESIGN = "redesign"

    def __str__(self) -> str:
        return self.value

    @property
    def label(self) -> str:
        """How a person writes it (``roll back``)."""
        return self.value.replace("_", " ")


class Severity(str, Enum):
    """How much a finding weighs: ``error`` breaks the experiment's integrity, ``warning``
    needs a look, ``info`` is context."""

    ERROR = "error"
    WARNING = "warning"
    INFO = "info"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class MalformedLine:
    """A line of the event log that could not be read as an event (1-based line number in
    ``file``, the log's file it is in)."""

    line: int
    reason: str
    file: str | None = None


@dataclass(frozen=True)
class Finding:
    """One named defect or observation; ``code`` is stable, ``message`` is for people."""

    code: str
    severity: Severity
    message: str


@dataclass(frozen=True)
class Decision:
    """The decision hint and the rule (a stable id from ``decision``) that produced it."""

    action: Action
    rule: str
    reason: str


@dataclass(frozen=True)
class VariantExposure:
    """Exposed units of one variant, their share, and the share the split expects."""

    variant: str
    units: int
    share: float
    expected_share: float | None


@dataclass(frozen=True)
class SampleRatioTest:
    """Pearson's chi-square test of exposed units per variant against the expected split.

    ``reliable`` is False when some variant expects fewer than five units (the chi-square
    approximation is poor there); the decision rules ignore an unreliable test.
    """

    chi_square: float
    df: int
    p_value: float
    reliable: bool


@dataclass(frozen=True)
class JoinSummary:
    """How the experiment run's outcome records join its exposures.

    An outcome joins when an exposure of this run has the same unit ID and the same variant.
    An outcome without a variant joins when its unit saw exactly one variant
    (``variant_inferred`` counts those). ``keyed_at_other_unit`` counts unjoined outcomes whose
    key is another unit's ID (a user ID in a conversation experiment), by that unit's name.
    """

    outcomes: int
    joined: int
    variant_inferred: int
    variant_mismatch: int
    no_exposure: int
    no_unit_id: int
    keyed_at_other_unit: Mapping[str, int] = field(default_factory=dict)

    @property
    def rate(self) -> float | None:
        """Joined share of outcomes, or None without outcomes."""
        return self.joined / self.outcomes if self.outcomes else None


@dataclass(frozen=True)
class MixedUnits:
    """Units exposed to more than one variant in one experiment run."""

    units: int
    of_units: int
    examples: tuple[str, ...] = ()

    @property
    def share(self) -> float:
        return self.units / self.of_units if self.of_units else 0.0


@dataclass(frozen=True)
class MetricUnitMismatch:
    """Outcome records of ``metric`` measured (``metricUnit``) or keyed (``assignmentUnit``)
    at ``unit`` while the experiment randomizes by another unit."""

    metric: str
    unit: str
    outcomes: int


@dataclass(frozen=True)
class UnitIdChange:
    """Exposures whose ``unitId`` is not the record's own ID of its ``assignment_unit`` (a
    conversation experiment whose unitId became the user's ID): the unit changed although
    the label did not. ``matched_field`` names the ID field unitId equals instead, if any."""

    assignment_unit: str
    matched_field: str | None
    exposures: int
    units: int
    since: str | None


@dataclass(frozen=True)
class GuardrailImpact:
    """An integrity guardrail (a fallback, a switched variant...) of one run: its occurrences
    (records plus the ones throttled records say they stood for), the units it touched at
    most, and their share of the run's exposed units."""

    name: str
    events: int
    units: int
    share: float


@dataclass(frozen=True)
class DirectionConflict:
    """Outcome records of ``metric`` disagree on which way it is better (``metricDirection``
    value -> records), or disagree with the direction the options give."""

    metric: str
    directions: Mapping[str, int]
    chosen: str


@dataclass(frozen=True)
class ExperimentAudit:
    """Everything the audit found for one experiment run (experiment key plus run id)."""

    experiment_key: str
    run_id: str
    flag_keys: tuple[str, ...]
    assignment_unit: str | None
    assignment_units: Mapping[str, int]
    first_timestamp: str | None
    last_timestamp: str | None
    exposures: tuple[VariantExposure, ...]
    sample_ratio: SampleRatioTest | None
    join: JoinSummary
    mixed: MixedUnits
    metric_units: tuple[MetricUnitMismatch, ...]
    unit_changed: bool
    guardrails: Mapping[str, int]
    fallbacks: int
    exposure_reasons: Mapping[str, int]
    control: str | None
    metrics: tuple[MetricReadout, ...]
    segments: tuple[SegmentEffect, ...]
    findings: tuple[Finding, ...]
    decision: Decision
    unit_id_changes: tuple[UnitIdChange, ...] = ()
    integrity: tuple[GuardrailImpact, ...] = ()
    direction_conflicts: tuple[DirectionConflict, ...] = ()
    segment_review: SegmentReview | None = None
    timeline: Timeline | None = None
    #: The decision's intervals: ``always-valid`` (a confidence sequence) or ``fixed-horizon``,
    #: and the confidence level each deciding interval is at after the multiplicity adjustment.
    intervals: str = "always-valid"
    decision_confidence: float | None = None

    @property
    def title(self) -> str:
        return f"{self.experiment_key} (run {self.run_id})" if self.run_id else self.experiment_key

    @property
    def exposed_units(self) -> int:
        return sum(v.units for v in self.exposures)


@dataclass(frozen=True)
class AuditReport:
    """The audit of one event log.

    Args:
        source: Where the events came from (a path, or a label for in-memory events).
        lines: Records read: non-blank lines of JSON Lines files, rows of Parquet files.
        malformed: The first malformed lines, with their line numbers.
        malformed_count: How many lines were malformed in all.
        ignored: Records that are not experiment events, by their ``event`` value.
        log_experiment_keys: Every experiment key in the log, even when one was selected.
        experiments: One audit per experiment run, ordered by key and run.
        unattributed_guardrails: Guardrails naming no experiment (or an ambiguous one).
        unattributed_outcomes: Outcome records naming no experiment.
        notes: How the files were read, where it is worth saying (another text encoding).
    """

    source: str
    lines: int
    malformed: tuple[MalformedLine, ...]
    malformed_count: int
    ignored: Mapping[str, int]
    log_experiment_keys: tuple[str, ...]
    experiments: tuple[ExperimentAudit, ...]
    unattributed_guardrails: Mapping[str, int]
    unattributed_outcomes: int
    notes: tuple[str, ...] = ()

    @property
    def mixes_experiments(self) -> bool:
        """True when the log holds events of more than one experiment."""
        return len(self.log_experiment_keys) > 1
