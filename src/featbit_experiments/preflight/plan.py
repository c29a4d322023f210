"""What a team plans for its experiments beyond the unit policy: the primary and guardrail
metrics, the branches the code routes, the expected traffic and baseline, how long a unit
lives, and how the service is deployed (instances, ledger, Redis, idle TTLs).

The policy says what *is* (units, metrics, rollback); the plan says what the team *expects*,
which only the preflight reads. It is built in code (:class:`PreflightPlan`) or read from a TOML
file (:func:`load_plan`)::

    [deployment]
    instances = 3                      # service instances sharing traffic
    ledger = "redis"                   # "memory" or "redis"
    redis_url = "redis://ledger:6379/0"
    ttl = { conversation = "12h" }     # idle TTL overrides, as given to the store

    [experiments.support-retrieval-test]
    primary_metric = "resolved_without_escalation"
    guardrail_metrics = ["human_handoff", "turn_latency_ms"]
    branches = ["control", "retrieval_profile_b"]
    units_per_day = 1500               # new units a day
    max_units = 50000                  # units that exist at all (a B2B product's accounts)
    baseline_rate = 0.62               # the primary metric's rate today (or baseline_mean and
                                       # baseline_sd for a continuous metric)
    unit_life = "2h"                   # how long one unit stays active
    target_lift = 0.05                 # the smallest relative change worth detecting

A broken file is a :class:`~featbit_experiments.errors.PolicyError` naming the file and the
field; nothing here touches FeatBit or Redis.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from ..continuity.store import unit_ttls
from ..errors import PolicyError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

__all__ = ["Deployment", "ExperimentPlan", "PreflightPlan", "load_plan", "parse_duration"]

MEMORY_LEDGER = "memory"
REDIS_LEDGER = "redis"
#: The days the "how long will it take" table reports.
HORIZON_DAYS = (7, 14, 28)

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_SECONDS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 7 * 86400.0}


@dataclass(frozen=True)
class ExperimentPlan:
    """What the team expects of one experiment.

    Args:
        primary_metric: The metric the decision rests on.
        guardrail_metrics: Metrics that must not get worse (each needs a direction).
        branches: The variant names the code routes (``experiment_branch`` keys).
        units_per_day: New units a day; measured from a pilot log when not given.
        max_units: How many units exist at all (a B2B product's accounts): assignment stops
            growing there, and so does what the experiment can detect.
        baseline_rate: The primary metric's rate today, for a conversion metric.
        baseline_mean: The primary metric's mean today, for a continuous metric.
        baseline_sd: Its standard deviation per unit (needed with ``baseline_mean``).
        unit_life_seconds: How long one unit stays active (a conversation's length).
        target_lift: The smallest relative change worth detecting (0.05 for 5%).
    """

    primary_metric: str | None = None
    guardrail_metrics: tuple[str, ...] = ()
    branches: tuple[str, ...] = ()
    units_per_day: float | None = None
    max_units: float | None = None
    baseline_rate: float | None = None
    baseline_mean: float | None = None
    baseline_sd: float | None = None
    unit_life_seconds: float | None = None
    target_lift: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "guardrail_metrics", tuple(self.guardrail_metrics))
        object.__setattr__(self, "branches", tuple(self.branches))
        if self.baseline_rate is not None and not 0 < self.baseline_rate < 1:
            raise PolicyError(f"baseline_rate must be between 0 and 1, got {self.baseline_rate}")
        if (self.baseline_mean is None) != (self.baseline_sd is None):
            raise PolicyError("baseline_mean and baseline_sd go together")
        if self.baseline_sd is not None and not self.baseline_sd > 0:
            raise PolicyError(f"baseline_sd must be positive, got {self.baseline_sd}")
        for name in ("units_per_day", "max_units", "unit_life_seconds", "target_lift"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise PolicyError(f"{name} must be positive, got {value}")


@dataclass(frozen=True)
class Deployment:
    """How the service runs in production.

    Args:
        instances: Service instances sharing traffic; None when not said.
        ledger: ``"memory"`` or ``"redis"``; None when not said (``"redis"`` if a
            ``redis_url`` is given).
        redis_url: The ledger's Redis, checked for persistence and eviction.
        ttl_seconds: Idle TTL overrides per unit, as given to the assignment store.
    """

    instances: int | None = None
    ledger: str | None = None
    redis_url: str | None = None
    ttl_seconds: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.instances is not None and self.instances < 1:
            raise PolicyError(f"instances must be at least 1, got {self.instances}")
        if self.ledger is None and self.redis_url:
            object.__setattr__(self, "ledger", REDIS_LEDGER)
        if self.ledger not in (None, MEMORY_LEDGER, REDIS_LEDGER):
            raise PolicyError(f"ledger must be 'memory' or 'redis', got {self.ledger!r}")
        unit_ttls(self.ttl_seconds)  # refuses a TTL that is not positive
        object.__setattr__(self, "ttl_seconds", MappingProxyType(dict(self.ttl_seconds)))

    @property
    def idle_ttls(self) -> dict[str, float]:
        """The store's idle TTL per unit: the defaults with this deployment's overrides."""
        return unit_ttls(self.ttl_seconds)


@dataclass(frozen=True)
class PreflightPlan:
    """The plan for every experiment (by flag key) and the deployment."""

    experiments: Mapping[str, ExperimentPlan] = field(default_factory=dict)
    deployment: Deployment = field(default_factory=Deployment)

    def __post_init__(self) -> None:
        object.__setattr__(self, "experiments", MappingProxyType(dict(self.experiments)))

    def for_flag(self, flag_key: str) -> ExperimentPlan:
        return self.experiments.get(flag_key) or ExperimentPlan()


def parse_duration(text: str | float | int, name: str = "duration") -> float:
    """Seconds in ``"90s"``, ``"15m"``, ``"12h"``, ``"30d"``, ``"2w"`` (or a number of seconds)."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        return float(text)
    match = _DURATION.match(str(text))
    if match is None:
        raise PolicyError(f"{name}: {text!r} is not a duration like '90s', '12h' or '30d'")
    return float(match.group(1)) * _SECONDS[match.group(2)]


def load_plan(path: str | Path) -> PreflightPlan:
    """Read a plan file; raises PolicyError naming the file on any problem."""
    file = Path(path)
    try:
        raw = tomllib.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PolicyError(f"{file}: plan file not found") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise PolicyError(f"{file}: cannot read plan file: {error}") from error
    try:
        return plan_from_mapping(raw)
    except (PolicyError, TypeError, ValueError) as error:
        raise PolicyError(f"{file}: {error}") from None


def plan_from_mapping(raw: Mapping[str, Any]) -> PreflightPlan:
    """A plan from already-parsed data (the TOML file's tables)."""
    _only(raw, "plan", {"deployment", "experiments"})
    deployment = _table(raw.get("deployment", {}), "deployment")
    _only(deployment, "deployment", {"instances", "ledger", "redis_url", "ttl"})
    ttl = _table(deployment.get("ttl", {}), "deployment.ttl")
    experiments = _table(raw.get("experiments", {}), "experiments")
    return PreflightPlan(
        experiments={
            key: _experiment_plan(_table(spec, f"experiments.{key}"), f"experiments.{key}")
            for key, spec in experiments.items()
        },
        deployment=Deployment(
            instances=_optional(deployment, "instances", int, "deployment"),
            ledger=_optional(deployment, "ledger", str, "deployment"),
            redis_url=_optional(deployment, "redis_url", str, "deployment"),
            ttl_seconds={
                unit: parse_duration(value, f"deployment.ttl.{unit}") for unit, value in ttl.items()
            },
        ),
    )


_EXPERIMENT_FIELDS = {
    "primary_metric",
    "guardrail_metrics",
    "branches",
    "units_per_day",
    "max_units",
    "baseline_rate",
    "baseline_mean",
    "baseline_sd",
    "unit_life",
    "target_lift",
}


def _experiment_plan(spec: Mapping[str, Any], where: str) -> ExperimentPlan:
    _only(spec, where, _EXPERIMENT_FIELDS)
    life = spec.get("unit_life")
    return ExperimentPlan(
        primary_metric=_optional(spec, "primary_metric", str, where),
        guardrail_metrics=tuple(_strings(spec.get("guardrail_metrics", []), where)),
        branches=tuple(_strings(spec.get("branches", []), where)),
        units_per_day=_optional(spec, "units_per_day", float, where),
        max_units=_optional(spec, "max_units", float, where),
        baseline_rate=_optional(spec, "baseline_rate", float, where),
        baseline_mean=_optional(spec, "baseline_mean", float, where),
        baseline_sd=_optional(spec, "baseline_sd", float, where),
        unit_life_seconds=None if life is None else parse_duration(life, f"{where}.unit_life"),
        target_lift=_optional(spec, "target_lift", float, where),
    )


def _only(spec: Mapping[str, Any], where: str, allowed: set[str]) -> None:
    unknown = set(spec) - allowed
    if unknown:
        raise PolicyError(
            f"{where}: unknown field(s) {', '.join(sorted(unknown))}; "
            f"allowed: {', '.join(sorted(allowed))}"
        )


def _table(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise PolicyError(f"{where} must be a table")
    return value


def _strings(value: Any, where: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise PolicyError(f"{where}: expected a list of names, got {value!r}")
    return value


def _optional(spec: Mapping[str, Any], name: str, kind: type, where: str) -> Any:
    value = spec.get(name)
    if value is None:
        return None
    numeric = kind is float and isinstance(value, int)
    if isinstance(value, bool) or not (isinstance(value, kind) or numeric):
        raise PolicyError(f"{where}.{name} must be a {kind.__name__}, got {value!r}")
    return kind(value)
