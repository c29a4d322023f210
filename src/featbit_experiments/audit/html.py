"""Renders an audit as one self-contained HTML page: inline CSS and inline SVG bar charts, no
JavaScript and no external assets, so it opens anywhere and can be attached to a release
ticket. Every text from the log is escaped.
"""

from __future__ import annotations

from html import escape

from .estimates import MetricReadout
from .model import Action, AuditReport, ExperimentAudit, VariantExposure

__all__ = ["render_html"]

_COLORS = ("#4e79a7", "#f28e2b", "#59a14f", "#b07aa1", "#76b7b2", "#edc948")
_ACTION_COLORS = {
    Action.SHIP: "#2e7d32",
    Action.CONTINUE: "#546e7a",
    Action.SEGMENT: "#6a1b9a",
    Action.PAUSE: "#ef6c00",
    Action.ROLL_BACK: "#c62828",
    Action.REDESIGN: "#c62828",
}
_CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:60rem;color:#222}
h1{font-size:1.4rem}h2{font-size:1.15rem;margin-top:2.2rem;border-bottom:1px solid #ccc}
table{border-collapse:collapse;margin:.5rem 0}td,th{padding:.2rem .7rem;text-align:left}
th{background:#f3f3f3}.badge{color:#fff;padding:.15rem .6rem;border-radius:.3rem;
font-weight:600}.error{color:#c62828}.warning{color:#ef6c00}.info{color:#546e7a}
.note{color:#555}svg text{font:12px system-ui,sans-serif}
"""
_BAR_HEIGHT = 22
_LABEL_WIDTH = 170
_PLOT_WIDTH = 380


def render_html(report: AuditReport) -> str:
    """The whole page for a report."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>Experiment audit: {escape(report.source)}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>Experiment audit: {escape(report.source)}</h1>",
        f'<p class="note">{report.lines} lines read, {report.malformed_count} malformed.</p>',
    ]
    if report.malformed:
        items = "".join(
            f"<li>line {bad.line}: {escape(bad.reason)}</li>" for bad in report.malformed
        )
        parts.append(f'<ul class="warning">{items}</ul>')
    if report.mixes_experiments:
        keys = ", ".join(escape(k) for k in report.log_experiment_keys)
        parts.append(
            f'<p class="warning">The log mixes {len(report.log_experiment_keys)} experiments '
            f"({keys}); each is audited in its own section.</p>"
        )
    if not report.experiments:
        parts.append("<p>No experiment events found.</p>")
    for audit in report.experiments:
        parts.append(_section(audit))
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _section(audit: ExperimentAudit) -> str:
    decision = audit.decision
    color = _ACTION_COLORS[decision.action]
    join = audit.join
    rate = f"{join.rate:.1%}" if join.rate is not None else "n/a"
    srm = audit.sample_ratio
    srm_text = (
        f"chi2 = {srm.chi_square:.2f}, df = {srm.df}, p = {srm.p_value:.3g}"
        + ("" if srm.reliable else " (few units)")
        if srm is not None
        else "n/a"
    )
    wrong = [f"{m.metric} per {m.unit} ({m.outcomes})" for m in audit.metric_units]
    wrong += [f"keyed by {u} ID ({n})" for u, n in join.keyed_at_other_unit.items()]
    guardrails = ", ".join(f"{k} {v}" for k, v in audit.guardrails.items()) or "none"
    rows = [
        ("Assignment unit", audit.assignment_unit or "-"),
        ("Flags", ", ".join(audit.flag_keys) or "-"),
        ("Sample ratio test", srm_text),
        ("Join rate", f"{join.joined} / {join.outcomes} ({rate})"),
        ("Units with mixed variants", f"{audit.mixed.units} of {audit.mixed.of_units}"),
        ("Metrics at another unit", ", ".join(wrong) or "none"),
        ("Unit changed mid-run", "yes" if audit.unit_changed else "no"),
        ("Fallbacks / guardrails", f"{audit.fallbacks} / {guardrails}"),
    ]
    table = "".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in rows)
    findings = "".join(
        f'<li class="{f.severity}"><b>{escape(f.code)}</b>: {escape(f.message)}</li>'
        for f in audit.findings
    )
    parts = [
        f"<section><h2>{escape(audit.title)}</h2>",
        f'<p><span class="badge" style="background:{color}">'
        f"{escape(decision.action.label.upper())}</span> "
        f"<code>{escape(decision.rule)}</code> {escape(decision.reason)}</p>",
        f"<table>{table}</table>",
    ]
    if findings:
        parts.append(f"<h3>Findings</h3><ul>{findings}</ul>")
    if audit.exposures:
        parts.append("<h3>Exposed units by variant</h3>")
        parts.append(_exposure_chart(audit.exposures))
    for metric in audit.metrics:
        parts.append(_metric_chart(metric))
    parts.append("</section>")
    return "\n".join(parts)


def _exposure_chart(exposures: tuple[VariantExposure, ...]) -> str:
    """Bars of exposed units; a black tick marks the count the expected split predicts."""
    total = sum(e.units for e in exposures)
    top = max([e.units for e in exposures] + [total * (e.expected_share or 0) for e in exposures])
    top = top or 1
    bars = []
    for i, e in enumerate(exposures):
        y = i * (_BAR_HEIGHT + 8)
        width = _PLOT_WIDTH * e.units / top
        bars.append(_label(e.variant, y))
        bars.append(_bar(width, y, _COLORS[i % len(_COLORS)]))
        bars.append(_value(f"{e.units} ({e.share:.1%})", y))
        if e.expected_share is not None:
            x = _LABEL_WIDTH + _PLOT_WIDTH * total * e.expected_share / top
            bars.append(
                f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{y - 2}" y2="{y + _BAR_HEIGHT + 2}" '
                'stroke="#000" stroke-width="2"><title>expected</title></line>'
            )
    return _svg(bars, len(exposures), "Exposed units per variant; ticks mark the expected split")


def _metric_chart(metric: MetricReadout) -> str:
    """Bars of each variant's rate or mean, with its confidence interval as a whisker."""
    rate = metric.kind != "mean"
    highs = [v.interval.high if v.interval else v.estimate for v in metric.variants]
    top = max([*highs, *(v.estimate for v in metric.variants), 1e-12])
    top = 1.0 if rate else top
    bars = []
    for i, v in enumerate(metric.variants):
        y = i * (_BAR_HEIGHT + 8)
        width = _PLOT_WIDTH * max(0.0, v.estimate) / top
        bars.append(_label(v.variant, y))
        bars.append(_bar(width, y, _COLORS[i % len(_COLORS)]))
        text = f"{v.estimate:.1%}" if rate else f"{v.estimate:.4g}"
        bars.append(_value(f"{text} (n={v.units})", y))
        if v.interval is not None:
            x1 = _LABEL_WIDTH + _PLOT_WIDTH * max(0.0, v.interval.low) / top
            x2 = _LABEL_WIDTH + _PLOT_WIDTH * max(0.0, v.interval.high) / top
            mid = y + _BAR_HEIGHT / 2
            bars.append(
                f'<line x1="{x1:.1f}" x2="{x2:.1f}" y1="{mid}" y2="{mid}" stroke="#000" '
                'stroke-width="1.5"><title>confidence interval</title></line>'
            )
    effects = "; ".join(
        f"{e.variant} vs {e.control}: {e.describe(rate)} ({e.verdict})" for e in metric.effects
    )
    direction = "higher" if metric.higher_is_better else "lower"
    title = f"{metric.metric} ({metric.role}, {metric.kind}, {direction} is better)"
    caption = f"<p class='note'>{escape(effects)}</p>" if effects else ""
    return f"<h3>{escape(title)}</h3>" + _svg(bars, len(metric.variants), title) + caption


def _svg(items: list[str], rows: int, title: str) -> str:
    height = max(1, rows) * (_BAR_HEIGHT + 8) + 4
    width = _LABEL_WIDTH + _PLOT_WIDTH + 150
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 -2 {width} {height}" role="img"><title>{escape(title)}</title>'
        + "".join(items)
        + "</svg>"
    )


def _label(text: str, y: float) -> str:
    return (
        f'<text x="{_LABEL_WIDTH - 8}" y="{y + _BAR_HEIGHT * 0.7:.1f}" '
        f'text-anchor="end">{escape(text)}</text>'
    )


def _bar(width: float, y: float, color: str) -> str:
    return (
        f'<rect x="{_LABEL_WIDTH}" y="{y}" width="{width:.1f}" height="{_BAR_HEIGHT}" '
        f'fill="{color}"/>'
    )


def _value(text: str, y: float) -> str:
    """The number, in a column right of the plot (never under a whisker)."""
    return (
        f'<text x="{_LABEL_WIDTH + _PLOT_WIDTH + 8}" y="{y + _BAR_HEIGHT * 0.7:.1f}">'
        f"{escape(text)}</text>"
    )
