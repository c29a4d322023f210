"""featbit-experiments: an OpenFeature provider for FeatBit that enforces a randomization-unit
policy, so assignment, exposures, outcomes and rollback all agree on the unit being tested."""

from .assignment import Assignment
from .continuity import AssignmentStore, InMemoryStore, RedisStore
from .errors import BootstrapError, ConfigurationError, PolicyError
from .exposures import ExposureRecorder, RecordedVariant, RedisSeenKeys, SeenKeys
from .flag_builder import Condition, Flag, Rule, bootstrap_document, when
from .flag_validation import FlagDataError, validate_flag
from .guardrails import EventSink, Guardrail, InMemorySink, LoggingSink, SinkFailed
from .insights import BoundedEventProcessor, InsightCounts
from .outcomes import OutcomeRecorder
from .policy import Experiment, Metric, MetricDirection, RollbackMode, UnitPolicy
from .policy_file import load_policy
from .privacy import Privacy, PrivacyMode
from .provider import PROVIDER_NAME, FeatBitProvider
from .sinks import JsonLinesSink, SinkCounts
from .telemetry import EvaluationTelemetry, GuardrailSpanEvents
from .units import STANDARD_UNITS, StandardUnit, Unit, UnitKey

__all__ = [
    "PROVIDER_NAME",
    "STANDARD_UNITS",
    "Assignment",
    "AssignmentStore",
    "BootstrapError",
    "BoundedEventProcessor",
    "Condition",
    "ConfigurationError",
    "EvaluationTelemetry",
    "EventSink",
    "Experiment",
    "ExposureRecorder",
    "FeatBitProvider",
    "Flag",
    "FlagDataError",
    "Guardrail",
    "GuardrailSpanEvents",
    "InMemorySink",
    "InMemoryStore",
    "InsightCounts",
    "JsonLinesSink",
    "LoggingSink",
    "Metric",
    "MetricDirection",
    "OutcomeRecorder",
    "PolicyError",
    "Privacy",
    "PrivacyMode",
    "RecordedVariant",
    "RedisSeenKeys",
    "RedisStore",
    "RollbackMode",
    "Rule",
    "SeenKeys",
    "SinkCounts",
    "SinkFailed",
    "StandardUnit",
    "Unit",
    "UnitKey",
    "UnitPolicy",
    "bootstrap_document",
    "load_policy",
    "validate_flag",
    "when",
]
