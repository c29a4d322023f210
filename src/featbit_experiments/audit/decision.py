"""The decision hint: one action (continue, pause, roll back, segment, ship, redesign) and the
rule that produced it. The rules are few and conservative; the first that matches wins. The
rule ids are stable (tools such as a lifecycle command read them from ``audit --json``):

1. ``redesign.unit_changed``: the run has exposures under more than one assignment unit, a
   ``unit_changed`` guardrail, or exposures whose unitId is not their own ID of the unit
   they are labelled with (the unit changed, the label did not). Start a new run.
2. ``redesign.mixed_variants``: the share of units exposed to more than one variant is above
   ``max_mixed_share`` (1%). Assignment is not sticky at the unit being tested.
3. ``redesign.metric_unit``: outcomes are keyed by another unit's ID (a user ID in a
   conversation experiment), or a deciding metric (the primary and guardrail metrics; every
   metric when none is named) is measured at another unit than the assignment.
4. ``pause.sample_ratio``: the sample-ratio-mismatch test has p < ``srm_alpha`` (0.001) and at
   least five expected units per variant. Something drops or duplicates units unevenly.
5. ``pause.join_rate``: fewer than ``min_join_rate`` (95%) of outcomes join an exposure on
   unit ID and variant. The outcomes cannot be attributed.
6. ``pause.integrity_guardrails``: an integrity guardrail (a fallback, a switched variant, a
   store outage, refused evaluations: ``AuditOptions.integrity_guardrails``) touched more
   than ``max_guardrail_share`` (1%) of the exposed units, counting what throttled records
   say they suppressed. Units did not get the variant they were assigned.
7. ``pause.metric_direction``: the records of a deciding metric disagree on which way it is
   better (``metricDirection``) and the options do not say.
8. ``roll_back.metric_worse``: a treatment is significantly worse than control on a guardrail
   metric or on the primary metric.
9. ``segment.opposite_effects``: with ``segment_by``, the primary metric is significantly
   better in one segment and significantly worse in another.
10. ``ship.primary_better``: a treatment is significantly better on the primary metric and no
    rule above matched.
11. ``continue.*``: otherwise: not enough evidence yet (``continue.no_evidence``), no primary
    metric named (``continue.no_primary_metric``), or nothing to read (``continue.no_data``).

"Significantly" means the always-valid interval (``sequential``) excludes zero, at the level
split over every deciding comparison (deciding metrics x treatments), so the hint can be
read at every daily look. Integrity rules (1-7) come before outcome rules, so a result is
never read from data that cannot be trusted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from .estimates import MetricReadout, SegmentEffect
from .findings import integrity_text, unit_id_change_text
from .model import (
    Action,
    Decision,
    GuardrailImpact,
    JoinSummary,
    MetricUnitMismatch,
    MixedUnits,
    SampleRatioTest,
    UnitIdChange,
)
from .options import AuditOptions

__all__ = ["decide"]


def decide(
    *,
    assignment_units: Mapping[str, int],
    unit_changed_guardrails: int,
    unit_id_changes: Sequence[UnitIdChange],
    mixed: MixedUnits,
    keyed_at_other_unit: Mapping[str, int],
    deciding_metric_units: Sequence[MetricUnitMismatch],
    sample_ratio: SampleRatioTest | None,
    join: JoinSummary,
    integrity: Sequence[GuardrailImpact],
    undecided_directions: Sequence[str],
    metrics: Sequence[MetricReadout],
    segments: Sequence[SegmentEffect],
    comparisons: int,
    options: AuditOptions,
) -> Decision:
    """Apply the rules of this module's docstring, in order."""
    integrity_rule = _integrity(
        assignment_units, unit_changed_guardrails, unit_id_changes, mixed, options
    )
    if integrity_rule is not None:
        return integrity_rule
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
    over = [i for i in integrity if i.share > options.max_guardrail_share]
    if over:
        return Decision(
            Action.PAUSE,
            "pause.integrity_guardrails",
            "; ".join(integrity_text(i, options) for i in over),
        )
    if undecided_directions:
        listed = ", ".join(repr(m) for m in undecided_directions)
        return Decision(
            Action.PAUSE,
            "pause.metric_direction",
            f"records disagree on which way {listed} is better; name the direction "
            "(NAME:higher or NAME:lower)",
        )
    return _outcomes(metrics, segments, comparisons, options)


def _integrity(
    assignment_units: Mapping[str, int],
    unit_changed_guardrails: int,
    unit_id_changes: Sequence[UnitIdChange],
    mixed: MixedUnits,
    options: AuditOptions,
) -> Decision | None:
    if len(assignment_units) > 1 or unit_changed_guardrails or unit_id_changes:
        if len(assignment_units) > 1:
            units = ", ".join(f"{u} ({n} units)" for u, n in assignment_units.items())
            why = f"exposures under more than one assignment unit: {units}"
        elif unit_id_changes:
            why = unit_id_change_text(unit_id_changes[0])
        else:
            why = f"{unit_changed_guardrails} unit_changed guardrail event(s)"
        return Decision(Action.REDESIGN, "redesign.unit_changed", f"{why}; start a new run")
    if mixed.units and mixed.share > options.max_mixed_share:
        return Decision(
            Action.REDESIGN,
            "redesign.mixed_variants",
            f"{mixed.units} of {mixed.of_units} units ({mixed.share:.1%}) saw more than one "
            f"variant (threshold {options.max_mixed_share:.1%})",
        )
    return None


def _outcomes(
    metrics: Sequence[MetricReadout],
    segments: Sequence[SegmentEffect],
    comparisons: int,
    options: AuditOptions,
) -> Decision:
    basis = _basis(comparisons, options)
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
            f"significantly worse than control: {listed} ({basis})",
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
        shown = best.always_valid if options.sequential else best.interval
        return Decision(
            Action.SHIP,
            "ship.primary_better",
            f"{best.variant} beats {best.control} on {primary.name!r}: "
            f"{best.describe(readout.kind != 'mean', shown)} ({basis})",
        )
    return Decision(
        Action.CONTINUE,
        "continue.no_evidence",
        f"no significant difference on {primary.name!r} yet ({basis}); keep collecting",
    )


def _basis(comparisons: int, options: AuditOptions) -> str:
    kind = "always-valid" if options.sequential else "fixed-horizon"
    level = 1 - (1 - options.confidence) / max(1, comparisons)
    over = f", {comparisons} deciding comparisons" if comparisons > 1 else ""
    return f"{kind} {level:.1%} intervals{over}"
