"""The audit's entry points: read an event log (or records already in memory), attribute every
guardrail to its experiment run, run the checks per run, name the findings, decide.

A log may mix several experiments (and several runs of one): each run is audited on its own,
and :attr:`AuditReport.mixes_experiments` says the log held more than one experiment, so a
caller can say so. ``AuditOptions.experiment`` selects one; naming an experiment the log does
not hold raises :class:`ExperimentNotFoundError` listing the ones it does.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from .checks import (
    assignment_unit,
    exposure_split,
    join_outcomes,
    metric_unit_mismatches,
    mixed_units,
)
from .collect import Collector, RunEvents, RunKey
from .decision import decide
from .findings import findings_for
from .model import AuditReport, ExperimentAudit, MalformedLine, VariantExposure
from .options import AuditOptions
from .reading import EventLog
from .readouts import readouts, segment_effects

__all__ = ["ExperimentNotFoundError", "audit_file", "audit_records", "audit_run"]

_CONTROL_NAMES = ("control", "baseline")


class ExperimentNotFoundError(LookupError):
    """The selected experiment has no events in the log."""

    def __init__(self, experiment: str, available: Iterable[str]) -> None:
        self.experiment = experiment
        self.available = tuple(available)
        listed = ", ".join(self.available) or "none"
        super().__init__(f"no events of experiment {experiment!r}; the log holds: {listed}")


def audit_file(path: str | Path, options: AuditOptions | None = None) -> AuditReport:
    """Audit a JSON Lines event log.

    Raises:
        EventLogError: The file is missing or unreadable (malformed lines are reported, not
            raised).
        ExperimentNotFoundError: ``options.experiment`` names an experiment the log lacks.
    """
    options = options or AuditOptions()
    log = EventLog(path)
    collector = Collector(segment_by=options.segment_by)
    for _, record in log:
        collector.add(record)
    return _report(
        collector, options, str(path), log.lines, tuple(log.malformed), log.malformed_count
    )


def audit_records(
    records: Iterable[Mapping[str, Any]],
    options: AuditOptions | None = None,
    *,
    source: str = "(events in memory)",
) -> AuditReport:
    """Audit event records already in memory (an ``InMemorySink``'s ``events``)."""
    options = options or AuditOptions()
    collector = Collector(segment_by=options.segment_by)
    for record in records:
        collector.add(record)
    return _report(collector, options, source, collector.records, (), 0)


def _report(
    collector: Collector,
    options: AuditOptions,
    source: str,
    lines: int,
    malformed: tuple[MalformedLine, ...],
    malformed_count: int,
) -> AuditReport:
    by_run, unattributed = _attribute_guardrails(collector)
    keys = tuple(sorted({key for key, _ in collector.runs}))
    if options.experiment is not None and options.experiment not in keys:
        raise ExperimentNotFoundError(options.experiment, keys)
    audits = tuple(
        audit_run(run, by_run.get(run_key, Counter()), options)
        for run_key, run in sorted(collector.runs.items())
        if options.experiment is None or run.experiment_key == options.experiment
    )
    return AuditReport(
        source=source,
        lines=lines,
        malformed=malformed,
        malformed_count=malformed_count,
        ignored=dict(collector.ignored),
        log_experiment_keys=keys,
        experiments=audits,
        unattributed_guardrails=dict(unattributed),
        unattributed_outcomes=collector.unattributed_outcomes,
    )


def _attribute_guardrails(
    collector: Collector,
) -> tuple[dict[RunKey, Counter[str]], Counter[str]]:
    """Guardrail counts per run: by experiment key and run id when given; by experiment key
    alone when that experiment has one run; by flag key when one run uses that flag."""
    runs = collector.runs
    # Experiments known only from guardrails (every evaluation refused) still get a run.
    for key, run_id, _, _ in collector.guardrails:
        if key is not None and run_id is not None:
            runs.setdefault((key, run_id), RunEvents(key, run_id))
        elif key is not None and not any(k == key for k, _ in runs):
            runs[(key, "")] = RunEvents(key, "")
    by_run: dict[RunKey, Counter[str]] = {}
    unattributed: Counter[str] = Counter()
    for (key, run_id, flag, name), count in collector.guardrails.items():
        if key is not None:
            candidates = [rk for rk in runs if rk[0] == key and run_id in (None, rk[1])]
        elif flag is not None:
            candidates = [rk for rk, run in runs.items() if flag in run.flag_keys]
        else:
            candidates = []
        if len(candidates) == 1:
            by_run.setdefault(candidates[0], Counter())[name] += count
        else:
            unattributed[name] += count
    return by_run, unattributed


def audit_run(
    run: RunEvents, guardrails: Mapping[str, int], options: AuditOptions
) -> ExperimentAudit:
    """Every check, the findings and the decision hint for one experiment run."""
    unit, unit_counts = assignment_unit(run)
    exposures, sample_ratio = exposure_split(run, options.expected)
    join, joined = join_outcomes(run, unit)
    mixed = mixed_units(run)
    metric_units = metric_unit_mismatches(run, unit)
    deciding = tuple(
        m
        for m in metric_units
        if not options.names_metrics or options.goal_for(m.metric)[0] != "secondary"
    )
    control = _control(exposures, options)
    if control is not None:
        exposures = tuple(sorted(exposures, key=lambda e: e.variant != control))
    # Units with a single variant, per variant, in the exposure table's order.
    counts = Counter(next(iter(v)) for v in run.unit_variants.values() if len(v) == 1)
    single = {e.variant: counts[e.variant] for e in exposures if counts[e.variant]}
    metrics = readouts(joined, single, control, options)
    segments = segment_effects(joined, single, control, options)
    guardrail_counts = dict(sorted(guardrails.items()))
    findings = findings_for(
        run=run,
        unit=unit,
        assignment_units=unit_counts,
        exposures=exposures,
        sample_ratio=sample_ratio,
        join=join,
        mixed=mixed,
        metric_units=metric_units,
        deciding=deciding,
        guardrails=guardrail_counts,
        metrics=metrics,
        control=control,
        options=options,
    )
    decision = decide(
        assignment_units=unit_counts,
        unit_changed_guardrails=guardrail_counts.get("unit_changed", 0),
        mixed=mixed,
        keyed_at_other_unit=join.keyed_at_other_unit,
        deciding_metric_units=deciding,
        sample_ratio=sample_ratio,
        join=join,
        metrics=metrics,
        segments=segments,
        options=options,
    )
    return ExperimentAudit(
        experiment_key=run.experiment_key,
        run_id=run.run_id,
        flag_keys=tuple(run.flag_keys),
        assignment_unit=unit,
        assignment_units=dict(unit_counts),
        first_timestamp=run.first_timestamp,
        last_timestamp=run.last_timestamp,
        exposures=exposures,
        sample_ratio=sample_ratio,
        join=join,
        mixed=mixed,
        metric_units=metric_units,
        unit_changed=len(unit_counts) > 1 or bool(guardrail_counts.get("unit_changed")),
        guardrails=guardrail_counts,
        fallbacks=guardrail_counts.get("fallback_used", 0),
        exposure_reasons=dict(run.exposure_reasons),
        control=control,
        metrics=metrics,
        segments=segments,
        findings=findings,
        decision=decision,
    )


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
