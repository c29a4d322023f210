"""The unit key policy: which flags are experiments, on which unit, and how outcomes join them.

Declarations come from three places: Python code, a TOML policy file, and the flag's FeatBit
tags (``unit:conversation``). Code and file are combined at start-up, where a disagreement is a
:class:`PolicyError`. Tags arrive with flag data, so a tag that disagrees with the code or file
is found at evaluation time and the experiment is refused, never resolved by picking a side.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import Enum
from types import MappingProxyType

from . import event_schema as schema
from .errors import PolicyError
from .units import Unit, UnitCatalog

UNIT_TAG_PREFIX = "unit:"


class RollbackMode(str, Enum):
    """What happens to units already assigned when an experiment's rollout changes.

    ``finish_active``: assigned units keep their variant until they end; new units follow the
    rollout. ``contain``: the current FeatBit evaluation applies at once.
    """

    FINISH_ACTIVE = "finish_active"
    CONTAIN = "contain"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Experiment:
    """An experiment flag and the unit it randomizes on.

    Args:
        flag_key: The FeatBit flag key.
        unit: The randomization unit's name.
        experiment_key: The name exposures and outcomes carry; defaults to the flag key.
        run_id: Distinguishes reruns of one experiment (a changed unit needs a new run).
        user_facing: Whether people see the variant; request-level randomization is refused
            for user-facing experiments unless ``allow_request_unit`` is set.
        allow_request_unit: Explicitly allow request randomization of a user-facing experiment.
        rollback: What a rollout change does to units already assigned. None when the
            declaration does not say: the experiment then runs as ``finish_active``, and the
            preflight reports it (plan rollback before the experiment starts).
        variant_names: Readable variant names by FeatBit variation id or value.
        kill_switch_wins: Under ``finish_active``, turning the flag off still applies at once.
    """

    flag_key: str
    unit: str
    experiment_key: str = ""
    run_id: str = ""
    user_facing: bool = True
    allow_request_unit: bool = False
    rollback: RollbackMode | None = None
    variant_names: Mapping[str, str] = field(default_factory=dict)
    kill_switch_wins: bool = True

    def __post_init__(self) -> None:
        if not self.flag_key:
            raise PolicyError("an experiment needs a flag key")
        if not self.unit:
            raise PolicyError(f"experiment {self.flag_key!r} needs a unit")
        if not self.experiment_key:
            object.__setattr__(self, "experiment_key", self.flag_key)
        if self.rollback is not None:
            object.__setattr__(self, "rollback", RollbackMode(self.rollback))
        object.__setattr__(self, "variant_names", MappingProxyType(dict(self.variant_names)))

    def refusal(self) -> str | None:
        """Why this declaration must not run, or None when it may."""
        if self.unit == "request" and self.user_facing and not self.allow_request_unit:
            return (
                f"experiment {self.experiment_key!r} is user-facing and randomizes by request; "
                "declare it user_facing=False or allow_request_unit=True if requests are "
                "truly independent"
            )
        return None


class MetricDirection(str, Enum):
    """Which way a metric is better, written on every outcome record so the audit reads it
    from the log instead of assuming "higher is better" for a latency or an error count."""

    HIGHER_IS_BETTER = schema.HIGHER_IS_BETTER
    LOWER_IS_BETTER = schema.LOWER_IS_BETTER

    def __str__(self) -> str:
        return self.value

    @classmethod
    def parse(cls, value: object) -> MetricDirection | None:
        """The direction named by ``value``, or None when it names none."""
        try:
            return cls(value)
        except ValueError:
            return None


@dataclass(frozen=True)
class Metric:
    """An outcome metric and the unit it is measured at.

    Args:
        name: The tracking event name passed to ``track()``.
        unit: The unit the outcome belongs to (``"conversation"`` for resolution, ``"user"``
            for retention).
        experiments: Experiment keys this metric is an outcome of. A ``track()`` call can
            also name its experiment with an ``experimentKey`` tracking attribute.
        direction: Which way the metric is better (``"higher_is_better"`` or
            ``"lower_is_better"``); None leaves it undeclared (the audit then assumes higher
            unless told otherwise).
    """

    name: str
    unit: str
    experiments: tuple[str, ...] = ()
    direction: MetricDirection | None = None

    def __post_init__(self) -> None:
        if not self.name:
            raise PolicyError("a metric needs a name")
        if not self.unit:
            raise PolicyError(f"metric {self.name!r} needs a unit")
        object.__setattr__(self, "experiments", tuple(self.experiments))
        if self.direction is not None:
            direction = MetricDirection.parse(self.direction)
            if direction is None:
                raise PolicyError(
                    f"metric {self.name!r}: direction must be {_DIRECTIONS}, got {self.direction!r}"
                )
            object.__setattr__(self, "direction", direction)


_DIRECTIONS = " or ".join(repr(d.value) for d in MetricDirection)


@dataclass(frozen=True)
class Declaration:
    """What the policy says about one flag once tags are taken into account."""

    experiment: Experiment
    unit: Unit
    source: str


@dataclass(frozen=True)
class Refusal:
    """The policy refuses to run a flag as declared; carries the guardrail name."""

    message: str
    guardrail: str


class UnitPolicy:
    """Experiments and metrics with their units.

    Args:
        experiments: Experiment declarations from code.
        metrics: Outcome metric declarations from code.
        units: Custom units, or redefinitions of standard ones.
        strict_metrics: Refuse (do not send) outcomes measured at a different unit than the
            experiment they belong to, instead of only flagging them.
        targeting_key_unit: The unit OpenFeature's targeting key stands for (default
            ``"user"``), or None.
        read_tags: Read ``unit:<name>`` tags on FeatBit flags as declarations.
    """

    def __init__(
        self,
        experiments: Iterable[Experiment] = (),
        metrics: Iterable[Metric] = (),
        *,
        units: Iterable[Unit] = (),
        strict_metrics: bool = False,
        targeting_key_unit: str | None = "user",
        read_tags: bool = True,
        source: str = "code",
    ) -> None:
        self.units = UnitCatalog(units, targeting_key_unit=targeting_key_unit)
        self.strict_metrics = strict_metrics
        self.read_tags = read_tags
        self._experiments: dict[str, Experiment] = {}
        self._sources: dict[str, str] = {}
        self._metrics: dict[str, Metric] = {}
        for experiment in experiments:
            self._add_experiment(experiment, source)
        for metric in metrics:
            self._add_metric(metric, source)

    # -- building -------------------------------------------------------------------------

    def _add_experiment(self, experiment: Experiment, source: str) -> None:
        if experiment.unit not in self.units:
            raise PolicyError(
                f"experiment {experiment.flag_key!r} ({source}) declares unknown unit "
                f"{experiment.unit!r}; known units: {', '.join(self.units.names)}"
            )
        refusal = experiment.refusal()
        if refusal is not None:
            raise PolicyError(f"{refusal} ({source})")
        existing = self._experiments.get(experiment.flag_key)
        if existing is not None:
            # A declaration that leaves the rollback unsaid does not disagree with one that
            # says it: the declared mode is kept (the preflight reports undeclared ones).
            if existing.rollback is None:
                existing = replace(existing, rollback=experiment.rollback)
            elif experiment.rollback is None:
                experiment = replace(experiment, rollback=existing.rollback)
        if existing is not None and existing != experiment:
            raise PolicyError(
                f"flag {experiment.flag_key!r} is declared twice and the declarations "
                f"disagree: {self._sources[experiment.flag_key]} says unit "
                f"{existing.unit!r}, {source} says unit {experiment.unit!r}"
                if existing.unit != experiment.unit
                else f"flag {experiment.flag_key!r} is declared differently in "
                f"{self._sources[experiment.flag_key]} and {source}"
            )
        self._experiments[experiment.flag_key] = experiment
        self._sources.setdefault(experiment.flag_key, source)

    def _add_metric(self, metric: Metric, source: str) -> None:
        if metric.unit not in self.units:
            raise PolicyError(
                f"metric {metric.name!r} ({source}) declares unknown unit {metric.unit!r}"
            )
        existing = self._metrics.get(metric.name)
        if existing is not None and existing != metric:
            raise PolicyError(f"metric {metric.name!r} is declared twice and they disagree")
        self._metrics[metric.name] = metric

    def combine(self, other: UnitPolicy) -> UnitPolicy:
        """A policy holding both sets of declarations; disagreements raise PolicyError."""
        units = {unit.name: unit for unit in self.units}
        for unit in other.units:
            if unit.name in units and units[unit.name] != unit:
                raise PolicyError(f"unit {unit.name!r} is defined differently in two sources")
            units[unit.name] = unit
        combined = UnitPolicy(
            units=units.values(),
            strict_metrics=self.strict_metrics or other.strict_metrics,
            targeting_key_unit=self.units.targeting_key_unit,
            read_tags=self.read_tags and other.read_tags,
        )
        for policy in (self, other):
            for key, experiment in policy._experiments.items():
                combined._add_experiment(experiment, policy._sources[key])
            for metric in policy._metrics.values():
                combined._add_metric(metric, "combined")
        return combined

    # -- reading --------------------------------------------------------------------------

    @property
    def experiments(self) -> Mapping[str, Experiment]:
        return MappingProxyType(self._experiments)

    @property
    def metrics(self) -> Mapping[str, Metric]:
        return MappingProxyType(self._metrics)

    def experiment_by_key(self, experiment_key: str) -> Experiment | None:
        for experiment in self._experiments.values():
            if experiment.experiment_key == experiment_key:
                return experiment
        return None

    def declaration_for(self, flag_key: str, tags: Sequence[str]) -> Declaration | Refusal | None:
        """The declaration in force for a flag with these FeatBit tags.

        None for an ordinary flag (no declaration anywhere). A Refusal when the tags name
        several units, an unknown unit, or a unit the code/file declaration disagrees with.
        """
        declared = self._experiments.get(flag_key)
        tag_units = self._tag_units(tags) if self.read_tags else []
        if len(set(tag_units)) > 1:
            return Refusal(
                f"flag {flag_key!r} has conflicting unit tags: {', '.join(sorted(set(tag_units)))}",
                "unit_conflict",
            )
        tag_unit = tag_units[0] if tag_units else None
        if declared is not None:
            if tag_unit is not None and tag_unit != declared.unit:
                return Refusal(
                    f"flag {flag_key!r}: {self._sources[flag_key]} declares unit "
                    f"{declared.unit!r} but its FeatBit tag says {tag_unit!r}; fix one of them "
                    "(the experiment is refused until they agree)",
                    "unit_conflict",
                )
            return Declaration(declared, self.units[declared.unit], self._sources[flag_key])
        if tag_unit is None:
            return None
        unit = self.units.get(tag_unit)
        if unit is None:
            return Refusal(
                f"flag {flag_key!r} is tagged with unknown unit {tag_unit!r}", "unit_conflict"
            )
        experiment = Experiment(flag_key, tag_unit)
        refusal = experiment.refusal()
        if refusal is not None:
            return Refusal(refusal, "request_unit_refused")
        return Declaration(experiment, unit, "featbit tag")

    @staticmethod
    def _tag_units(tags: Sequence[str]) -> list[str]:
        return [
            tag[len(UNIT_TAG_PREFIX) :].strip()
            for tag in tags
            if isinstance(tag, str) and tag.startswith(UNIT_TAG_PREFIX)
        ]
