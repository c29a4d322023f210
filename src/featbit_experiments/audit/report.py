"""Renders an :class:`~featbit_experiments.audit.model.AuditReport` as a readable text table or
as JSON. (The HTML page is in ``html``.) Rendering never computes a statistic: everything shown
is a field of the report.
"""

from __future__ import annotations

import dataclasses
import json
import math
from enum import Enum
from typing import Any

from .model import AuditReport, Effect, ExperimentAudit, MetricReadout
from .stats import Interval

__all__ = ["render_json", "render_table", "report_dict"]

_MAX_MALFORMED_SHOWN = 10


def report_dict(report: AuditReport) -> dict[str, Any]:
    """The report as JSON-ready data (non-finite numbers become null), with the derived
    values a reader wants (join rate, mixed share, whether the log mixes experiments)."""
    data: dict[str, Any] = _plain(report)
    data["mixes_experiments"] = report.mixes_experiments
    for item, audit in zip(data["experiments"], report.experiments, strict=True):
        item["title"] = audit.title
        item["join"]["rate"] = _finite(audit.join.rate)
        item["mixed"]["share"] = audit.mixed.share
        item["decision"]["label"] = audit.decision.action.label
    return data


def render_json(report: AuditReport, *, indent: int | None = 2) -> str:
    return json.dumps(report_dict(report), indent=indent, allow_nan=False)


def _plain(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict) or hasattr(value, "items"):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, float):
        return _finite(value)
    return value


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


# -- text -----------------------------------------------------------------------------------


def render_table(report: AuditReport) -> str:
    """A plain-text readout, one section per experiment run, for a terminal."""
    out: list[str] = [f"featbit-experiments audit: {report.source}"]
    read = f"  {report.lines} lines read, {report.malformed_count} malformed"
    if report.ignored:
        read += f", {sum(report.ignored.values())} not experiment events"
    out.append(read)
    for bad in report.malformed[:_MAX_MALFORMED_SHOWN]:
        out.append(f"  malformed line {bad.line}: {bad.reason} (skipped)")
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
    return "\n".join(out) + "\n"


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
    out.append(f"  unit changed mid-run: {'YES: ' + changed if audit.unit_changed else 'no'}")
    guardrails = ", ".join(f"{k} {v}" for k, v in audit.guardrails.items()) or "none"
    out.append(f"  fallbacks: {audit.fallbacks}; guardrails: {guardrails}")
    for metric in audit.metrics:
        out.extend(_metric(metric))
    if audit.segments:
        out.append("  primary metric by segment:")
        for item in audit.segments:
            effect = item.effect
            change = _change(effect, _primary_is_rate(audit))
            out.append(f"    {item.segment}: {effect.variant} {change} {effect.verdict}")
    if audit.findings:
        out.append("  findings:")
        for finding in audit.findings:
            out.append(f"    [{finding.severity}] {finding.code}: {finding.message}")
    return out


def _metric(metric: MetricReadout) -> list[str]:
    better = "higher" if metric.higher_is_better else "lower"
    out = [f"  {metric.metric} ({metric.role}, {metric.kind}, {better} is better), per unit:"]
    rate = metric.kind != "mean"
    width = max(12, *(len(v.variant) for v in metric.variants)) if metric.variants else 12
    effects = {e.variant: e for e in metric.effects}
    for v in metric.variants:
        value = _pct(v.estimate) if rate else f"{v.estimate:.4g}"
        ci = _interval(v.interval, rate)
        line = f"    {v.variant:<{width}} n={v.units:<6} {value:>8} {ci}"
        effect = effects.get(v.variant)
        if effect is not None:
            line += f"  vs {effect.control}: {_change(effect, rate)} {effect.verdict}"
        out.append(line)
    return out


def _interval(interval: Interval | None, rate: bool) -> str:
    if interval is None:
        return "[n/a]"
    if rate:
        return f"[{_pct(interval.low)}, {_pct(interval.high)}]"
    return f"[{interval.low:.4g}, {interval.high:.4g}]"


def _change(effect: Effect, rate: bool) -> str:
    """The effect as the table prints it: ``[n/a]`` where there is no interval."""
    return effect.describe(rate) + ("" if effect.interval is not None else " [n/a]")


def _primary_is_rate(audit: ExperimentAudit) -> bool:
    """Whether the primary metric (the one segments are about) is a rate."""
    primary = next((m for m in audit.metrics if m.role == "primary"), None)
    return primary is not None and primary.kind != "mean"


def _pct(share: float | None) -> str:
    return "n/a" if share is None else f"{share * 100:.1f}%"


def _p(p: float) -> str:
    return f"{p:.3f}" if p >= 0.001 else f"{p:.2g}"
