"""How long it will take: from the units a day (planned, or measured in a pilot) and the
primary metric's baseline, the smallest change the experiment can detect by day 7, 14 and 28
(80% power, two-sided alpha 0.05), and the days a target lift needs.

The comparison is the fallthrough's smallest arm against its largest, so an uneven ramp
(90/10) is planned as it runs; units stop growing at the plan's ``max_units`` (every account
of a B2B product is in). Arithmetic is in :mod:`.power`.
"""

from __future__ import annotations

import math

from ..event_schema import LOWER_IS_BETTER
from ..units import StandardUnit
from . import power
from .model import DurationPlan, Finding, HorizonRow, Rule, Severity
from .pilot import PilotStats
from .plan import HORIZON_DAYS
from .subject import Subject, fallthrough_weights

__all__ = ["duration_plan"]


def duration_plan(
    subject: Subject, pilot: PilotStats | None
) -> tuple[DurationPlan | None, list[Finding]]:
    plan, unit = subject.plan, subject.unit.name
    per_day, source = plan.units_per_day, "plan"
    if per_day is None and pilot is not None and pilot.units_per_day:
        per_day = pilot.units_per_day
        source = f"pilot log: {pilot.exposed_units} units over {pilot.span_seconds / 3600:.1f}h"
    baseline = plan.baseline_rate if plan.baseline_rate is not None else plan.baseline_mean
    if per_day is None or baseline is None:
        missing = [
            name
            for name, value in (
                ("units_per_day (or a pilot log)", per_day),
                ("a baseline", baseline),
            )
            if value is None
        ]
        return None, [
            Finding(
                Severity.NOTE,
                Rule.DURATION,
                f"how long it takes is unknown: give {' and '.join(missing)} in the plan",
            )
        ]
    metric = subject.policy.metrics.get(plan.primary_metric or "")
    higher = metric is None or metric.direction != LOWER_IS_BETTER
    weights = sorted(fallthrough_weights(subject.flag).values())
    findings: list[Finding] = []
    if len(weights) < 2:
        arms = max(2, len(subject.view.raw_values))
        weights = [1 / arms] * arms
        findings.append(
            Finding(
                Severity.NOTE,
                Rule.DURATION,
                "the fallthrough does not split yet: planned as an even split over "
                f"{arms} variations",
            )
        )
    small, large = weights[0], weights[-1]
    rows = tuple(
        _row(
            _units_by(day, per_day, plan.max_units),
            day,
            small,
            large,
            plan.baseline_rate,
            plan.baseline_sd,
            baseline,
            higher,
        )
        for day in HORIZON_DAYS
    )
    days_to_target = _days_to_target(subject, per_day, small, large, baseline, higher)
    kind = "rate" if plan.baseline_rate is not None else "mean"
    duration = DurationPlan(
        plan.primary_metric, kind, baseline, per_day, source, rows, days_to_target
    )
    last = rows[-1]
    findings.append(
        Finding(
            Severity.OK,
            Rule.DURATION,
            f"{per_day:,.0f} {unit}s a day ({source}); by day {last.day} the smallest detectable "
            f"change is {describe_change(kind, last.absolute, last.relative)}",
        )
    )
    if plan.target_lift is not None:
        findings.append(_target_finding(plan.target_lift, days_to_target, per_day, unit))
    if unit == StandardUnit.ACCOUNT:
        findings.append(
            Finding(
                Severity.NOTE,
                Rule.ACCOUNT_LEVEL,
                f"account-level assignment: fewer units and slower learning; {per_day:,.0f} "
                f"accounts a day detect {describe_change(kind, last.absolute, last.relative)} "
                f"by day {last.day} at best",
            )
        )
    return duration, findings


def _units_by(day: int, per_day: float, max_units: float | None) -> float:
    units = per_day * day
    return units if max_units is None else min(units, max_units)


def _row(
    units: float,
    day: int,
    small: float,
    large: float,
    rate: float | None,
    sd: float | None,
    baseline: float,
    higher: bool,
) -> HorizonRow:
    n1, n2 = units * small, units * large
    if rate is not None:
        absolute = power.proportion_mde(rate, n1, n2, higher_is_better=higher)
    else:
        assert sd is not None
        absolute = power.mean_mde(sd, n1, n2) * (1 if higher else -1)
    relative = None if absolute is None or baseline == 0 else absolute / baseline
    return HorizonRow(day, round(units), round(n1), absolute, relative)


def _days_to_target(
    subject: Subject, per_day: float, small: float, large: float, baseline: float, higher: bool
) -> float | None:
    plan = subject.plan
    if plan.target_lift is None:
        return None
    change = baseline * plan.target_lift * (1 if higher else -1)
    if plan.baseline_rate is not None:
        changed = baseline + change
        if not 0 < changed < 1:
            return None
        effect = abs(power.proportion_effect(baseline, changed))
    else:
        assert plan.baseline_sd is not None
        effect = abs(change) / plan.baseline_sd
    needed = power.units_for_effect(effect, ratio=large / small) / small
    if plan.max_units is not None and needed > plan.max_units:
        return math.inf
    return needed / per_day


def _target_finding(lift: float, days: float | None, per_day: float, unit: str) -> Finding:
    if days is None:
        return Finding(
            Severity.WARNING,
            Rule.TARGET_LIFT,
            f"a change of {lift:.0%} would take the rate outside 0..1: the target cannot be met",
        )
    if math.isinf(days):
        return Finding(
            Severity.WARNING,
            Rule.TARGET_LIFT,
            f"cannot detect a change of {lift:.0%} even with every {unit} in the experiment "
            "(max_units): decide on a larger change or another unit",
        )
    if days > HORIZON_DAYS[-1]:
        return Finding(
            Severity.WARNING,
            Rule.TARGET_LIFT,
            f"cannot detect a change of {lift:.0%} within {HORIZON_DAYS[-1]} days: it needs about "
            f"{days:,.0f} days at {per_day:,.0f} {unit}s a day",
        )
    return Finding(
        Severity.OK,
        Rule.TARGET_LIFT,
        f"detects a change of {lift:.0%} in about {max(days, 1):.0f} day(s)",
    )


def describe_change(kind: str, absolute: float | None, relative: float | None) -> str:
    """``+4.1 pp (+6.6%)`` for a rate, ``-32.5 (-3.1%)`` for a mean; ``none`` when impossible."""
    if absolute is None:
        return "none (the rate cannot move that far)"
    text = f"{absolute * 100:+.1f} pp" if kind == "rate" else f"{absolute:+.3g}"
    return text if relative is None else f"{text} ({relative:+.1%})"
