"""Names each defect the checks found, with a stable code and a sentence a person can act on.

Codes: ``unit_changed``, ``mixed_variants``, ``outcomes_keyed_at_other_unit``,
``metric_unit_mismatch``, ``sample_ratio_mismatch``, ``unexpected_variant``,
``low_join_rate``, ``unjoined_outcomes``, ``exposures_without_unit_id``, ``no_exposures``,
``guardrail_events``, ``fallbacks``, ``integrity_guardrails``, ``metric_direction_conflict``,
``segment_review``, ``primary_metric_missing``, ``no_control``, ``outcomes_without_value``.
Severity ``error`` marks what the decision rules treat as broken integrity; the rules
themselves live in ``decision``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from .estimates import MetricReadout, SegmentReview
from .model import (
    DirectionConflict,
    Finding,
    GuardrailImpact,
    JoinSummary,
    MetricUnitMismatch,
    MixedUnits,
    SampleRatioTest,
    Severity,
    UnitIdChange,
    VariantExposure,
)
from .options import AuditOptions
from .tallies import RunTallies

__all__ = ["findings_for"]

ERROR, WARNING, INFO = Severity.ERROR, Severity.WARNING, Severity.INFO


def findings_for(
    *,
    run: RunTallies,
    exposures: Sequence[VariantExposure],
    sample_ratio: SampleRatioTest | None,
    join: JoinSummary,
    mixed: MixedUnits,
    metric_units: Sequence[MetricUnitMismatch],
    deciding: Sequence[MetricUnitMismatch],
    guardrails: Mapping[str, int],
    integrity: Sequence[GuardrailImpact],
    conflicts: Sequence[DirectionConflict],
    review: SegmentReview | None,
    metrics: Sequence[MetricReadout],
    control: str | None,
    options: AuditOptions,
) -> tuple[Finding, ...]:
    found: list[Finding] = []
    add = found.append
    unit = run.unit
    assignment_units = run.assignment_units
    if len(assignment_units) > 1:
        units = ", ".join(f"{u} ({n} units)" for u, n in assignment_units.items())
        add(Finding("unit_changed", ERROR, f"unit changed mid-run: exposures under {units}"))
    elif guardrails.get("unit_changed"):
        add(Finding("unit_changed", ERROR, f"{guardrails['unit_changed']} unit_changed guardrails"))
    for change in run.unit_id_changes:
        add(Finding("unit_changed", ERROR, unit_id_change_text(change)))
    if mixed.units:
        severity = ERROR if mixed.share > options.max_mixed_share else WARNING
        examples = ", ".join(mixed.examples)
        add(
            Finding(
                "mixed_variants",
                severity,
                f"{mixed.units} of {mixed.of_units} {unit or 'unit'}s ({mixed.share:.1%}) saw "
                f"more than one variant (e.g. {examples})",
            )
        )
    for other, count in join.keyed_at_other_unit.items():
        add(
            Finding(
                "outcomes_keyed_at_other_unit",
                ERROR,
                f"{count} outcomes are keyed by a {other} ID, not by the {unit or 'assigned'} "
                "ID the experiment assigned; they cannot join an exposure",
            )
        )
    for item in metric_units:
        add(
            Finding(
                "metric_unit_mismatch",
                ERROR if item in deciding else WARNING,
                f"metric {item.metric!r} is measured per {item.unit} in {item.outcomes} "
                f"outcomes, but the experiment randomizes by {unit}",
            )
        )
    _sample_ratio(add, exposures, sample_ratio, options)
    _join(add, join, options)
    if run.exposures_without_unit:
        add(
            Finding(
                "exposures_without_unit_id",
                WARNING,
                f"{run.exposures_without_unit} exposures carry no unit ID (privacy 'omit'?); "
                "they cannot be joined or counted per unit",
            )
        )
    if not run.exposed_units:
        add(Finding("no_exposures", WARNING, "no exposures with a unit ID in this run"))
    if run.outcomes_without_value:
        add(
            Finding(
                "outcomes_without_value",
                WARNING,
                f"{run.outcomes_without_value} outcome records have no numeric value",
            )
        )
    if guardrails:
        counts = ", ".join(f"{name} {n}" for name, n in guardrails.items())
        add(Finding("guardrail_events", WARNING, f"guardrail events: {counts}"))
    if guardrails.get("fallback_used"):
        add(Finding("fallbacks", WARNING, f"{guardrails['fallback_used']} fallbacks used"))
    for impact in integrity:
        if impact.share > options.max_guardrail_share:
            add(Finding("integrity_guardrails", ERROR, integrity_text(impact, options)))
    for conflict in conflicts:
        said = ", ".join(f"{d} ({n})" for d, n in conflict.directions.items())
        add(
            Finding(
                "metric_direction_conflict",
                WARNING,
                f"metric {conflict.metric!r}: records say {said}; read as {conflict.chosen} "
                "(name the direction, e.g. --primary-metric NAME:higher, to settle it)",
            )
        )
    if review is not None:
        for note in review.notes:
            add(Finding("segment_review", WARNING if not review.readouts else INFO, note))
    primary = options.primary
    if primary is not None and all(m.metric != primary.name for m in metrics):
        add(
            Finding(
                "primary_metric_missing",
                WARNING,
                f"the primary metric {primary.name!r} has no joined outcomes here",
            )
        )
    if control is None and len(exposures) > 1:
        why = (
            f"the control variant {options.control!r} has no exposures"
            if options.control is not None
            else "no variant is named 'control'; name the control to compare variants"
        )
        add(Finding("no_control", INFO, why))
    return tuple(found)


def unit_id_change_text(change: UnitIdChange) -> str:
    """What a unit change told by the IDs looks like to a person."""
    instead = f"the {change.matched_field}" if change.matched_field else "another ID"
    since = f" since {change.since}" if change.since else ""
    return (
        f"unit changed mid-run: {change.exposures} exposures ({change.units} units) labelled "
        f"{change.assignment_unit} carry {instead} as unitId, not their own "
        f"{change.assignment_unit} ID{since}"
    )


def integrity_text(impact: GuardrailImpact, options: AuditOptions) -> str:
    return (
        f"{impact.name} touched up to {impact.units} units ({impact.share:.1%} of exposed "
        f"units, {impact.events} occurrences), above {options.max_guardrail_share:.1%}"
    )


def _sample_ratio(
    add: Callable[[Finding], None],
    exposures: Sequence[VariantExposure],
    test: SampleRatioTest | None,
    options: AuditOptions,
) -> None:
    unexpected = [e.variant for e in exposures if e.units and e.expected_share == 0]
    if unexpected:
        add(
            Finding(
                "unexpected_variant",
                ERROR,
                f"variants outside the expected split were served: {', '.join(unexpected)}",
            )
        )
    if test is None:
        return
    shares = ", ".join(f"{e.variant} {e.units} ({e.share:.1%})" for e in exposures)
    if test.p_value < options.srm_alpha:
        note = "" if test.reliable else " (too few units for a reliable test)"
        add(
            Finding(
                "sample_ratio_mismatch",
                ERROR if test.reliable else WARNING,
                f"sample ratio mismatch: {shares}; chi2={test.chi_square:.2f}, "
                f"df={test.df}, p={test.p_value:.2g}{note}",
            )
        )


def _join(add: Callable[[Finding], None], join: JoinSummary, options: AuditOptions) -> None:
    if join.rate is None or join.joined == join.outcomes:
        return
    reasons = [
        (join.no_exposure, "no exposure of their unit ID"),
        (join.variant_mismatch, "another variant than their unit's exposure"),
        (join.no_unit_id, "no unit ID"),
        (sum(join.keyed_at_other_unit.values()), "another unit's ID"),
    ]
    why = "; ".join(f"{n} with {text}" for n, text in reasons if n)
    low = join.rate < options.min_join_rate
    add(
        Finding(
            "low_join_rate" if low else "unjoined_outcomes",
            ERROR if low else WARNING,
            f"{join.outcomes - join.joined} of {join.outcomes} outcomes do not join an exposure "
            f"on unit and variant ({join.rate:.1%} join): {why}",
        )
    )
