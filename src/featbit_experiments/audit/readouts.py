"""Per-variant readouts of outcome metrics: rates or means with intervals, and treatment minus
control with a fixed-horizon and an always-valid interval.

The analysis unit is the assignment unit: the SQL averages a unit's repeated outcomes of one
metric first (``sql/05_metrics.sql``), so ten turns of one conversation do not count as ten
independent samples, and only sticky units (one variant) are read. A metric whose every
tracked value is 1 is a conversion, read over all exposed units of the variant. The helpers
here (:class:`Sample`, :func:`effects`) also serve the segment review and the timeline.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .estimates import Effect, MetricReadout, VariantEstimate
from .sequential import always_valid_difference
from .stats import (
    Interval,
    mean_difference,
    mean_interval,
    rate_difference,
    wilson_interval,
)
from .tallies import VariantAggregate

__all__ = ["Comparison", "Sample", "effects", "estimate", "metric_kind", "readout", "samples"]


@dataclass(frozen=True)
class Sample:
    """Per-unit values of one metric in one variant: ``n`` units, their sum and sample SD."""

    n: int
    total: float
    sd: float = 0.0

    @property
    def mean(self) -> float:
        return self.total / self.n if self.n else 0.0

    @classmethod
    def of_sums(cls, n: int, total: float, squares: float) -> Sample:
        """From running sums (the timeline's); the SD is 0 below two units."""
        if n < 2:
            return cls(n, total)
        variance = max(0.0, (squares - total * total / n) / (n - 1))
        return cls(n, total, math.sqrt(variance))


@dataclass(frozen=True)
class Comparison:
    """How effects are judged: the fixed-horizon level, the always-valid alpha (already
    split over the comparisons deciding together), the sequence's tuning, and which interval
    gives the verdict."""

    confidence: float
    alpha: float
    tuning: int
    sequential: bool


def metric_kind(aggregates: Sequence[VariantAggregate]) -> str:
    """``conversion`` (every record a 1), ``binary`` (every unit 0 or 1) or ``mean``."""
    if all(a.all_ones for a in aggregates):
        return "conversion"
    return "binary" if all(a.binary for a in aggregates) else "mean"


def samples(
    kind: str, aggregates: Sequence[VariantAggregate], exposed: Mapping[str, int]
) -> dict[str, Sample]:
    """Per-variant samples; a conversion's are over the exposed units ``exposed``."""
    if kind == "conversion":
        # Only successes are tracked: every exposed unit without one counts as a 0.
        hits = {a.variant: a.units for a in aggregates}
        names = list(dict.fromkeys([*exposed, *hits]))
        return {v: Sample(max(exposed.get(v, 0), hits.get(v, 0)), hits.get(v, 0)) for v in names}
    return {a.variant: Sample(a.units, a.total, a.sd) for a in aggregates}


def ordered(
    found: Mapping[str, Sample], control: str | None, order: Sequence[str]
) -> dict[str, Sample]:
    """Control first, then ``order`` (the exposure table's), then by name."""
    rank = {name: i + 1 for i, name in enumerate(order)}
    if control is not None:
        rank[control] = 0
    return dict(sorted(found.items(), key=lambda item: (rank.get(item[0], len(rank) + 1), item[0])))


def estimate(variant: str, kind: str, sample: Sample, confidence: float) -> VariantEstimate:
    interval: Interval | None
    if kind == "mean":
        interval = mean_interval(sample.mean, sample.sd, sample.n, confidence)
    else:
        interval = wilson_interval(sample.total, sample.n, confidence)
    return VariantEstimate(variant, sample.n, sample.mean, interval)


def effects(
    kind: str,
    found: Mapping[str, Sample],
    control: str | None,
    higher_is_better: bool,
    comparison: Comparison,
) -> tuple[Effect, ...]:
    """Each treatment against ``control``. The always-valid alpha arrives adjusted for
    every comparison deciding together; the fixed-horizon interval is Bonferroni-adjusted over
    the treatments only when it is for reading, and like the always-valid one when it
    decides (``sequential`` False)."""
    if control is None or control not in found:
        return ()
    treatments = [name for name in found if name != control]
    level = 1 - (1 - comparison.confidence) / max(1, len(treatments))
    if not comparison.sequential:
        level = 1 - comparison.alpha
    base = found[control]
    result = []
    for name in treatments:
        sample = found[name]
        difference = sample.mean - base.mean
        if kind == "mean":
            fixed = mean_difference(
                (sample.mean, sample.sd, sample.n), (base.mean, base.sd, base.n), level
            )
        else:
            fixed = rate_difference((sample.total, sample.n), (base.total, base.n), level)
        error = _standard_error(kind, sample, base)
        always_valid = (
            None
            if error is None
            else always_valid_difference(
                difference, error, sample.n + base.n, comparison.alpha, comparison.tuning
            )
        )
        deciding = always_valid if comparison.sequential else fixed
        verdict = "unclear"
        if deciding is not None and deciding.excludes_zero():
            verdict = "better" if (difference > 0) == higher_is_better else "worse"
        result.append(Effect(name, control, difference, fixed, verdict, always_valid))
    return tuple(result)


def _standard_error(kind: str, sample: Sample, base: Sample) -> float | None:
    """The difference's standard error; for rates with one added success and failure per
    variant (Agresti-Caffo), so a run of all 0s or all 1s does not look certain."""
    if kind == "mean":
        if sample.n < 2 or base.n < 2:
            return None
        return math.sqrt(sample.sd**2 / sample.n + base.sd**2 / base.n)
    if sample.n < 1 or base.n < 1:
        return None
    p1 = (sample.total + 1) / (sample.n + 2)
    p2 = (base.total + 1) / (base.n + 2)
    return math.sqrt(p1 * (1 - p1) / (sample.n + 2) + p2 * (1 - p2) / (base.n + 2))


def readout(
    metric: str,
    role: str,
    higher_is_better: bool,
    direction_from: str,
    aggregates: Sequence[VariantAggregate],
    exposed: Mapping[str, int],
    control: str | None,
    comparison: Comparison,
) -> MetricReadout:
    """One metric's per-variant estimates and its effects against ``control``.

    Args:
        aggregates: The metric's per-variant aggregates of per-unit values.
        exposed: Sticky exposed units per variant, in the exposure table's order (the
            denominators of a conversion).
    """
    kind = metric_kind(aggregates)
    found = ordered(samples(kind, aggregates, exposed), control, list(exposed))
    variants = tuple(
        estimate(name, kind, sample, comparison.confidence) for name, sample in found.items()
    )
    return MetricReadout(
        metric,
        kind,
        role,
        higher_is_better,
        variants,
        effects(kind, found, control, higher_is_better, comparison),
        direction_from,
    )
