"""Metrics against the unit, after the seed's checklist ("where is the primary metric
measured?"): every metric of an experiment has a declared unit, the primary metric is measured
at the assignment's unit (or the plan says why not), guardrail metrics say which way is worse,
and an experiment has a metric at all.
"""

from __future__ import annotations

from ..policy import Metric
from ..units import StandardUnit
from .model import Finding, Rule, Severity
from .pilot import PilotStats
from .subject import Subject

__all__ = ["metric_findings"]


def metric_findings(subject: Subject, pilot: PilotStats | None) -> list[Finding]:
    plan = subject.plan
    policy_metrics = subject.policy.metrics
    named = [m for m in (plan.primary_metric, *plan.guardrail_metrics) if m]
    seen = sorted(pilot.outcome_metrics) if pilot is not None else []
    findings: list[Finding] = []
    if not subject.metrics and not named:
        findings.append(
            Finding(
                Severity.WARNING,
                Rule.METRIC_FOR_EXPERIMENT,
                f"no metric is declared for {subject.experiment.experiment_key!r}: its "
                "variations map to no outcome, so nothing can decide it",
            )
        )
    for name, where in [*((n, "in the plan") for n in named), *((n, "in the pilot") for n in seen)]:
        if name not in policy_metrics:
            findings.append(
                Finding(
                    Severity.WARNING,
                    Rule.METRIC_UNIT_DECLARED,
                    f"metric {name!r} ({where}) has no declared unit: declare "
                    f"[metrics.{name}] with the unit its outcome belongs to, or its outcomes "
                    "are keyed by whatever unit each track() call implies",
                )
            )
    relevant = {m.name: m for m in subject.metrics}
    relevant.update({n: policy_metrics[n] for n in named if n in policy_metrics})
    for metric in relevant.values():
        findings += _unit_alignment(subject, metric)
    for name in plan.guardrail_metrics:
        guardrail = policy_metrics.get(name)
        if guardrail is not None and guardrail.direction is None:
            findings.append(
                Finding(
                    Severity.WARNING,
                    Rule.GUARDRAIL_DIRECTION,
                    f"guardrail metric {name!r} declares no direction: say "
                    "direction = 'lower_is_better' (latency, errors) or 'higher_is_better', "
                    "or the readout cannot tell worse from better",
                )
            )
    return _dedupe(findings)


def _unit_alignment(subject: Subject, metric: Metric) -> list[Finding]:
    unit = subject.unit.name
    primary = metric.name == subject.plan.primary_metric
    role = "primary metric" if primary else "metric"
    if metric.unit == unit:
        if not primary:
            return []
        return [
            Finding(
                Severity.OK,
                Rule.METRIC_UNIT,
                f"primary metric {metric.name!r} is measured per {unit}, like the assignment",
            )
        ]
    if subject.policy.strict_metrics:
        severity = Severity.ERROR
    else:
        severity = Severity.WARNING if primary else Severity.NOTE
    return [
        Finding(
            severity,
            Rule.METRIC_UNIT,
            f"{role} {metric.name!r} is measured per {metric.unit} but the experiment "
            f"randomizes by {unit}: {_advice(unit, metric.unit, metric.name)}"
            + (
                "; strict metrics refuse every such outcome"
                if subject.policy.strict_metrics
                else ""
            ),
        )
    ]


def _advice(assigned: str, measured: str, name: str) -> str:
    """The seed's reason and the alternative for one unit pair."""
    if assigned == StandardUnit.USER and measured == StandardUnit.CONVERSATION:
        return (
            "randomizing by user while measuring by conversation works only if the decision "
            f"is truly user-level; if {name!r} decides it, randomize by conversation, or "
            "read it per user"
        )
    if assigned == StandardUnit.CONVERSATION and measured == StandardUnit.USER:
        return (
            f"a user-level metric on a conversation experiment is a secondary or "
            f"longer-window readout; if {name!r} decides it, randomize by user"
        )
    return (
        f"FeatBit joins exposures to metrics by key, so outcomes keyed by the {measured} ID "
        f"do not join exposures keyed by the {assigned} ID; measure it per {assigned}, or "
        f"randomize by {measured} if {name!r} decides it"
    )


def _dedupe(findings: list[Finding]) -> list[Finding]:
    return list(dict.fromkeys(findings))
