"""Renders an :class:`~featbit_experiments.audit.model.AuditReport` as a plain-text readout for
a terminal: one section per experiment run, with the decision hint first, then the integrity
checks, the metrics, the segment review and the timeline. Every line passes through
``terminal.printable``, so a name from the log cannot move the cursor or forge a line.
Rendering never computes a statistic: everything shown is a field of the report.
"""

from __future__ import annotations

from .estimates import Effect, MetricReadout, SegmentReview, Timeline
from .model import AuditReport, ExperimentAudit
from .stats import Interval
from .terminal import printable

__all__ = ["render_table"]

_MAX_MALFORMED_SHOWN = 10
_MAX_DAYS_SHOWN = 21


def render_table(report: AuditReport) -> str:
    """A plain-text readout, one section per experiment run, for a terminal."""
    out: list[str] = [f"featbit-experiments audit: {report.source}"]
    read = f"  {report.lines} records read, {report.malformed_count} malformed"
    if report.ignored:
        read += f", {sum(report.ignored.values())} not experiment events"
    out.append(read)
    out.extend(f"  note: {note}" for note in report.notes)
    for bad in report.malformed[:_MAX_MALFORMED_SHOWN]:
        where = f"{bad.file}:{bad.line}" if bad.file else f"line {bad.line}"
        out.append(f"  malformed {where}: {bad.reason} (skipped)")
    if report.malformed_count > _MAX_MALFORMED_SHOWN:
        out.append(f"  ... and {report.malformed_count - _MAX_MALFORMED_SHOWN} more")
    if report.mixes_experiments:
        keys = ", ".join(report.log_experiment_keys)
        audited = {e.experiment_key for e in report.experiments}
        how = (
            f"auditing only {next(iter(audited))}"
            if len(audited) == 1
            else "each is audited separately (select one with --experiment)"
        )
        out.append(
            f"  note: the log mixes {len(report.log_experiment_keys)} experiments ({keys}); {how}"
        )
    if report.unattributed_guardrails:
        counts = ", ".join(f"{k} {v}" for k, v in report.unattributed_guardrails.items())
        out.append(f"  guardrails naming no single experiment: {counts}")
    if report.unattributed_outcomes:
        out.append(f"  outcomes naming no experiment: {report.unattributed_outcomes}")
    if not report.experiments:
        out.append("  no experiment events found")
    for audit in report.experiments:
        out.append("")
        out.extend(_experiment(audit))
    return "\n".join(printable(line) for line in out) + "\n"


def _experiment(audit: ExperimentAudit) -> list[str]:
    flags = ", ".join(audit.flag_keys) or "-"
    head = f"== {audit.title}  (unit: {audit.assignment_unit or '-'}, flag: {flags}) =="
    decision = audit.decision
    out = [
        head,
        f"Decision hint: {decision.action.label.upper()}  [{decision.rule}] {decision.reason}",
        "",
    ]
    if audit.exposures:
        width = max(12, *(len(e.variant) for e in audit.exposures))
        out.append(f"  {'Exposed units':<{width}} {'units':>7} {'share':>7} {'expected':>9}")
        for e in audit.exposures:
            expected = _pct(e.expected_share) if e.expected_share is not None else "-"
            out.append(f"  {e.variant:<{width}} {e.units:>7} {_pct(e.share):>7} {expected:>9}")
    test = audit.sample_ratio
    if test is not None:
        mismatch = any(f.code == "sample_ratio_mismatch" for f in audit.findings)
        verdict = "MISMATCH" if mismatch else "ok"
        note = "" if test.reliable else " (few units: not reliable)"
        out.append(
            f"  sample ratio: chi2={test.chi_square:.2f} df={test.df} "
            f"p={_p(test.p_value)} {verdict}{note}"
        )
    join = audit.join
    rate = _pct(join.rate) if join.rate is not None else "n/a"
    out.append(
        f"  join: {join.joined}/{join.outcomes} outcomes join an exposure on unit and "
        f"variant ({rate})"
    )
    mixed = audit.mixed
    out.append(
        f"  units with mixed variants: {mixed.units} of {mixed.of_units} ({_pct(mixed.share)})"
    )
    wrong = [f"{m.metric} per {m.unit} ({m.outcomes})" for m in audit.metric_units]
    wrong += [f"keyed by {u} ID ({n})" for u, n in audit.join.keyed_at_other_unit.items()]
    out.append(f"  metrics at another unit: {', '.join(wrong) or 'none'}")
    changed = ", ".join(f"{u} ({n})" for u, n in audit.assignment_units.items())
    changed += "".join(
        f"; unitId is the {c.matched_field or 'another ID'} on {c.exposures} exposures"
        for c in audit.unit_id_changes
    )
    out.append(f"  unit changed mid-run: {'YES: ' + changed if audit.unit_changed else 'no'}")
    guardrails = ", ".join(f"{k} {v}" for k, v in audit.guardrails.items()) or "none"
    out.append(f"  fallbacks: {audit.fallbacks}; guardrails: {guardrails}")
    for impact in audit.integrity:
        out.append(f"  {impact.name}: up to {impact.units} units ({_pct(impact.share)} of exposed)")
    if audit.metrics:
        out.append(f"  effects vs control: {_interval_note(audit)}")
    for metric in audit.metrics:
        out.extend(_metric(metric))
    if audit.segment_review is not None:
        out.extend(_segments(audit.segment_review))
    if audit.timeline is not None:
        out.extend(_timeline(audit.timeline, audit))
    if audit.findings:
        out.append("  findings:")
        for finding in audit.findings:
            out.append(f"    [{finding.severity}] {finding.code}: {finding.message}")
    return out


def _interval_note(audit: ExperimentAudit) -> str:
    level = audit.decision_confidence
    shown = f" ({level:.1%} after the multiplicity adjustment)" if level is not None else ""
    return (
        f"fixed-horizon interval, then always-valid interval{shown}; the verdict uses the "
        f"{audit.intervals} one"
    )


def _metric(metric: MetricReadout) -> list[str]:
    better = "higher" if metric.higher_is_better else "lower"
    source = "" if metric.direction_from == "default" else f" (from the {metric.direction_from})"
    out = [
        f"  {metric.metric} ({metric.role}, {metric.kind}, {better} is better{source}), per unit:"
    ]
    rate = metric.kind != "mean"
    width = max(12, *(len(v.variant) for v in metric.variants)) if metric.variants else 12
    effects = {e.variant: e for e in metric.effects}
    for v in metric.variants:
        value = _pct(v.estimate) if rate else f"{v.estimate:.4g}"
        line = f"    {v.variant:<{width}} n={v.units:<6} {value:>8} {_interval(v.interval, rate)}"
        effect = effects.get(v.variant)
        if effect is not None:
            line += f"  vs {effect.control}: {_change(effect, rate)} {effect.verdict}"
        out.append(line)
    return out


def _segments(review: SegmentReview) -> list[str]:
    out = [
        f"  by {review.field} ({len(review.segments)} segments; intervals at "
        f"{review.confidence:.2%} for the number of segments):"
    ]
    for readout in review.readouts:
        rate = readout.kind != "mean"
        effects = {e.variant: e for e in readout.effects}
        cells = []
        for v in readout.variants:
            value = _pct(v.estimate) if rate else f"{v.estimate:.4g}"
            cell = f"{v.variant} n={v.units} {value} {_interval(v.interval, rate)}"
            effect = effects.get(v.variant)
            if effect is not None:
                cell += f" {_change(effect, rate)} {effect.verdict}"
            cells.append(cell)
        out.append(f"    {readout.metric} | {readout.segment}: " + "; ".join(cells))
    out.extend(f"    note: {note}" for note in review.notes)
    return out


def _timeline(timeline: Timeline, audit: ExperimentAudit) -> list[str]:
    primary = next((m for m in audit.metrics if m.role == "primary"), None)
    about = f"; {primary.metric} effect, always-valid interval" if primary is not None else ""
    out = [f"  timeline (exposed units by the end of each day{about}):"]
    days = timeline.days
    if len(days) > _MAX_DAYS_SHOWN:
        out.append(f"    ... {len(days) - _MAX_DAYS_SHOWN} earlier days")
        days = days[-_MAX_DAYS_SHOWN:]
    for day in days:
        units = "  ".join(f"{v} {n}" for v, n in day.units.items())
        line = f"    {day.day}  {units}"
        if primary is not None:
            rate = primary.kind != "mean"
            for look in timeline.looks:
                if look.day == day.day and look.metric == primary.metric:
                    effect = look.effect
                    interval = _signed(effect.always_valid, rate)
                    line += f"   {effect.variant} {_signed_value(effect, rate)} {interval}"
        out.append(line)
    return out


def _interval(interval: Interval | None, rate: bool) -> str:
    if interval is None:
        return "[n/a]"
    if rate:
        return f"[{_pct(interval.low)}, {_pct(interval.high)}]"
    return f"[{interval.low:.4g}, {interval.high:.4g}]"


def _signed(interval: Interval | None, rate: bool) -> str:
    if interval is None:
        return "[n/a]"
    scale, digits = (100, ".1f") if rate else (1, ".4g")
    return f"[{interval.low * scale:+{digits}}, {interval.high * scale:+{digits}}]"


def _signed_value(effect: Effect, rate: bool) -> str:
    scale, unit, digits = (100, " pts", ".1f") if rate else (1, "", ".4g")
    return f"{effect.difference * scale:+{digits}}{unit}"


def _change(effect: Effect, rate: bool) -> str:
    """The effect as the table prints it: the fixed-horizon interval, then the always-valid
    one (``[n/a]`` where there is none)."""
    text = effect.describe(rate) + ("" if effect.interval is not None else " [n/a]")
    return text + f" always-valid {_signed(effect.always_valid, rate)}"


def _pct(share: float | None) -> str:
    return "n/a" if share is None else f"{share * 100:.1f}%"


def _p(p: float) -> str:
    return f"{p:.3f}" if p >= 0.001 else f"{p:.2g}"
