"""The preflight: before an experiment starts, check that its unit, bucketing, metrics,
rollback and production continuity agree, and say how long it will take to learn anything.

``preflight(policy, flags, plan=..., events=..., redis=...)`` reads the inputs and returns a
:class:`PreflightReport`; :func:`check` runs the same checks on inputs already in memory (the
provider's start-up check uses it). ``featbit-experiments preflight`` is the command line.
Every line of a report names the :class:`Rule` that produced it.
"""

from .checks import check
from .flag_data import flags_from_bootstrap, flags_from_featbit, flags_of_client
from .inputs import preflight
from .model import (
    DurationPlan,
    ExperimentReport,
    Finding,
    HorizonRow,
    PreflightReport,
    Rule,
    Severity,
)
from .pilot import PilotLog, PilotStats, read_pilot_log
from .plan import Deployment, ExperimentPlan, PreflightPlan, load_plan

__all__ = [
    "Deployment",
    "DurationPlan",
    "ExperimentPlan",
    "ExperimentReport",
    "Finding",
    "HorizonRow",
    "PilotLog",
    "PilotStats",
    "PreflightPlan",
    "PreflightReport",
    "Rule",
    "Severity",
    "check",
    "flags_from_bootstrap",
    "flags_from_featbit",
    "flags_of_client",
    "load_plan",
    "preflight",
    "read_pilot_log",
]
