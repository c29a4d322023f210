"""Rollback and continuity: each experiment declares how a rollback treats units already
assigned ("plan rollback before the experiment starts"), and production keeps those
assignments: a ledger every instance shares, on a Redis that neither forgets on restart nor
evicts, with idle TTLs that outlive a unit.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..continuity.durability import NON_EVICTING_POLICY, DurabilityProblem, RedisDurability, Risk
from ..continuity.store import FALLBACK_TTL_SECONDS
from ..policy import RollbackMode
from ..units import StandardUnit
from .model import Finding, Rule, Severity
from .plan import HORIZON_DAYS, MEMORY_LEDGER, REDIS_LEDGER, Deployment
from .subject import Subject

__all__ = ["deployment_findings", "format_duration", "rollback_findings", "ttl_findings"]

#: Units whose behaviour follows a person or a tenant across sessions (the seed's "durable
#: personal experience", and the shared B2B one).
_DURABLE_UNITS = frozenset({StandardUnit.USER.value, StandardUnit.ACCOUNT.value})


def rollback_findings(subject: Subject, ttl_seconds: Mapping[str, float]) -> list[Finding]:
    experiment, unit = subject.experiment, subject.unit.name
    mode = experiment.rollback
    if mode is None:
        where = (
            " (it is declared only by a FeatBit tag: declare it in the policy to give it one)"
            if subject.declaration.source == "featbit tag"
            else ""
        )
        return [
            Finding(
                Severity.ERROR,
                Rule.ROLLBACK_DECLARED,
                "no rollback declared: plan rollback before the experiment starts; declare "
                "rollback = 'finish_active' (active units keep their variant) or 'contain' "
                f"(FeatBit's current answer applies at once){where}",
            )
        ]
    findings = [Finding(Severity.OK, Rule.ROLLBACK_DECLARED, f"{mode}: {_meaning(mode, unit)}")]
    if unit in _DURABLE_UNITS and mode is RollbackMode.CONTAIN:
        findings.append(
            Finding(
                Severity.NOTE,
                Rule.CONTAIN_DURABLE,
                f"contain on an experiment randomized by {unit} switches every {unit} back at "
                "once: "
                "fine when people can return to the old behaviour; if the treatment leaves "
                "durable state (memory, preferences, generated content), plan what becomes of it",
            )
        )
    if unit in _DURABLE_UNITS and mode is RollbackMode.FINISH_ACTIVE:
        ttl = format_duration(ttl_seconds.get(unit, FALLBACK_TTL_SECONDS))
        off = (
            "turning the flag off still applies at once"
            if experiment.kill_switch_wins
            else "and turning the flag off does not reach them either (kill_switch_wins off)"
        )
        findings.append(
            Finding(
                Severity.NOTE,
                Rule.FINISH_ACTIVE_LONG_LIVED,
                f"finish_active on an experiment randomized by {unit}: an assigned {unit} "
                f"keeps its variant until idle for {ttl}, so a rollout change reaches it only "
                f"then; {off}",
            )
        )
    return findings


def _meaning(mode: RollbackMode, unit: str) -> str:
    if mode is RollbackMode.FINISH_ACTIVE:
        return f"an active {unit} keeps its variant; new ones follow the rollout"
    return f"a rollout change applies to every {unit} at once"


def ttl_findings(subject: Subject, ttl_seconds: Mapping[str, float]) -> list[Finding]:
    unit = subject.unit.name
    ttl = ttl_seconds.get(unit, FALLBACK_TTL_SECONDS)
    life = subject.plan.unit_life_seconds
    if life is None and unit in _DURABLE_UNITS:
        life = HORIZON_DAYS[-1] * 86400.0
    if life is None:
        return []
    if ttl < life:
        return [
            Finding(
                Severity.WARNING,
                Rule.IDLE_TTL,
                f"the ledger's idle TTL for the {unit} unit ({format_duration(ttl)}) is shorter "
                f"than its expected life ({format_duration(life)}): one idle longer comes back "
                "to a fresh assignment from the current rollout; raise ttl_seconds on the store",
            )
        ]
    return [
        Finding(
            Severity.OK,
            Rule.IDLE_TTL,
            f"idle TTL {format_duration(ttl)} covers the expected life of one {unit} "
            f"({format_duration(life)})",
        )
    ]


def deployment_findings(deployment: Deployment, redis: RedisDurability | None) -> list[Finding]:
    return [*_ledger(deployment), *_redis(deployment, redis)]


def _ledger(deployment: Deployment) -> list[Finding]:
    instances = deployment.instances
    if deployment.ledger == REDIS_LEDGER:
        shared = f" shared by {instances} instance(s)" if instances else ""
        return [Finding(Severity.OK, Rule.LEDGER_SHARED, f"assignment ledger on Redis{shared}")]
    named = (
        "in-memory ledger" if deployment.ledger == MEMORY_LEDGER else "in-memory ledger (default)"
    )
    if instances is None:
        return [
            Finding(
                Severity.NOTE,
                Rule.LEDGER_SHARED,
                f"{named}: right for one instance only; say how many instances run "
                "(--instances) to have this checked",
            )
        ]
    if instances > 1:
        return [
            Finding(
                Severity.ERROR,
                Rule.LEDGER_SHARED,
                f"{named} with {instances} instances: each process remembers its own units, "
                "so a unit whose next turn lands on another instance is assigned again there; "
                "use a RedisStore every instance shares",
            )
        ]
    return [Finding(Severity.OK, Rule.LEDGER_SHARED, f"{named} on a single instance")]


def _redis(deployment: Deployment, redis: RedisDurability | None) -> list[Finding]:
    """Each risk the durability check found (its words), then what is fine on every server."""
    if redis is None:
        if deployment.ledger == REDIS_LEDGER:
            return [
                Finding(
                    Severity.NOTE,
                    Rule.REDIS_PERSISTENCE,
                    "no Redis URL given: persistence and maxmemory-policy are not checked",
                )
            ]
        return []
    risks = redis.risks()
    if not redis.reachable:  # nothing else is known
        return [_finding(problem) for problem in risks if problem.risk is Risk.UNREACHABLE]
    findings = [_finding(problem) for problem in risks]
    rules = {finding.rule for finding in findings}
    checked = [server for server in redis.servers if server.readable]
    if checked and Rule.REDIS_PERSISTENCE not in rules:
        kinds = ["append-only file"] + (
            ["RDB snapshots"] if all(server.snapshots for server in checked) else []
        )
        findings.append(
            Finding(Severity.OK, Rule.REDIS_PERSISTENCE, f"Redis persists: {', '.join(kinds)}")
        )
    if checked and Rule.REDIS_EVICTION not in rules:
        policies = sorted({str(s.maxmemory_policy) for s in checked if s.evicting_policy})
        if policies:
            findings.append(
                Finding(
                    Severity.NOTE,
                    Rule.REDIS_EVICTION,
                    f"maxmemory-policy {', '.join(policies)} evicts once a maxmemory is set "
                    "(none now); noeviction keeps the ledger whole",
                )
            )
        else:
            findings.append(
                Finding(Severity.OK, Rule.REDIS_EVICTION, f"maxmemory-policy {NON_EVICTING_POLICY}")
            )
    return findings


#: Where each durability risk lands in the report, and how loud.
_RISK_FINDINGS = {
    Risk.UNREACHABLE: (Severity.ERROR, Rule.REDIS_REACHABLE),
    Risk.UNCHECKED: (Severity.NOTE, Rule.REDIS_PERSISTENCE),
    Risk.NO_PERSISTENCE: (Severity.WARNING, Rule.REDIS_PERSISTENCE),
    Risk.SNAPSHOTS_ONLY: (Severity.WARNING, Rule.REDIS_PERSISTENCE),
    Risk.LAX_FSYNC: (Severity.WARNING, Rule.REDIS_PERSISTENCE),
    Risk.EVICTION: (Severity.WARNING, Rule.REDIS_EVICTION),
}


def _finding(problem: DurabilityProblem) -> Finding:
    severity, rule = _RISK_FINDINGS[problem.risk]
    return Finding(severity, rule, str(problem))


def format_duration(seconds: float) -> str:
    """``12h``, ``30d``, ``15m``: the largest unit that divides evenly, else hours."""
    for size, suffix in ((86400.0, "d"), (3600.0, "h"), (60.0, "m")):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{suffix}"
    if seconds >= 3600:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds:g}s"
