"""The decision hint: one action (continue, pause, roll back, segment, ship, redesign) and the
rule that produced it. The rules are few and conservative; the first that matches wins:

1. ``redesign.unit_changed``: the run has exposures under more than one assignment unit, or a
   ``unit_changed`` guardrail. A changed unit is a new assignment process: start a new run.
2. ``redesign.mixed_variants``: the share of units exposed to more than one variant is above
   ``max_mixed_share`` (1%). Assignment is not sticky at the unit being tested.
3. ``redesign.metric_unit``: outcomes are keyed by another unit's ID (a user ID in a
   conversation experiment), or a deciding metric (the primary and guardrail metrics; every
   metric when none is named) is measured at another unit than the assignment.
4. ``pause.sample_ratio``: the sample-ratio-mismatch test has p < ``srm_alpha`` (0.001) and at
   least five expected units per variant. Something drops or duplicates units unevenly.
5. ``pause.join_rate``: fewer than ``min_join_rate`` (95%) of outcomes join an exposure on
   unit ID and variant. The outcomes cannot be attributed.
6. ``roll_back.metric_worse``: a treatment is significantly worse than control on a guardrail
   metric or on the primary metric (the interval of the difference excludes 0).
7. ``segment.opposite_effects``: with ``segment_by``, the primary metric is significantly
   better in one segment and significantly worse in another.
8. ``ship.primary_better``: a treatment is significantly better on the primary metric and no
   rule above matched.
9. ``continue.*``: otherwise: not enough evidence yet (``continue.no_evidence``), no primary
   metric named (``continue.no_primary_metric``), or nothing to read (``continue.no_data``).

Intervals of treatment minus control use a Bonferroni-adjusted level when several treatments
share one control. Integrity rules (1-5) come before outcome rules, so a result is never read
from data that cannot be trusted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from .model import (
    Action,
    Decision,
    JoinSummary,
    MetricReadout,
    MetricUnitMismatch,
    MixedUnits,
    SampleRatioTest,
    SegmentEffect,
)
from .options import AuditOptions

__all__ = ["decide"]


def decide(
    *,
    assignment_units: Mapping[str, int],
    unit_changed_guardrails: int,
    mixed: MixedUnits,
    keyed_at_other_unit: Mapping[str, int],
    deciding_metric_units: Sequence[MetricUnitMismatch],
    sample_ratio: SampleRatioTest | None,
    join: JoinSummary,
    metrics: Sequence[MetricReadout],
    segments: Sequence[SegmentEffect],
    options: AuditOptions,
) -> Decision:
    """Apply the rules of this module's docstring, in order."""
    if len(assignment_units) > 1 or unit_changed_guardrails:
        units = ", ".join(f"{u} ({n} units)" for u, n in assignment_units.items())
        why = (
            f"exposures under more than one assignment unit: {units}"
            if len(assignment_units) > 1
            else f"{unit_changed_guardrails} unit_changed guardrail event(s)"
        )
        return Decision(Action.REDESIGN, "redesign.unit_changed", f"{why}; start a new run")
    if mixed.units and mixed.share > options.max_mixed_share:
        return Decision(
            Action.REDESIGN,
            "redesign.mixed_variants",
            f"{mixed.units} of {mixed.of_units} units ({mixed.share:.1%}) saw more than one "
            f"variant (threshold {options.max_mixed_share:.1%})",
        )
    if keyed_at_other_unit or deciding_metric_units:
        parts = [f"{n} outcomes keyed by a {u} ID" for u, n in keyed_at_other_unit.items()]
        parts += [
            f"metric {m.metric!r} measured per {m.unit} ({m.outcomes} outcomes)"
            for m in deciding_metric_units
        ]
        return Decision(
            Action.REDESIGN,
            "redesign.metric_unit",
            "; ".join(parts) + ": outcomes must be measured at the assignment unit",
        )
    if (
        sample_ratio is not None
        and sample_ratio.reliable
        and sample_ratio.p_value < options.srm_alpha
    ):
        return Decision(
            Action.PAUSE,
            "pause.sample_ratio",
            f"sample ratio mismatch: chi2={sample_ratio.chi_square:.2f}, "
            f"p={sample_ratio.p_value:.2g} < {options.srm_alpha:g}",
        )
    if join.rate is not None and join.rate < options.min_join_rate:
        return Decision(
            Action.PAUSE,
            "pause.join_rate",
            f"only {join.joined} of {join.outcomes} outcomes ({join.rate:.1%}) join an exposure "
            f"on unit and variant (minimum {options.min_join_rate:.0%})",
        )
    worse = [
        (m.metric, e.variant)
        for m in metrics
        if m.role in ("primary", "guardrail")
        for e in m.effects
        if e.verdict == "worse"
    ]
    if worse:
        listed = ", ".join(f"{variant} on {metric!r}" for metric, variant in worse)
        return Decision(
            Action.ROLL_BACK,
            "roll_back.metric_worse",
            f"significantly worse than control: {listed}",
        )
    verdicts: dict[str, set[str]] = {}
    for item in segments:
        verdicts.setdefault(item.effect.variant, set()).add(item.effect.verdict)
    split = [variant for variant, seen in verdicts.items() if {"better", "worse"} <= seen]
    if split:
        return Decision(
            Action.SEGMENT,
            "segment.opposite_effects",
            f"{', '.join(split)} is significantly better in some {options.segment_by} "
            "segments and worse in others",
        )
    primary = options.primary
    if primary is None:
        return Decision(
            Action.CONTINUE,
            "continue.no_primary_metric",
            "no integrity problem; name a primary metric to get a ship hint",
        )
    readout = next((m for m in metrics if m.metric == primary.name), None)
    if readout is None:
        return Decision(
            Action.CONTINUE,
            "continue.no_data",
            f"no joined outcomes of the primary metric {primary.name!r} yet",
        )
    better = [e for e in readout.effects if e.verdict == "better"]
    if better:
        best = max(better, key=lambda e: abs(e.difference))
        return Decision(
            Action.SHIP,
            "ship.primary_better",
            f"{best.variant} beats {best.control} on {primary.name!r}: "
            f"{best.describe(readout.kind != 'mean')}",
        )
    return Decision(
        Action.CONTINUE,
        "continue.no_evidence",
        f"no significant difference on {primary.name!r} yet; keep collecting",
    )
