"""Outcome tracking: an OpenFeature ``track()`` becomes a FeatBit metric keyed by the unit the
outcome is measured at, and a metric measured at another unit than its experiment is flagged
(or refused in strict mode) instead of silently failing to join. A value FeatBit cannot store
(not a finite float32) is refused with an ``invalid_metric_value`` guardrail before any event
is made, since one such value would fail every insight batch it travels in.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from openfeature.evaluation_context import EvaluationContext
from openfeature.track import TrackingEventDetails

from .assignment import Assignment
from .featbit_user import featbit_user
from .guardrails import EventFanout, Guardrail
from .insight_wire import metric_value_problem
from .policy import Experiment, UnitPolicy
from .units import UnitKey, UnitKeyProblem

logger = logging.getLogger("featbit_experiments")

#: Tracking attribute naming the experiment an outcome belongs to.
EXPERIMENT_KEY_ATTRIBUTE = "experimentKey"


@dataclass(frozen=True)
class Outcome:
    """One outcome as sent to FeatBit: the metric, the unit key it is keyed by, its value."""

    name: str
    unit_key: UnitKey
    value: float
    experiments: tuple[Experiment, ...]
    attributes: Mapping[str, Any] = field(default_factory=dict)
    other_ids: Mapping[str, str] = field(default_factory=dict)


OutcomeListener = Callable[[Outcome], None]


class OutcomeTracker:
    """Sends outcomes to FeatBit under the unit policy.

    Args:
        client: The FeatBit client.
        policy: The unit key policy (metric units, strictness).
        events: Where guardrails go.
        outcome_listeners: Given each outcome sent (the provider's outcome recorder).
    """

    def __init__(
        self,
        client: Any,
        policy: UnitPolicy,
        events: EventFanout,
        *,
        outcome_listeners: Iterable[OutcomeListener] = (),
    ) -> None:
        self._client = client
        self._policy = policy
        self._events = events
        self.outcome_listeners: list[OutcomeListener] = list(outcome_listeners)
        #: Experiments this process has assigned, by key: an experiment declared only by a
        #: FeatBit tag is not in the policy, yet its outcomes must be keyed by its unit.
        self._assigned: dict[str, Experiment] = {}

    def note_assignment(self, assignment: Assignment) -> None:
        """Remember an assigned experiment (as an assignment listener)."""
        self.note_experiment(assignment.experiment)

    def note_experiment(self, experiment: Experiment) -> None:
        """Remember an experiment a unit was assigned in (told by the resolver)."""
        if experiment.experiment_key not in self._assigned:
            self._assigned.setdefault(experiment.experiment_key, experiment)

    def _experiment(self, experiment_key: str) -> Experiment | None:
        return self._policy.experiment_by_key(experiment_key) or self._assigned.get(experiment_key)

    def track(
        self,
        name: str,
        context: EvaluationContext | None,
        details: TrackingEventDetails | None,
    ) -> Outcome | None:
        """Send one outcome; returns what was sent, or None when it was refused."""
        try:
            return self._track(name, context or EvaluationContext(), details)
        except Exception:
            logger.exception("unexpected error tracking %r", name)
            return None

    def _track(
        self, name: str, context: EvaluationContext, details: TrackingEventDetails | None
    ) -> Outcome | None:
        attributes: dict[str, Any] = dict(details.attributes or {}) if details else {}
        value = _metric_value(details)
        if isinstance(value, str):
            self._events.guardrail(
                Guardrail.INVALID_METRIC_VALUE,
                f"outcome {name!r} not sent: {value}",
                metric=name,
                value=str(details.value if details else None),
                **self._policy.units.known_ids(context),
            )
            return None
        experiments = self._experiments_for(name, attributes)
        metric = self._policy.metrics.get(name)
        unit_name = (
            metric.unit
            if metric
            else experiments[0].unit
            if experiments
            else self._policy.units.targeting_key_unit or "user"
        )
        mismatched = [e for e in experiments if e.unit != unit_name]
        ids = self._policy.units.known_ids(context) if mismatched else {}
        for experiment in mismatched:
            self._events.guardrail(
                Guardrail.METRIC_UNIT_MISMATCH,
                f"metric {name!r} is measured per {unit_name} but experiment "
                f"{experiment.experiment_key!r} randomizes by {experiment.unit}"
                + ("; refused (strict metrics)" if self._policy.strict_metrics else ""),
                metric=name,
                metricUnit=unit_name,
                experimentKey=experiment.experiment_key,
                assignmentUnit=experiment.unit,
                unitId=ids.get(self._policy.units[experiment.unit].attribute),
                **ids,
            )
        if mismatched and self._policy.strict_metrics:
            return None
        unit_key = self._policy.units.read(self._policy.units[unit_name], context)
        if isinstance(unit_key, UnitKeyProblem):
            self._events.guardrail(
                unit_key.guardrail,
                f"outcome {name!r} not sent: {unit_key.message}",
                metric=name,
                metricUnit=unit_name,
                errorCode=unit_key.error_code.value,
                **self._policy.units.known_ids(context),
            )
            return None
        other_ids = self._policy.units.known_ids(context)
        user = featbit_user(
            unit_key.value,
            context.attributes,
            extra={**other_ids, "assignmentUnit": unit_name},
        )
        self._client.track_metric(user, name, value)
        outcome = Outcome(name, unit_key, value, tuple(experiments), attributes, other_ids)
        for listener in self.outcome_listeners:
            try:
                listener(outcome)
            except Exception:
                logger.exception("outcome listener %r failed", listener)
        return outcome

    def _experiments_for(self, name: str, attributes: Mapping[str, Any]) -> list[Experiment]:
        named = attributes.get(EXPERIMENT_KEY_ATTRIBUTE)
        if isinstance(named, str):
            experiment = self._experiment(named)
            return [experiment] if experiment else []
        metric = self._policy.metrics.get(name)
        if metric is None:
            return []
        found = (self._experiment(key) for key in metric.experiments)
        return [e for e in found if e is not None]


def _metric_value(details: TrackingEventDetails | None) -> float | str:
    """The outcome's value (1.0 when none is given), or why FeatBit cannot store it."""
    raw = details.value if details is not None and details.value is not None else 1.0
    if not isinstance(raw, (int, float)):
        return f"value {raw!r} is not a number"
    try:
        value = float(raw)
    except OverflowError:  # an int beyond a double
        return f"value {raw!r} is beyond FeatBit's float32 range"
    problem = metric_value_problem(value)
    return value if problem is None else f"value {problem}"
