"""The preflight itself: every check over every experiment, from inputs already read (a
policy, FeatBit flags, the plan, a pilot log, the ledger Redis's settings).

Pure: no file, network or clock is touched here, so the provider can run the same checks at
start-up on what it already holds, and tests can plant one problem at a time.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ..continuity.durability import RedisDurability
from ..flag_view import FlagView
from ..policy import UNIT_TAG_PREFIX, Declaration, Refusal, UnitPolicy
from ._bucketing import bucketing_findings
from ._continuity import deployment_findings, rollback_findings, ttl_findings
from ._duration import duration_plan
from ._metrics import metric_findings
from ._stable_ids import stable_id_findings
from .model import ExperimentReport, Finding, PreflightReport, Rule, Severity
from .pilot import PilotLog
from .plan import PreflightPlan
from .subject import Subject

__all__ = ["check"]

#: The guardrail a tag-declared request experiment is refused with (``policy.declaration_for``).
_REQUEST_REFUSAL = "request_unit_refused"


def check(
    policy: UnitPolicy,
    flags: Iterable[Mapping[str, Any]],
    *,
    plan: PreflightPlan | None = None,
    pilot: PilotLog | None = None,
    redis: RedisDurability | None = None,
    sources: Sequence[tuple[str, UnitPolicy]] = (),
) -> PreflightReport:
    """Check every experiment the policy or FeatBit's tags declare.

    Args:
        policy: The unit policy in force (code and file combined).
        flags: FeatBit flags, raw as the SDK stores them.
        plan: The team's plan (metrics' roles, traffic, baseline, deployment).
        pilot: A pilot's event log, read with :func:`~.pilot.read_pilot_log`.
        redis: The ledger Redis's settings, read with ``read_redis_durability``.
        sources: The policy's separate sources, to say where each experiment is declared.
    """
    plan = plan or PreflightPlan()
    by_key = {str(flag.get("key") or flag.get("id")): flag for flag in flags}
    findings = deployment_findings(plan.deployment, redis)
    if pilot is not None and pilot.malformed_lines:
        findings.append(
            Finding(
                Severity.NOTE,
                Rule.PILOT_LOG,
                f"{pilot.malformed_lines} malformed line(s) in {pilot.path} skipped",
            )
        )
    reports: list[ExperimentReport] = []
    for key in sorted(set(policy.experiments) | set(by_key)):
        flag = by_key.get(key)
        if flag is None:
            reports.append(_missing_flag(policy, key))
            continue
        view = FlagView.of(flag)
        declaration = policy.declaration_for(key, view.tags)
        if declaration is None:
            continue
        if isinstance(declaration, Refusal):
            reports.append(_refused(key, declaration))
            continue
        subject = Subject(declaration, flag, view, plan.for_flag(key), policy)
        reports.append(_experiment_report(subject, plan, pilot, sources))
    known = {report.flag_key for report in reports}
    findings += [
        Finding(
            Severity.WARNING,
            Rule.UNIT_DECLARATION,
            f"the plan names {key!r}, which neither the policy nor a FeatBit tag declares",
        )
        for key in sorted(set(plan.experiments) - known)
    ]
    return PreflightReport(tuple(findings), tuple(reports))


def _experiment_report(
    subject: Subject,
    plan: PreflightPlan,
    pilot_log: PilotLog | None,
    sources: Sequence[tuple[str, UnitPolicy]],
) -> ExperimentReport:
    experiment, unit = subject.experiment, subject.unit
    declared_in = _declared_in(subject.declaration, subject.view.tags, sources)
    pilot = None if pilot_log is None else pilot_log.stats(experiment.experiment_key, unit.name)
    ttls = plan.deployment.idle_ttls
    duration, duration_findings = duration_plan(subject, pilot)
    findings = [
        Finding(
            Severity.OK,
            Rule.UNIT_DECLARATION,
            f"randomizes by {unit.name} ({unit.attribute}); declared in {', '.join(declared_in)}",
        ),
        *bucketing_findings(subject),
        *metric_findings(subject, pilot),
        *rollback_findings(subject, ttls),
        *ttl_findings(subject, ttls),
        *stable_id_findings(subject, pilot),
        *duration_findings,
    ]
    return ExperimentReport(
        experiment.flag_key,
        experiment.experiment_key,
        unit.name,
        declared_in,
        tuple(findings),
        duration,
    )


def _declared_in(
    declaration: Declaration, tags: Sequence[str], sources: Sequence[tuple[str, UnitPolicy]]
) -> tuple[str, ...]:
    key = declaration.experiment.flag_key
    places = [label for label, source in sources if key in source.experiments]
    if not places and declaration.source != "featbit tag":
        places.append(declaration.source)
    places += [f"FeatBit tag {tag}" for tag in tags if tag.startswith(UNIT_TAG_PREFIX)]
    return tuple(places)


def _missing_flag(policy: UnitPolicy, key: str) -> ExperimentReport:
    experiment = policy.experiments[key]
    return ExperimentReport(
        key,
        experiment.experiment_key,
        experiment.unit,
        (),
        (
            Finding(
                Severity.ERROR,
                Rule.FLAG_IN_FEATBIT,
                f"the policy declares {key!r} but FeatBit has no such flag: every evaluation "
                "would serve the caller's default (FLAG_NOT_FOUND)",
            ),
        ),
    )


def _refused(key: str, refusal: Refusal) -> ExperimentReport:
    rule = (
        Rule.REQUEST_UNIT_USER_FACING
        if refusal.guardrail == _REQUEST_REFUSAL
        else Rule.UNIT_DECLARATION
    )
    return ExperimentReport(
        key,
        key,
        None,
        (),
        (
            Finding(
                Severity.ERROR,
                rule,
                f"{refusal.message}; every evaluation is refused until this is fixed",
            ),
        ),
    )
