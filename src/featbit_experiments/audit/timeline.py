"""The run day by day: exposed units per variant by the end of each day, and each deciding
metric's effect (with its always-valid interval) as a daily look would have seen it.

The SQL (``sql/08_timeline.sql``) gives each day's change of a variant's n, sum and sum of
squares of unit means; summing the changes up to a day gives the aggregates a look on that
day would have read. Because the intervals are always-valid, every point of the effect line
is a valid interval, not only the last.
"""

from __future__ import annotations

from collections.abc import Sequence

from .estimates import DayExposures, Look, MetricReadout, Timeline
from .readouts import Comparison, Sample, effects, ordered
from .tallies import RunTallies

__all__ = ["timeline"]


def timeline(
    run: RunTallies,
    metrics: Sequence[MetricReadout],
    exposed_order: Sequence[str],
    control: str | None,
    comparison: Comparison,
) -> Timeline | None:
    """The timeline of ``run``, with looks at the deciding ``metrics``; None without days."""
    days = sorted({d.day for d in run.daily_exposures} | {m.day for m in run.daily_metrics})
    if not days:
        return None
    exposed: dict[str, int] = {}
    sticky: dict[str, int] = {}
    by_day: list[DayExposures] = []
    sticky_by_day: list[dict[str, int]] = []
    for day in days:
        for item in run.daily_exposures:
            if item.day == day:
                exposed[item.variant] = exposed.get(item.variant, 0) + item.units
                sticky[item.variant] = sticky.get(item.variant, 0) + item.sticky
        rank = {v: i for i, v in enumerate(exposed_order)}
        ordered_units = sorted(
            exposed.items(), key=lambda item: (rank.get(item[0], len(rank)), item[0])
        )
        by_day.append(DayExposures(day, dict(ordered_units)))
        sticky_by_day.append(dict(sticky))
    looks: list[Look] = []
    for metric in metrics:
        if metric.role not in ("primary", "guardrail") or control is None:
            continue
        sums: dict[str, list[float]] = {}
        for day, sticky_then in zip(days, sticky_by_day, strict=True):
            for change in run.daily_metrics:
                if change.metric == metric.metric and change.day == day:
                    total = sums.setdefault(change.variant, [0.0, 0.0, 0.0])
                    total[0] += change.new_units
                    total[1] += change.sum_change
                    total[2] += change.square_change
            if metric.kind == "conversion":
                found = {
                    v: Sample(max(sticky_then.get(v, 0), int(s[0])), s[0]) for v, s in sums.items()
                }
                for variant, n in sticky_then.items():
                    found.setdefault(variant, Sample(n, 0.0))
            else:
                found = {v: Sample.of_sums(int(s[0]), s[1], s[2]) for v, s in sums.items()}
            found = ordered(found, control, exposed_order)
            for effect in effects(metric.kind, found, control, metric.higher_is_better, comparison):
                looks.append(Look(day, metric.metric, effect))
    return Timeline(tuple(by_day), tuple(looks))
