"""What an audit is asked to do: which experiment, which metrics decide, the expected split,
and the thresholds of the decision rules. Parsing of the command line's spellings
(``resolved:higher``, ``control=0.5,treatment=0.5``) lives here too, so the CLI and Python
callers share it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

__all__ = [
    "INTEGRITY_GUARDRAILS",
    "AuditOptions",
    "MetricGoal",
    "parse_expected",
    "parse_goal",
]

_DIRECTIONS = {"higher": True, "lower": False}


#: Guardrails that say units did not get (or keep) the variant they were assigned, or were
#: left out of the experiment: above ``max_guardrail_share`` of units, the hint is ``pause``.
INTEGRITY_GUARDRAILS = (
    "fallback_used",
    "variant_switched",
    "store_unavailable",
    "provider_not_ready",
    "missing_unit_id",
    "invalid_unit_id",
    "unit_conflict",
    "request_unit_refused",
    "dispatch_key_mismatch",
)


@dataclass(frozen=True)
class MetricGoal:
    """A metric that drives the decision and which direction is better; ``explicit`` is False
    when the spec named no direction (the log's ``metricDirection`` may then say)."""

    name: str
    higher_is_better: bool
    explicit: bool = True


def parse_goal(spec: str, *, higher_is_better: bool) -> MetricGoal:
    """``"resolved"`` or ``"latency_ms:lower"`` / ``"csat:higher"``; the default direction
    applies when the spec names none."""
    name, sep, direction = spec.strip().rpartition(":")
    if not sep:
        name, direction = direction, ""
    if not name:
        raise ValueError(f"metric spec {spec!r} names no metric")
    if not direction:
        return MetricGoal(name, higher_is_better, explicit=False)
    if direction not in _DIRECTIONS:
        raise ValueError(f"metric spec {spec!r}: direction must be 'higher' or 'lower'")
    return MetricGoal(name, _DIRECTIONS[direction])


def parse_expected(spec: str) -> dict[str, float]:
    """``"control=0.5,treatment=0.5"`` (weights need not sum to 1; they are normalized)."""
    weights: dict[str, float] = {}
    for part in spec.split(","):
        if not part.strip():
            continue
        name, sep, number = part.partition("=")
        name = name.strip()
        if not sep or not name:
            raise ValueError(f"expected split {spec!r}: write variant=weight, comma separated")
        try:
            weight = float(number)
        except ValueError:
            raise ValueError(
                f"expected split {spec!r}: {number.strip()!r} is not a number"
            ) from None
        if not math.isfinite(weight) or weight < 0:
            raise ValueError(f"expected split {spec!r}: weights must be finite and >= 0")
        if name in weights:
            raise ValueError(f"expected split {spec!r}: {name!r} is given twice")
        weights[name] = weight
    if not weights or sum(weights.values()) <= 0:
        raise ValueError(f"expected split {spec!r}: needs at least one positive weight")
    return weights


@dataclass(frozen=True)
class AuditOptions:
    """Options of an audit; every field has a conservative default.

    Args:
        experiment: Audit only this experiment key (None: every experiment in the log).
        primary_metric: The metric a ``ship`` hint is based on: ``"name"`` (higher is better)
            or ``"name:lower"``. Without one the hint never says ship.
        guardrail_metrics: Metrics that must not get worse: ``"name"`` (lower is better, as
            for latency or handoffs) or ``"name:higher"``.
        expected: The expected split by variant name (weights, normalized); an equal split
            over the variants seen when None.
        control: The control variant's name; by default the variant named ``control``, else
            the first variant of ``expected``.
        confidence: Confidence level of every interval (before the Bonferroni adjustment
            over several treatments, and for the decision over the deciding metrics).
        srm_alpha: Sample-ratio-mismatch p-value below which the hint is ``pause``.
        max_mixed_share: Share of units with mixed variants above which the hint is
            ``redesign`` (any mixed unit is still reported).
        min_join_rate: Join rate below which the hint is ``pause``.
        segment_by: A record field (top level, else inside ``attributes``), on exposures or
            outcomes, whose values split every metric into segments (and the primary metric's
            for the ``segment`` rule).
        sequential: Decide on always-valid intervals (a confidence sequence: valid however
            often the experiment is looked at). False decides on fixed-horizon intervals,
            valid only for one look at a sample size fixed in advance.
        sequential_tuning: The number of units (both arms) at which the always-valid interval
            is tightest; it widens slowly (logarithmically) past it.
        max_guardrail_share: Share of exposed units an integrity guardrail (a fallback...)
            may touch before the hint is ``pause``.
        integrity_guardrails: The guardrail names that rule counts.
        max_segments: Segment values shown (the ones with most units); the rest are noted.
        encoding: The text encoding of JSON Lines files without a byte order mark
            (UTF-8 unless given; UTF-16 and UTF-32 are recognized on their own).
        memory_limit: The engine's memory limit (DuckDB spills to disk past it).
        work_dir: Where the engine's temporary workspace goes (the system's temp dir if None).
    """

    experiment: str | None = None
    primary_metric: str | None = None
    guardrail_metrics: tuple[str, ...] = ()
    expected: Mapping[str, float] | None = None
    control: str | None = None
    confidence: float = 0.95
    srm_alpha: float = 0.001
    max_mixed_share: float = 0.01
    min_join_rate: float = 0.95
    segment_by: str | None = None
    sequential: bool = True
    sequential_tuning: int = 1000
    max_guardrail_share: float = 0.01
    integrity_guardrails: tuple[str, ...] = INTEGRITY_GUARDRAILS
    max_segments: int = 20
    encoding: str | None = None
    memory_limit: str = "1GB"
    work_dir: str | None = None
    _goals: tuple[MetricGoal | None, tuple[MetricGoal, ...]] = field(
        init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        if not 0 < self.confidence < 1:
            raise ValueError("confidence must be between 0 and 1")
        if self.sequential_tuning < 1 or self.max_segments < 1:
            raise ValueError("sequential_tuning and max_segments must be at least 1")
        for name in ("srm_alpha", "max_mixed_share", "min_join_rate", "max_guardrail_share"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} must be between 0 and 1")
        if isinstance(self.guardrail_metrics, str):
            object.__setattr__(self, "guardrail_metrics", (self.guardrail_metrics,))
        object.__setattr__(self, "guardrail_metrics", tuple(self.guardrail_metrics))
        if self.expected is not None:
            weights = dict(self.expected)
            if not weights or sum(weights.values()) <= 0 or min(weights.values()) < 0:
                raise ValueError("expected split needs non-negative weights, one positive")
            object.__setattr__(self, "expected", MappingProxyType(weights))
        primary = (
            parse_goal(self.primary_metric, higher_is_better=True) if self.primary_metric else None
        )
        guards = tuple(parse_goal(spec, higher_is_better=False) for spec in self.guardrail_metrics)
        object.__setattr__(self, "_goals", (primary, guards))

    @property
    def primary(self) -> MetricGoal | None:
        return self._goals[0]

    @property
    def guardrails(self) -> tuple[MetricGoal, ...]:
        return self._goals[1]

    def goal_for(self, metric: str) -> tuple[str, MetricGoal | None]:
        """``(role, goal)`` of a metric under these options; the goal is None for a
        secondary metric (its direction is the log's, else higher is better)."""
        primary, guards = self._goals
        if primary is not None and primary.name == metric:
            return "primary", primary
        for goal in guards:
            if goal.name == metric:
                return "guardrail", goal
        return "secondary", None

    @property
    def deciding_metrics(self) -> tuple[str, ...]:
        """The primary and guardrail metrics: the ones the decision reads."""
        primary, guards = self._goals
        names = ([primary.name] if primary is not None else []) + [g.name for g in guards]
        return tuple(dict.fromkeys(names))

    @property
    def names_metrics(self) -> bool:
        """Whether a primary or guardrail metric was named."""
        return self._goals[0] is not None or bool(self._goals[1])
