"""Audits one experiment run from its tallies: the integrity checks, the metric readouts with
their directions, the segment review, the timeline, the findings and the decision hint.

The comparisons that decide together (each deciding metric against control, for each
treatment) share the confidence level: each always-valid interval is at
``1 - (1 - confidence) / (metrics x treatments)``, so over every look at every one of them the
chance of a false ship or roll back stays within ``1 - confidence``.
"""

from __future__ import annotations

from collections.abc import Sequence

from .checks import (
    exposure_split,
    integrity_impacts,
    join_summary,
    metric_unit_mismatches,
    mixed_units,
)
from .decision import decide
from .directions import resolve_direction
from .estimates import MetricReadout, SegmentEffect, SegmentReview
from .findings import findings_for
from .model import DirectionConflict, ExperimentAudit, VariantExposure
from .options import AuditOptions
from .readouts import Comparison, readout
from .segments import segment_review
from .sequential import split_alpha
from .tallies import GuardrailTally, RunTallies
from .timeline import timeline

__all__ = ["audit_run"]

_CONTROL_NAMES = ("control", "baseline")
_ROLE_ORDER = {"primary": 0, "guardrail": 1, "secondary": 2}


def audit_run(
    run: RunTallies, guardrails: Sequence[GuardrailTally], options: AuditOptions
) -> ExperimentAudit:
    """Every check, the findings and the decision hint for one experiment run."""
    exposures, sample_ratio = exposure_split(run, options.expected)
    join = join_summary(run)
    mixed = mixed_units(run)
    metric_units = metric_unit_mismatches(run)
    deciding = tuple(
        m
        for m in metric_units
        if not options.names_metrics or options.goal_for(m.metric)[0] != "secondary"
    )
    control = _control(exposures, options)
    if control is not None:
        exposures = tuple(sorted(exposures, key=lambda e: e.variant != control))
    order = [e.variant for e in exposures]
    # Sticky units per variant, in the exposure table's order: a conversion's denominators.
    sticky = {v: run.sticky_units[v] for v in order if run.sticky_units.get(v)}
    treatments = max(1, len([e for e in exposures if e.units]) - 1)
    deciding_count = max(1, len(options.deciding_metrics))
    comparisons = deciding_count * treatments
    decisive = Comparison(
        options.confidence,
        split_alpha(options.confidence, comparisons),
        options.sequential_tuning,
        options.sequential,
    )
    secondary = Comparison(
        options.confidence,
        split_alpha(options.confidence, treatments),
        options.sequential_tuning,
        options.sequential,
    )
    metrics: list[MetricReadout] = []
    conflicts: list[DirectionConflict] = []
    undecided: list[str] = []
    for name in sorted(run.metrics):
        direction = resolve_direction(name, run.directions.get(name, {}), options)
        if direction.conflict is not None:
            conflicts.append(direction.conflict)
            if direction.undecided and direction.role != "secondary":
                undecided.append(name)
        comparison = decisive if direction.role != "secondary" else secondary
        metrics.append(
            readout(
                name,
                direction.role,
                direction.higher_is_better,
                direction.source,
                run.metrics[name],
                sticky,
                control,
                comparison,
            )
        )
    metrics.sort(key=lambda m: _ROLE_ORDER[m.role])
    review: SegmentReview | None = None
    segments: tuple[SegmentEffect, ...] = ()
    if options.segment_by is not None:
        review, segments = segment_review(
            run, options.segment_by, metrics, order, control, decisive, options.max_segments
        )
    counts = _guardrail_counts(guardrails)
    integrity = integrity_impacts(run, guardrails, options.integrity_guardrails)
    primary_segments = tuple(
        s for s in segments if options.primary is not None and s.metric == options.primary.name
    )
    findings = findings_for(
        run=run,
        exposures=exposures,
        sample_ratio=sample_ratio,
        join=join,
        mixed=mixed,
        metric_units=metric_units,
        deciding=deciding,
        guardrails=counts,
        integrity=integrity,
        conflicts=tuple(conflicts),
        review=review,
        metrics=tuple(metrics),
        control=control,
        options=options,
    )
    decision = decide(
        assignment_units=run.assignment_units,
        unit_changed_guardrails=counts.get("unit_changed", 0),
        unit_id_changes=run.unit_id_changes,
        mixed=mixed,
        keyed_at_other_unit=join.keyed_at_other_unit,
        deciding_metric_units=deciding,
        sample_ratio=sample_ratio,
        join=join,
        integrity=integrity,
        undecided_directions=tuple(undecided),
        metrics=tuple(metrics),
        segments=primary_segments,
        comparisons=comparisons,
        options=options,
    )
    return ExperimentAudit(
        experiment_key=run.experiment_key,
        run_id=run.run_id,
        flag_keys=run.flag_keys,
        assignment_unit=run.unit,
        assignment_units=dict(run.assignment_units),
        first_timestamp=run.first_timestamp,
        last_timestamp=run.last_timestamp,
        exposures=exposures,
        sample_ratio=sample_ratio,
        join=join,
        mixed=mixed,
        metric_units=metric_units,
        unit_changed=len(run.assignment_units) > 1
        or bool(counts.get("unit_changed"))
        or bool(run.unit_id_changes),
        guardrails=counts,
        fallbacks=counts.get("fallback_used", 0),
        exposure_reasons=dict(run.exposure_reasons),
        control=control,
        metrics=tuple(metrics),
        segments=segments,
        findings=findings,
        decision=decision,
        unit_id_changes=run.unit_id_changes,
        integrity=integrity,
        direction_conflicts=tuple(conflicts),
        segment_review=review,
        timeline=timeline(run, metrics, order, control, decisive),
        intervals="always-valid" if options.sequential else "fixed-horizon",
        decision_confidence=1 - decisive.alpha,
    )


def _guardrail_counts(guardrails: Sequence[GuardrailTally]) -> dict[str, int]:
    """Occurrences per guardrail name (records plus the ones they say were suppressed)."""
    counts: dict[str, int] = {}
    for tally in guardrails:
        counts[tally.name] = counts.get(tally.name, 0) + tally.events
    return dict(sorted(counts.items()))


def _control(exposures: tuple[VariantExposure, ...], options: AuditOptions) -> str | None:
    names = [e.variant for e in exposures if e.units]
    if options.control is not None:
        return options.control if options.control in names else None
    for name in names:
        if name.casefold() in _CONTROL_NAMES:
            return name
    if options.expected:
        first = next(iter(options.expected))
        return first if first in names else None
    return None
