"""The preflight's findings: each line of the report with its severity and the rule that
produced it, grouped per experiment, plus the "how long will it take" table.

Plain frozen values: the checks build them, the renderers print them, CI reads the exit code.
Nothing here checks anything.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

__all__ = [
    "DurationPlan",
    "ExperimentReport",
    "Finding",
    "HorizonRow",
    "PreflightReport",
    "Rule",
    "Severity",
]


class Severity(str, Enum):
    """How much a line matters: ``error`` fails CI, ``warning`` fails it when asked,
    ``note`` and ``ok`` describe the plan."""

    OK = "ok"
    NOTE = "note"
    WARNING = "warning"
    ERROR = "error"

    def __str__(self) -> str:
        return self.value


class Rule(str, Enum):
    """Stable names of the checks; every line of a report names the one that produced it."""

    POLICY_LOADS = "policy.loads"
    UNIT_DECLARATION = "unit.declaration"
    REQUEST_UNIT_USER_FACING = "unit.request_on_user_facing"
    FLAG_IN_FEATBIT = "flag.in_featbit"
    DISPATCH_KEY = "bucketing.dispatch_key"
    TRAFFIC_SPLIT = "bucketing.split"
    INDIVIDUAL_TARGETING = "bucketing.individual_targeting"
    VARIATIONS_MAPPED = "bucketing.variations_mapped"
    METRIC_FOR_EXPERIMENT = "metrics.declared_for_experiment"
    METRIC_UNIT = "metrics.unit_matches_assignment"
    METRIC_UNIT_DECLARED = "metrics.unit_declared"
    GUARDRAIL_DIRECTION = "metrics.guardrail_direction"
    ROLLBACK_DECLARED = "rollback.declared"
    CONTAIN_DURABLE = "rollback.contain_durable"
    FINISH_ACTIVE_LONG_LIVED = "rollback.finish_active_long_lived"
    LEDGER_SHARED = "continuity.ledger_shared"
    REDIS_REACHABLE = "continuity.redis_reachable"
    REDIS_PERSISTENCE = "continuity.redis_persistence"
    REDIS_EVICTION = "continuity.redis_eviction"
    IDLE_TTL = "continuity.idle_ttl"
    STABLE_IDS = "stable_ids.refused_share"
    PILOT_LOG = "stable_ids.pilot_log"
    DURATION = "duration.mde"
    TARGET_LIFT = "duration.target_lift"
    ACCOUNT_LEVEL = "duration.account_level"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Finding:
    """One line of the report."""

    severity: Severity
    rule: Rule
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"severity": str(self.severity), "rule": str(self.rule), "message": self.message}


@dataclass(frozen=True)
class HorizonRow:
    """What the experiment can detect by one day.

    Args:
        day: Days since launch.
        units: Units assigned by then, all arms together.
        smallest_arm: Units in the smallest arm the comparison uses.
        absolute: The smallest detectable change in the metric's own terms (a rate difference
            or a difference of means), in its better direction; None when none is possible.
        relative: ``absolute`` over the baseline.
    """

    day: int
    units: int
    smallest_arm: int
    absolute: float | None
    relative: float | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "day": self.day,
            "units": self.units,
            "smallestArm": self.smallest_arm,
            "mdeAbsolute": self.absolute,
            "mdeRelative": self.relative,
        }


@dataclass(frozen=True)
class DurationPlan:
    """The minimum detectable effect at 80% power, two-sided alpha 0.05, by day."""

    metric: str | None
    kind: str
    baseline: float
    units_per_day: float
    units_source: str
    rows: tuple[HorizonRow, ...]
    days_to_target: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "kind": self.kind,
            "baseline": self.baseline,
            "unitsPerDay": self.units_per_day,
            "unitsPerDaySource": self.units_source,
            "horizon": [row.to_dict() for row in self.rows],
            # null when no target was given or none can be met (JSON has no Infinity)
            "daysToTargetLift": (
                None
                if self.days_to_target is None or math.isinf(self.days_to_target)
                else self.days_to_target
            ),
        }


@dataclass(frozen=True)
class ExperimentReport:
    """Everything the preflight says about one experiment flag."""

    flag_key: str
    experiment_key: str
    unit: str | None
    declared_in: tuple[str, ...]
    findings: tuple[Finding, ...]
    duration: DurationPlan | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "flagKey": self.flag_key,
            "experimentKey": self.experiment_key,
            "unit": self.unit,
            "declaredIn": list(self.declared_in),
            "findings": [finding.to_dict() for finding in self.findings],
            "duration": None if self.duration is None else self.duration.to_dict(),
        }


@dataclass(frozen=True)
class PreflightReport:
    """The whole plan: deployment-level findings and one section per experiment."""

    findings: tuple[Finding, ...] = ()
    experiments: tuple[ExperimentReport, ...] = field(default_factory=tuple)

    def all_findings(self) -> Iterator[Finding]:
        yield from self.findings
        for experiment in self.experiments:
            yield from experiment.findings

    def count(self, severity: Severity) -> int:
        return sum(1 for finding in self.all_findings() if finding.severity is severity)

    def rules(self, severity: Severity | None = None) -> set[Rule]:
        """The rules that produced lines (of one severity, or any)."""
        return {f.rule for f in self.all_findings() if severity is None or f.severity is severity}

    def experiment(self, flag_key: str) -> ExperimentReport:
        for experiment in self.experiments:
            if experiment.flag_key == flag_key:
                return experiment
        raise KeyError(flag_key)

    def exit_code(self, *, fail_on_warnings: bool = False) -> int:
        """1 when an error (or, if asked, a warning) was found; 0 otherwise."""
        if self.count(Severity.ERROR):
            return 1
        if fail_on_warnings and self.count(Severity.WARNING):
            return 1
        return 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "errors": self.count(Severity.ERROR),
            "warnings": self.count(Severity.WARNING),
            "notes": self.count(Severity.NOTE),
            "findings": [finding.to_dict() for finding in self.findings],
            "experiments": [experiment.to_dict() for experiment in self.experiments],
        }
