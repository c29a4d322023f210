"""Outcome events: each tracked outcome, keyed by its experiment's unit, with the variant that
unit was served, so it joins back to exactly one exposure.

An OpenFeature ``track()`` call reaches :class:`~featbit_experiments.tracking.OutcomeTracker`,
which sends FeatBit its metric and hands the :class:`~featbit_experiments.tracking.Outcome` to
:meth:`OutcomeRecorder.record`. Here the outcome becomes one record per experiment it belongs
to: keyed by that experiment's unit ID (taken from the other known IDs when the metric is
measured at another unit, which the tracker has already flagged as ``metric_unit_mismatch``),
carrying the variant its unit was served (looked up in this process's exposures, then in the
assignment ledger, so a unit assigned on another instance still joins), and keeping the tracked
value and attributes as given.

Each record also says which way its metric is better (``metricDirection``), so the audit reads
it from the log: from the policy's metric declaration, or from a ``metricDirection`` tracking
attribute. An invalid attribute or one that contradicts the policy is a guardrail, never an
exception, and the policy's declaration wins.
"""

from __future__ import annotations

from typing import Any, Protocol

from . import event_schema as schema
from .exposures import RecordedVariant
from .guardrails import EventFanout, Guardrail, utc_now
from .policy import Experiment, MetricDirection, UnitPolicy
from .tracking import Outcome


class VariantLookup(Protocol):
    """Where an outcome finds the variant its unit was served (the exposures this process
    recorded, then the assignment ledger, which knows units assigned by other instances)."""

    def variant_for(self, experiment: Experiment, unit_id: str) -> RecordedVariant | None: ...


class OutcomeRecorder:
    """Records outcomes (register :meth:`record` as an outcome listener).

    Args:
        events: Where outcome records go (privacy is applied there).
        policy: The unit policy (which attribute carries each unit's ID).
        variants: Where each unit's served variant is looked up.
    """

    def __init__(self, events: EventFanout, policy: UnitPolicy, variants: VariantLookup) -> None:
        self._events = events
        self._policy = policy
        self._variants = variants

    def record(self, outcome: Outcome) -> None:
        """Emit one record per experiment the outcome belongs to (one unattached record when
        it names none)."""
        if not outcome.experiments:
            records = [self._unattached(outcome)]
        else:
            records = [self._for_experiment(outcome, e) for e in outcome.experiments]
        direction = self._direction(outcome)
        for record in records:
            if direction is not None:
                record[schema.METRIC_DIRECTION] = direction.value
            self._events.emit(record)

    def _direction(self, outcome: Outcome) -> MetricDirection | None:
        """The metric's direction: the policy's declaration, else a valid tracking attribute."""
        metric = self._policy.metrics.get(outcome.name)
        declared = metric.direction if metric is not None else None
        if schema.METRIC_DIRECTION not in outcome.attributes:
            return declared
        given = outcome.attributes[schema.METRIC_DIRECTION]
        attributed = MetricDirection.parse(given)
        if attributed is None:
            self._events.guardrail(
                Guardrail.INVALID_METRIC_DIRECTION,
                f"outcome {outcome.name!r}: tracking attribute {schema.METRIC_DIRECTION}="
                f"{given!r} is neither {MetricDirection.HIGHER_IS_BETTER.value!r} nor "
                f"{MetricDirection.LOWER_IS_BETTER.value!r}; ignored",
                **self._guardrail_fields(outcome),
            )
            return declared
        if declared is not None and attributed is not declared:
            self._events.guardrail(
                Guardrail.METRIC_DIRECTION_CONFLICT,
                f"outcome {outcome.name!r}: tracking attribute says {attributed.value} but the "
                f"policy declares {declared.value}; the policy's direction is recorded",
                **self._guardrail_fields(outcome),
            )
            return declared
        return attributed

    @staticmethod
    def _guardrail_fields(outcome: Outcome) -> dict[str, Any]:
        fields: dict[str, Any] = {
            schema.METRIC: outcome.name,
            schema.METRIC_UNIT: outcome.unit_key.unit,
            **outcome.other_ids,
        }
        if len(outcome.experiments) == 1:
            experiment = outcome.experiments[0]
            fields[schema.EXPERIMENT_KEY] = experiment.experiment_key
            fields[schema.ASSIGNMENT_UNIT] = experiment.unit
        return fields

    def _for_experiment(self, outcome: Outcome, experiment: Experiment) -> dict[str, Any]:
        unit_id = self._unit_id(outcome, experiment)
        record = self._base(outcome)
        record[schema.EXPERIMENT_KEY] = experiment.experiment_key
        record[schema.RUN_ID] = experiment.run_id
        record[schema.FLAG_KEY] = experiment.flag_key
        record[schema.ASSIGNMENT_UNIT] = experiment.unit
        if unit_id is not None:
            record[schema.UNIT_ID] = unit_id
            served = self._variants.variant_for(experiment, unit_id)
            if served is not None:
                record[schema.VARIATION] = served.variant
                record[schema.VARIATION_ID] = served.variation_id
        return record

    def _unattached(self, outcome: Outcome) -> dict[str, Any]:
        record = self._base(outcome)
        record[schema.ASSIGNMENT_UNIT] = outcome.unit_key.unit
        record[schema.UNIT_ID] = outcome.unit_key.value
        return record

    def _base(self, outcome: Outcome) -> dict[str, Any]:
        record: dict[str, Any] = {
            schema.EVENT: schema.OUTCOME,
            schema.TIMESTAMP: utc_now(),
            schema.METRIC: outcome.name,
            schema.METRIC_UNIT: outcome.unit_key.unit,
            schema.VALUE: outcome.value,
        }
        record.update(outcome.other_ids)  # every known ID, the measured unit's included
        if outcome.attributes:
            record[schema.ATTRIBUTES] = dict(outcome.attributes)
        return record

    def _unit_id(self, outcome: Outcome, experiment: Experiment) -> str | None:
        if outcome.unit_key.unit == experiment.unit:
            return outcome.unit_key.value
        unit = self._policy.units.get(experiment.unit)
        return outcome.other_ids.get(unit.attribute) if unit is not None else None
