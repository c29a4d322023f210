"""The segment review: every metric broken down by the values of one field, with n, rate or
mean and interval per variant per segment, and the effects against control.

A unit's segment is the outcome's own value of the field, else the one its exposures carry
(a field such as ``accountId`` may be on exposures only). Looking at S segments is S chances
of a split by chance, so every interval here is at the level corrected for S (Bonferroni),
and the effects' always-valid intervals too. A field no record carries, a conversion whose
exposures lack the field (its denominators are exposed units), and segments left out are
said in notes, never shown as an empty breakdown.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from .estimates import MetricReadout, SegmentEffect, SegmentReadout, SegmentReview
from .readouts import Comparison, effects, estimate, ordered, samples
from .tallies import RunTallies

__all__ = ["segment_review"]


def segment_review(
    run: RunTallies,
    field: str,
    metrics: Sequence[MetricReadout],
    exposed_order: Sequence[str],
    control: str | None,
    comparison: Comparison,
    max_segments: int,
) -> tuple[SegmentReview, tuple[SegmentEffect, ...]]:
    """The review, and every effect in it as a :class:`SegmentEffect` (for the rules)."""
    exposures, outcomes = run.segment_coverage
    if not exposures and not outcomes:
        note = (
            f"no exposure or outcome record of this run carries {field!r} (at the top level "
            "or in attributes): is the field name right?"
        )
        return SegmentReview(field, (), comparison.confidence, (), (note,)), ()
    names = _segments(run)
    notes: list[str] = []
    if len(names) > max_segments:
        notes.append(
            f"{len(names) - max_segments} of {len(names)} {field} values with the fewest units "
            "are left out"
        )
        names = names[:max_segments]
    if not exposures:
        notes.append(f"{field!r} is on outcomes only: exposures do not carry it")
    count = max(1, len(names))
    level = 1 - (1 - comparison.confidence) / count
    within = Comparison(level, comparison.alpha / count, comparison.tuning, comparison.sequential)
    readouts: list[SegmentReadout] = []
    flat: list[SegmentEffect] = []
    for metric in metrics:
        by_segment = run.segments.get(metric.metric, {})
        if metric.kind == "conversion" and not run.segment_units:
            if by_segment:
                notes.append(
                    f"{metric.metric!r} is a conversion (its denominators are exposed units) "
                    f"and exposures do not carry {field!r}: it is not broken down"
                )
            continue
        for segment in names:
            aggregates = by_segment.get(segment, ())
            if not aggregates:
                continue
            exposed = {v: run.segment_units.get(segment, {}).get(v, 0) for v in exposed_order}
            exposed = {v: n for v, n in exposed.items() if n}
            found = ordered(samples(metric.kind, aggregates, exposed), control, exposed_order)
            compared = effects(metric.kind, found, control, metric.higher_is_better, within)
            readouts.append(
                SegmentReadout(
                    metric.metric,
                    segment,
                    metric.kind,
                    tuple(estimate(v, metric.kind, s, level) for v, s in found.items()),
                    compared,
                )
            )
            flat.extend(SegmentEffect(segment, effect, metric.metric) for effect in compared)
    return SegmentReview(field, tuple(names), level, tuple(readouts), tuple(notes)), tuple(flat)


def _segments(run: RunTallies) -> list[str]:
    """Segment values, most units first (exposed units, else units with outcomes)."""
    units: dict[str, int] = {}
    for segment, per_variant in run.segment_units.items():
        units[segment] = sum(per_variant.values())
    seen: Mapping[str, int] = {
        segment: sum(a.units for a in aggregates)
        for by_segment in run.segments.values()
        for segment, aggregates in by_segment.items()
    }
    for segment, n in seen.items():
        units.setdefault(segment, n)
    return sorted(units, key=lambda s: (-units[s], s))
