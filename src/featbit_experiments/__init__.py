"""featbit-experiments: an OpenFeature provider for FeatBit that enforces a randomization-unit
policy, so assignment, exposures, outcomes and rollback all agree on the unit being tested."""

from .assignment import Assignment
from .errors import BootstrapError, ConfigurationError, PolicyError
from .guardrails import EventSink, Guardrail, InMemorySink, LoggingSink
from .policy import Experiment, Metric, RollbackMode, UnitPolicy
from .policy_file import load_policy
from .provider import PROVIDER_NAME, FeatBitProvider
from .units import STANDARD_UNITS, StandardUnit, Unit, UnitKey

__all__ = [
    "PROVIDER_NAME",
    "STANDARD_UNITS",
    "Assignment",
    "BootstrapError",
    "ConfigurationError",
    "EventSink",
    "Experiment",
    "FeatBitProvider",
    "Guardrail",
    "InMemorySink",
    "LoggingSink",
    "Metric",
    "PolicyError",
    "RollbackMode",
    "StandardUnit",
    "Unit",
    "UnitKey",
    "UnitPolicy",
    "load_policy",
]
