"""The preflight report as text for people and JSON for machines.

Text: one section per experiment, one line per finding (severity, rule, message: grep-able in
a CI log), then the "how long will it take" table. Control characters in names from flag data
or files are replaced, so a hostile flag key cannot rewrite the terminal. Nothing here checks
anything.
"""

from __future__ import annotations

import json

from ._duration import describe_change
from .model import DurationPlan, ExperimentReport, Finding, PreflightReport, Severity
from .power import ALPHA, POWER

__all__ = ["render_json", "render_text"]

_RULE_WIDTH = 34
_INDENT = "  "


def render_json(report: PreflightReport) -> str:
    return json.dumps(report.to_dict(), indent=2) + "\n"


def render_text(report: PreflightReport) -> str:
    counts = ", ".join(
        f"{report.count(severity)} {severity}(s)"
        for severity in (Severity.ERROR, Severity.WARNING, Severity.NOTE)
    )
    lines = [f"Preflight: {len(report.experiments)} experiment(s); {counts}", ""]
    if report.findings:
        lines.append("Deployment")
        lines += [_line(finding) for finding in report.findings]
        lines.append("")
    for experiment in report.experiments:
        lines += _section(experiment)
        lines.append("")
    if not report.experiments:
        lines.append("No experiment declared by the policy or by a FeatBit unit tag.")
    return "\n".join(lines).rstrip("\n") + "\n"


def _section(experiment: ExperimentReport) -> list[str]:
    unit = f"randomizes by {experiment.unit}" if experiment.unit else "unit unresolved"
    title = _clean(experiment.flag_key)
    if experiment.experiment_key != experiment.flag_key:
        title += f" (experiment {_clean(experiment.experiment_key)})"
    lines = [f"{title}: {unit}"]
    lines += [_line(finding) for finding in experiment.findings]
    if experiment.duration is not None:
        lines += _table(experiment.duration, experiment.unit or "unit")
    return lines


def _line(finding: Finding) -> str:
    """One finding, one line (grep-able in a CI log; the terminal wraps it)."""
    return f"{_INDENT}{finding.severity!s:<8} {finding.rule!s:<{_RULE_WIDTH}} " + _clean(
        finding.message
    )


def _table(duration: DurationPlan, unit: str) -> list[str]:
    baseline = f"{duration.baseline:.1%}" if duration.kind == "rate" else f"{duration.baseline:g}"
    metric = _clean(duration.metric) if duration.metric else "the primary metric"
    lines = [
        f"{_INDENT}How long it will take: {metric} at baseline {baseline}, "
        f"{duration.units_per_day:,.0f} {unit}s a day ({_clean(duration.units_source)}); "
        f"{POWER:.0%} power, two-sided alpha {ALPHA:g}",
        f"{_INDENT * 2}{'day':>4}  {'units':>9}  {'smallest arm':>12}  smallest detectable change",
    ]
    for row in duration.rows:
        lines.append(
            f"{_INDENT * 2}{row.day:>4}  {row.units:>9,}  {row.smallest_arm:>12,}  "
            f"{describe_change(duration.kind, row.absolute, row.relative)}"
        )
    return lines


def _clean(text: str) -> str:
    return "".join(ch if ch.isprintable() else "?" for ch in text)
