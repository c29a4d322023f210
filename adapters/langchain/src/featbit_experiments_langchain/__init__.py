"""LangChain adapter for featbit-experiments: the randomization-unit context of each turn of a
chain or agent, a variant router, turn spans and end-of-turn outcomes.

- :class:`ExperimentCallbackHandler` / :class:`AsyncExperimentCallbackHandler` follow each turn
  (the root run and everything nested under it): its unit IDs, an OpenTelemetry span per turn,
  model call and tool call, and outcome metrics at the end.
- :func:`experiment_branch` runs the branch named by an experiment flag's variant, evaluated
  with the turn's unit IDs; :func:`with_turn_context` runs any runnable under them.
"""

from .callback import AsyncExperimentCallbackHandler, ExperimentCallbackHandler, TurnTracking
from .outcomes import TurnOutcomes
from .router import BRANCHES_METADATA_KEY, ExperimentBranch, experiment_branch
from .spans import INVOKE_AGENT, INVOKE_WORKFLOW, IdProtector, TurnSpans
from .turn import Turn
from .turn_context import DEFAULT_ID_KEYS, TurnContext, TurnContextReader
from .turn_scoped import TurnScoped, with_turn_context
from .turns import TurnTracker

__all__ = [
    "BRANCHES_METADATA_KEY",
    "DEFAULT_ID_KEYS",
    "INVOKE_AGENT",
    "INVOKE_WORKFLOW",
    "AsyncExperimentCallbackHandler",
    "ExperimentBranch",
    "ExperimentCallbackHandler",
    "IdProtector",
    "Turn",
    "TurnContext",
    "TurnContextReader",
    "TurnOutcomes",
    "TurnScoped",
    "TurnSpans",
    "TurnTracker",
    "TurnTracking",
    "experiment_branch",
    "with_turn_context",
]
