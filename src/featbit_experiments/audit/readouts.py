"""Per-variant readouts of outcome metrics: rates or means with intervals, and treatment minus
control, for the whole run and (for the primary metric) per segment.

The analysis unit is the assignment unit: a unit's repeated outcomes of one metric are averaged
first, so ten turns of one conversation do not count as ten independent samples. Only outcomes
that joined a unit with a single variant are read (see ``checks.join_outcomes``). A metric
whose every tracked value is 1 is a conversion, read over all exposed units of the variant.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from .checks import JoinedOutcome
from .model import Effect, MetricReadout, SegmentEffect, VariantEstimate
from .options import AuditOptions
from .stats import (
    Interval,
    mean_difference,
    mean_interval,
    rate_difference,
    wilson_interval,
)

__all__ = ["readouts", "segment_effects"]


@dataclass(frozen=True)
class _Sample:
    """Per-unit values of one metric in one variant: ``n`` units, their sum and sample SD."""

    n: int
    total: float
    sd: float = 0.0

    @property
    def mean(self) -> float:
        return self.total / self.n if self.n else 0.0

    @classmethod
    def of(cls, values: Sequence[float]) -> _Sample:
        sd = statistics.stdev(values) if len(values) > 1 else 0.0
        return cls(len(values), math.fsum(values), sd)


def readouts(
    joined: Sequence[JoinedOutcome],
    exposed: Mapping[str, int],
    control: str | None,
    options: AuditOptions,
) -> tuple[MetricReadout, ...]:
    """Every metric's per-variant estimates and effects against ``control``.

    Args:
        joined: Outcomes that joined a unit with a single variant.
        exposed: Units with a single variant, per variant (denominators of conversions).
        control: The control variant, or None (no effects then).
        options: Confidence level and metric roles.
    """
    by_metric: dict[str, list[JoinedOutcome]] = {}
    for outcome in joined:
        by_metric.setdefault(outcome.metric, []).append(outcome)
    result = []
    for metric in sorted(by_metric):
        role, higher = options.goal_for(metric)
        kind, samples = _samples(by_metric[metric], exposed)
        samples = _ordered(samples, control, exposed)
        variants = tuple(
            _estimate(name, kind, sample, options.confidence) for name, sample in samples.items()
        )
        effects = _effects(kind, samples, control, higher, options.confidence)
        result.append(MetricReadout(metric, kind, role, higher, variants, effects))
    order = {"primary": 0, "guardrail": 1, "secondary": 2}
    return tuple(sorted(result, key=lambda r: order[r.role]))


def segment_effects(
    joined: Sequence[JoinedOutcome],
    exposed: Mapping[str, int],
    control: str | None,
    options: AuditOptions,
) -> tuple[SegmentEffect, ...]:
    """The primary metric's effects within each segment (not for conversions, whose
    denominators, exposed units, carry no segment)."""
    primary = options.primary
    if primary is None or options.segment_by is None or control is None:
        return ()
    mine = [o for o in joined if o.metric == primary.name and o.segment is not None]
    segments = sorted({o.segment for o in mine if o.segment is not None})
    # Bonferroni over the segments too: more segments, more chances of a chance split.
    level = 1 - (1 - options.confidence) / max(1, len(segments))
    result = []
    for segment in segments:
        kind, samples = _samples([o for o in mine if o.segment == segment], exposed)
        if kind == "conversion":
            return ()
        samples = _ordered(samples, control, exposed)
        for effect in _effects(kind, samples, control, primary.higher_is_better, level):
            result.append(SegmentEffect(segment, effect))
    return tuple(result)


def _ordered(
    samples: dict[str, _Sample], control: str | None, exposed: Mapping[str, int]
) -> dict[str, _Sample]:
    """Control first, then the exposure table's order."""
    rank = {name: i + 1 for i, name in enumerate(exposed)}
    if control is not None:
        rank[control] = 0
    return dict(
        sorted(samples.items(), key=lambda item: (rank.get(item[0], len(rank) + 1), item[0]))
    )


def _samples(
    outcomes: Iterable[JoinedOutcome], exposed: Mapping[str, int]
) -> tuple[str, dict[str, _Sample]]:
    per_unit: dict[str, dict[str, list[float]]] = {}
    all_ones = True
    for outcome in outcomes:
        sums = per_unit.setdefault(outcome.variant, {}).setdefault(outcome.unit_id, [0.0, 0.0])
        sums[0] += outcome.cell.total
        sums[1] += outcome.cell.count
        all_ones = all_ones and outcome.cell.all_ones
    values = {
        v: [total / count for total, count in units.values()] for v, units in per_unit.items()
    }
    if all_ones:
        # Only successes are tracked: every exposed unit without one counts as a 0.
        names = list(dict.fromkeys([*exposed, *values]))
        samples = {}
        for variant in names:
            hits = len(values.get(variant, ()))
            samples[variant] = _Sample(max(exposed.get(variant, 0), hits), hits)
        return "conversion", samples
    binary = all(x in (0.0, 1.0) for units in values.values() for x in units)
    samples = {variant: _Sample.of(units) for variant, units in values.items()}
    return ("binary" if binary else "mean"), samples


def _estimate(variant: str, kind: str, sample: _Sample, confidence: float) -> VariantEstimate:
    interval: Interval | None
    if kind == "mean":
        interval = mean_interval(sample.mean, sample.sd, sample.n, confidence)
    else:
        interval = wilson_interval(sample.total, sample.n, confidence)
    return VariantEstimate(variant, sample.n, sample.mean, interval)


def _effects(
    kind: str,
    samples: Mapping[str, _Sample],
    control: str | None,
    higher_is_better: bool,
    confidence: float,
) -> tuple[Effect, ...]:
    if control is None or control not in samples:
        return ()
    treatments = [name for name in samples if name != control]
    # Bonferroni over the treatments compared with one control.
    level = 1 - (1 - confidence) / max(1, len(treatments))
    base = samples[control]
    effects = []
    for name in treatments:
        sample = samples[name]
        if kind == "mean":
            interval = mean_difference(
                (sample.mean, sample.sd, sample.n), (base.mean, base.sd, base.n), level
            )
        else:
            interval = rate_difference((sample.total, sample.n), (base.total, base.n), level)
        difference = sample.mean - base.mean
        verdict = "unclear"
        if interval is not None and interval.excludes_zero():
            verdict = "better" if (difference > 0) == higher_is_better else "worse"
        effects.append(Effect(name, control, difference, interval, verdict))
    return tuple(effects)
