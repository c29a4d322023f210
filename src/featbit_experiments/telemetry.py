"""OpenTelemetry: a ``feature_flag.evaluation`` event on the current span for every flag
evaluation, and an ``experiment.guardrail`` event for every guardrail.

Only ``opentelemetry-api`` is imported. With no SDK configured the current span is the
non-recording invalid span, and each evaluation costs one context lookup and one
``is_recording()`` call: attributes are built only for a span that records them.

The provider calls :meth:`EvaluationTelemetry.record` from its resolver rather than through an
OpenFeature hook, because openfeature-sdk 0.10 spends several microseconds per evaluation on
each registered hook (hook contexts, three dispatch passes) even when the hook does nothing.
The class is still a :class:`~openfeature.hook.Hook`, for applications that also want the
evaluations the SDK refuses before reaching the provider (a provider not yet READY): register
it with ``api.add_hooks`` and turn the provider's ``telemetry`` off, or events are doubled.

Evaluation events follow the feature-flag semantic conventions (v1.40+ names, lowercase
``feature_flag.result.reason`` and ``error.type``); the experiment key, variant, unit and unit ID
go under ``experiment.*``. Errors are recorded too (``error.type``, ``feature_flag.error.message``),
so a missing unit ID shows on the span where it happened. IDs arrive already protected:
``feature_flag.context.id`` comes from the provider's flag metadata, which applies the privacy
setting, and guardrail records pass the event fanout's privacy first; the targeting key of an
ordinary flag is protected here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeAlias

from openfeature.evaluation_context import EvaluationContext
from openfeature.flag_evaluation import FlagEvaluationDetails, FlagResolutionDetails, FlagValueType
from openfeature.hook import Hook, HookContext, HookHints
from opentelemetry import trace

from . import event_schema as schema
from . import metadata_keys as meta
from . import telemetry_names as names
from .assignment import Assignment
from .privacy import Privacy, unit_id_from_context_id
from .units import STANDARD_UNITS, Unit

logger = logging.getLogger("featbit_experiments")

_SCALARS = (bool, int, float, str)

#: Guardrail record fields and the span event attributes they become.
_GUARDRAIL_FIELDS: Mapping[str, str] = {
    schema.GUARDRAIL_NAME: names.GUARDRAIL_NAME,
    schema.MESSAGE: names.GUARDRAIL_MESSAGE,
    schema.FLAG_KEY: names.FEATURE_FLAG_KEY,
    schema.EXPERIMENT_KEY: names.EXPERIMENT_KEY,
    schema.RUN_ID: names.EXPERIMENT_RUN_ID,
    schema.ASSIGNMENT_UNIT: names.EXPERIMENT_UNIT,
    schema.UNIT_ID: names.EXPERIMENT_UNIT_ID,
    schema.METRIC: names.EXPERIMENT_METRIC,
    schema.METRIC_UNIT: names.EXPERIMENT_METRIC_UNIT,
}
_SKIPPED_GUARDRAIL_FIELDS = frozenset({schema.EVENT, schema.TIMESTAMP})


Details: TypeAlias = FlagResolutionDetails[Any] | FlagEvaluationDetails[Any]

#: Attribute sets remembered per distinct (flag, reason, variant, version, experiment) result;
#: past this many the memory starts over.
ATTRIBUTE_SETS_REMEMBERED = 4_096


class EvaluationTelemetry(Hook):
    """Adds ``feature_flag.evaluation`` to the current span for each evaluation.

    Args:
        provider_name: ``feature_flag.provider.name``.
        privacy: Protects the targeting key of ordinary flags (experiment IDs come protected
            in the flag metadata).
    """

    def __init__(self, provider_name: str, privacy: Privacy | None = None) -> None:
        self._provider_name = provider_name
        self._privacy = privacy or Privacy()
        #: The attributes every evaluation with one successful result shares, by that result.
        self._shared: dict[tuple[Any, ...], dict[str, Any]] = {}

    def record(self, flag_key: str, details: Details, context: EvaluationContext) -> None:
        """Add the event for one evaluation to the current span, if it records (the
        resolver's evaluation listener). Never raises."""
        span = trace.get_current_span()
        if not span.is_recording():
            return
        try:
            attributes = self._attributes_of_result(flag_key, details, context.targeting_key)
            span.add_event(names.FEATURE_FLAG_EVALUATION_EVENT, attributes)
        except Exception:  # telemetry must never change an evaluation's outcome
            logger.exception("could not record the evaluation of %r", flag_key)

    def _attributes_of_result(
        self, flag_key: str, details: Details, targeting_key: str | None
    ) -> dict[str, Any]:
        """:meth:`attributes`, with what one successful result shares with every evaluation
        that has it (all but the unit's ID) built once and copied."""
        if details.error_code is not None or details.variant is None:
            return self.attributes(flag_key, details, targeting_key)
        metadata = details.flag_metadata
        experiment_key = metadata.get(meta.EXPERIMENT_KEY)
        unit = metadata.get(meta.ASSIGNMENT_UNIT)
        result = (
            flag_key,
            details.reason,
            details.variant,
            metadata.get(meta.FLAG_VERSION),
            experiment_key,
            unit,
            metadata.get(meta.RUN_ID),
        )
        shared = self._shared.get(result)
        if shared is None:
            if len(self._shared) >= ATTRIBUTE_SETS_REMEMBERED:
                self._shared.clear()
            shared = self._shared[result] = self.attributes(flag_key, details)
            shared.pop(names.FEATURE_FLAG_CONTEXT_ID, None)
            shared.pop(names.EXPERIMENT_UNIT_ID, None)
        attributes = dict(shared)
        if experiment_key is None:
            self._add_targeting_key(attributes, targeting_key)
            return attributes
        _add_unit_ids(attributes, metadata.get(meta.CONTEXT_ID), str(unit or ""))
        return attributes

    def finally_after(
        self,
        hook_context: HookContext,
        details: FlagEvaluationDetails[FlagValueType],
        hints: HookHints,
    ) -> None:
        self.record(details.flag_key, details, hook_context.evaluation_context)

    def attributes(
        self, flag_key: str, details: Details, targeting_key: str | None = None
    ) -> dict[str, Any]:
        """The event attributes for one evaluation's details."""
        attributes: dict[str, Any] = {
            names.FEATURE_FLAG_KEY: flag_key,
            names.FEATURE_FLAG_PROVIDER_NAME: self._provider_name,
            names.FEATURE_FLAG_RESULT_REASON: str(details.reason or "unknown").lower(),
        }
        variant = details.variant
        if variant is not None:
            attributes[names.FEATURE_FLAG_RESULT_VARIANT] = variant
        elif isinstance(details.value, _SCALARS):  # required when there is no variant
            attributes[names.FEATURE_FLAG_RESULT_VALUE] = details.value
        if details.error_code is not None:
            attributes[names.ERROR_TYPE] = str(details.error_code).lower()
            if details.error_message:
                attributes[names.FEATURE_FLAG_ERROR_MESSAGE] = details.error_message
        metadata = details.flag_metadata
        version = metadata.get(meta.FLAG_VERSION)
        if version is not None:
            attributes[names.FEATURE_FLAG_VERSION] = str(version)
        experiment_key = metadata.get(meta.EXPERIMENT_KEY)
        if experiment_key is None:
            self._add_targeting_key(attributes, targeting_key)
            return attributes
        unit = str(metadata.get(meta.ASSIGNMENT_UNIT, ""))
        attributes[names.EXPERIMENT_KEY] = experiment_key
        attributes[names.EXPERIMENT_UNIT] = unit
        run_id = metadata.get(meta.RUN_ID)
        if run_id:
            attributes[names.EXPERIMENT_RUN_ID] = run_id
        if variant is not None:
            attributes[names.EXPERIMENT_VARIANT] = variant
        _add_unit_ids(attributes, metadata.get(meta.CONTEXT_ID), unit)
        return attributes

    def _add_targeting_key(self, attributes: dict[str, Any], targeting_key: str | None) -> None:
        """An ordinary flag's context ID: the targeting key, as privacy lets it leave."""
        if targeting_key:
            context_id = self._privacy.protect(targeting_key)
            if context_id is not None:
                attributes[names.FEATURE_FLAG_CONTEXT_ID] = context_id


def _add_unit_ids(attributes: dict[str, Any], unit_context_id: object, unit: str) -> None:
    """An experiment's context ID (already protected by the resolver) and the unit ID in it."""
    if isinstance(unit_context_id, str):
        attributes[names.FEATURE_FLAG_CONTEXT_ID] = unit_context_id
        unit_id = unit_id_from_context_id(unit_context_id, unit)
        if unit_id is not None:
            attributes[names.EXPERIMENT_UNIT_ID] = unit_id


class GuardrailSpanEvents:
    """An event sink that adds each guardrail record to the current span as an
    ``experiment.guardrail`` event; other records (exposures, outcomes) are ignored.

    Args:
        units: The units whose ID fields become ``experiment.unit_ids.<unit>`` attributes.
    """

    def __init__(self, units: Iterable[Unit] = STANDARD_UNITS) -> None:
        self._id_attributes = {unit.attribute: names.UNIT_ID_PREFIX + unit.name for unit in units}

    def emit(self, event: Mapping[str, Any]) -> None:
        if event.get(schema.EVENT) != schema.GUARDRAIL:
            return
        span = trace.get_current_span()
        if not span.is_recording():
            return
        span.add_event(names.GUARDRAIL_EVENT, self.attributes(event))

    def attributes(self, event: Mapping[str, Any]) -> dict[str, Any]:
        """Span event attributes for one guardrail record."""
        attributes: dict[str, Any] = {}
        for field, value in event.items():
            if field in _SKIPPED_GUARDRAIL_FIELDS or not isinstance(value, _SCALARS):
                continue
            if field == schema.ERROR_CODE:
                attributes[names.ERROR_TYPE] = str(value).lower()
            elif field in _GUARDRAIL_FIELDS:
                attributes[_GUARDRAIL_FIELDS[field]] = value
            elif field in self._id_attributes:
                attributes[self._id_attributes[field]] = value
            else:
                attributes[names.GUARDRAIL_ATTRIBUTE_PREFIX + field] = value
        return attributes


def experiment_attributes(
    assignments: Iterable[Assignment],
    protect: Callable[[str], str | None] | None = None,
    provider_name: str | None = None,
) -> dict[str, Any]:
    """Span attributes for the experiments evaluated under one span (a request, a turn).

    Parallel arrays ``experiment.keys`` / ``.variants`` / ``.units`` list each distinct
    (experiment, variant, unit) once, so a unit that switched variants shows both. When exactly
    one is present the scalar ``experiment.*`` attributes are set too, with the unit ID passed
    through ``protect`` (the privacy setting; None leaves the ID out), and so are the
    feature-flag semantic-convention attributes of that evaluation (``feature_flag.key``,
    ``.result.variant``, ``.version``, ``.context.id``, and ``.provider.name`` when given).
    """
    distinct: dict[tuple[str, str, str], Assignment] = {}
    for assignment in assignments:
        distinct.setdefault(
            (assignment.experiment_key, assignment.variant, assignment.unit), assignment
        )
    if not distinct:
        return {}
    attributes: dict[str, Any] = {
        names.EXPERIMENT_KEYS: [key for key, _, _ in distinct],
        names.EXPERIMENT_VARIANTS: [variant for _, variant, _ in distinct],
        names.EXPERIMENT_UNITS: [unit for _, _, unit in distinct],
    }
    if len(distinct) == 1:
        [only] = distinct.values()
        attributes[names.EXPERIMENT_KEY] = only.experiment_key
        attributes[names.EXPERIMENT_VARIANT] = only.variant
        attributes[names.EXPERIMENT_UNIT] = only.unit
        if only.experiment.run_id:
            attributes[names.EXPERIMENT_RUN_ID] = only.experiment.run_id
        unit_id = only.unit_key.value if protect is None else protect(only.unit_key.value)
        if unit_id is not None:
            attributes[names.EXPERIMENT_UNIT_ID] = unit_id
            attributes[names.FEATURE_FLAG_CONTEXT_ID] = f"{only.unit}:{unit_id}"
        attributes[names.FEATURE_FLAG_KEY] = only.flag_key
        attributes[names.FEATURE_FLAG_RESULT_VARIANT] = only.variant
        attributes[names.FEATURE_FLAG_VERSION] = str(only.flag_version)
        if provider_name:
            attributes[names.FEATURE_FLAG_PROVIDER_NAME] = provider_name
    return attributes
