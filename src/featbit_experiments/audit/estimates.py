"""The shape of what the audit reads from outcomes: per-variant estimates, effects with their
fixed-horizon and always-valid intervals, metric readouts, the segment review and the
timeline. Plain frozen dataclasses that the renderers read; nothing here computes anything.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from .stats import Interval

__all__ = [
    "DayExposures",
    "Effect",
    "Look",
    "MetricReadout",
    "SegmentEffect",
    "SegmentReadout",
    "SegmentReview",
    "Timeline",
    "VariantEstimate",
]


@dataclass(frozen=True)
class VariantEstimate:
    """A metric's per-variant estimate over units (a rate for 0/1 metrics, else a mean)."""

    variant: str
    units: int
    estimate: float
    interval: Interval | None


@dataclass(frozen=True)
class Effect:
    """Treatment minus control on one metric.

    ``interval`` is the fixed-horizon interval (valid for one look at a sample size fixed in
    advance); ``always_valid`` is the confidence sequence's interval, valid however often the
    experiment is looked at, at the level adjusted over the deciding metrics and treatments.
    ``verdict`` (``better``, ``worse`` or ``unclear`` in the metric's own direction) comes from
    the interval decisions use: the always-valid one unless fixed-horizon was asked for.
    """

    variant: str
    control: str
    difference: float
    interval: Interval | None
    verdict: str
    always_valid: Interval | None = None

    def describe(self, rate: bool, interval: Interval | None = None) -> str:
        """``+15.0 pts [+5.8, +23.8]`` for rates, ``-12.5 [-20.1, -4.9]`` for means (the
        fixed-horizon interval unless another is given)."""
        scale, unit, digits = (100, " pts", ".1f") if rate else (1, "", ".4g")
        text = f"{self.difference * scale:+{digits}}{unit}"
        shown = interval or self.interval
        if shown is not None:
            low, high = shown.low * scale, shown.high * scale
            text += f" [{low:+{digits}}, {high:+{digits}}]"
        return text


@dataclass(frozen=True)
class MetricReadout:
    """One outcome metric of an experiment run.

    ``kind`` is ``conversion`` (only 1s are ever tracked: the rate is over exposed units),
    ``binary`` (0/1 per unit: a rate over units that reported it, Wilson interval) or ``mean``
    (normal interval). ``role`` is ``primary``, ``guardrail`` or ``secondary``.
    ``direction_from`` says where ``higher_is_better`` came from: ``options`` (the command
    line or caller), ``log`` (the records' ``metricDirection``) or ``default`` (the role's).
    """

    metric: str
    kind: str
    role: str
    higher_is_better: bool
    variants: tuple[VariantEstimate, ...]
    effects: tuple[Effect, ...]
    direction_from: str = "default"


@dataclass(frozen=True)
class SegmentEffect:
    """A metric's effect of one variant within one segment value."""

    segment: str
    effect: Effect
    metric: str = ""


@dataclass(frozen=True)
class SegmentReadout:
    """One metric within one segment value: n, rate or mean and interval per variant, and the
    effects against control, all at the level corrected for the number of segments."""

    metric: str
    segment: str
    kind: str
    variants: tuple[VariantEstimate, ...]
    effects: tuple[Effect, ...]


@dataclass(frozen=True)
class SegmentReview:
    """Every metric broken down by the values of one field.

    Args:
        field: The record field (top level, else inside ``attributes``).
        segments: The segment values read, most units first.
        confidence: The level of each interval after the correction for ``segments``.
        readouts: Per metric and segment.
        notes: Why a breakdown is missing or partial (a field no record carries, a conversion
            whose exposures lack the field, segments left out).
    """

    field: str
    segments: tuple[str, ...]
    confidence: float
    readouts: tuple[SegmentReadout, ...]
    notes: tuple[str, ...]


@dataclass(frozen=True)
class DayExposures:
    """Exposed units per variant by the end of ``day`` (cumulative)."""

    day: str
    units: Mapping[str, int]


@dataclass(frozen=True)
class Look:
    """A deciding metric's effect as it stood at the end of ``day``: what a daily look saw."""

    day: str
    metric: str
    effect: Effect


@dataclass(frozen=True)
class Timeline:
    """The run day by day: exposures, and the deciding metrics' effects at each daily look."""

    days: tuple[DayExposures, ...]
    looks: tuple[Look, ...]
