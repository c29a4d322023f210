"""Renders an audit as one self-contained HTML page: inline CSS and inline SVG charts (the
timeline, the forest plot of effects, bars per variant) and the segment review, no
JavaScript and no external assets, so it opens anywhere and can be attached to a release
ticket. Every text from the log is escaped.
"""

from __future__ import annotations

from html import escape

from .bars import exposure_chart, metric_chart
from .charts import forest_plot, timeline_chart
from .estimates import SegmentReview
from .model import Action, AuditReport, ExperimentAudit

__all__ = ["render_html"]

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
.note{color:#555}svg text{font:12px system-ui,sans-serif}svg text.title{font-weight:600}
svg text.axis{fill:#666;font-size:11px}.segments td{font-variant-numeric:tabular-nums}
.segments td.cells{white-space:normal}
"""


def render_html(report: AuditReport) -> str:
    """The whole page for a report."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>Experiment audit: {escape(report.source)}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>Experiment audit: {escape(report.source)}</h1>",
        f'<p class="note">{report.lines} records read, {report.malformed_count} malformed.</p>',
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
    for note in report.notes:
        parts.append(f'<p class="note">{escape(note)}</p>')
    for index, audit in enumerate(report.experiments):
        parts.append(_section(audit, index))
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _section(audit: ExperimentAudit, index: int) -> str:
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
    primary = next((m for m in audit.metrics if m.role == "primary"), None)
    if audit.timeline is not None:
        parts.append("<h3>Timeline</h3>")
        parts.append(timeline_chart(audit.timeline, primary))
    if any(m.effects for m in audit.metrics):
        level = audit.decision_confidence
        adjusted = f" at {level:.1%} after the multiplicity adjustment" if level else ""
        parts.append(
            f"<h3>Effects</h3><p class='note'>Always-valid intervals{adjusted} stay valid "
            f"however often the experiment is looked at; the verdicts use the "
            f"{escape(audit.intervals)} ones.</p>"
        )
        parts.append(forest_plot(audit.metrics))
    if audit.exposures:
        parts.append("<h3>Exposed units by variant</h3>")
        parts.append(exposure_chart(audit.exposures))
    for metric in audit.metrics:
        parts.append(metric_chart(metric))
    if audit.segment_review is not None:
        parts.append(_segment_section(audit.segment_review, index))
    parts.append("</section>")
    return "\n".join(parts)


def _segment_section(review: SegmentReview, index: int) -> str:
    """Every metric per segment: n, rate or mean and interval per variant, the effect."""
    head = (
        f'<section class="segments" id="segments-{index}"><h3>By {escape(review.field)}</h3>'
        f"<p class='note'>{len(review.segments)} segments; every interval is at "
        f"{review.confidence:.2%}, corrected for the number of segments.</p>"
    )
    rows = []
    for readout in review.readouts:
        rate = readout.kind != "mean"
        effects = {e.variant: e for e in readout.effects}
        cells = []
        for v in readout.variants:
            value = f"{v.estimate:.1%}" if rate else f"{v.estimate:.4g}"
            interval = (
                f" [{v.interval.low:.1%}, {v.interval.high:.1%}]"
                if rate and v.interval
                else f" [{v.interval.low:.4g}, {v.interval.high:.4g}]"
                if v.interval
                else ""
            )
            text = f"{v.variant}: n={v.units}, {value}{interval}"
            effect = effects.get(v.variant)
            if effect is not None:
                text += f"; {effect.describe(rate, effect.always_valid)} {effect.verdict}"
            cells.append(escape(text))
        rows.append(
            f'<tr class="segment-row"><td>{escape(readout.metric)}</td>'
            f'<td>{escape(readout.segment)}</td><td class="cells">{"<br>".join(cells)}</td></tr>'
        )
    table = (
        "<table><tr><th>Metric</th><th>Segment</th><th>Per variant (n, estimate, interval; "
        "effect vs control, always-valid)</th></tr>" + "".join(rows) + "</table>"
        if rows
        else ""
    )
    notes = "".join(f'<p class="warning">{escape(note)}</p>' for note in review.notes)
    return head + table + notes + "</section>"
