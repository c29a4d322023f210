"""``fallback_used`` for a fallback that ran inside a turn: which runnable failed, which ran
instead, and the variant of each experiment the turn keeps.

LangChain's ``Runnable.with_fallbacks`` runs its runnables as children of one run named
``RunnableWithFallbacks``; a child that fails followed by the next child is a fallback (a
retry is a child of ``RunnableRetry`` instead, and is not one). This module only words and
records the guardrail; :class:`~.turns.TurnTracker` spots the pattern.
"""

from __future__ import annotations

from featbit_experiments.guardrails import EventFanout, Guardrail

from .turn import Turn

#: The run name of ``Runnable.with_fallbacks``; its children after a failed one are fallbacks.
FALLBACKS_RUN_NAME = "RunnableWithFallbacks"


def record_fallback(
    events: EventFanout, turn: Turn, failed: str, error: BaseException, fallback: str
) -> None:
    """One ``fallback_used`` per experiment evaluated in the turn so far (one without an
    experiment when there is none)."""
    error_type = type(error).__qualname__
    message = f"{failed!r} failed ({error_type}); fallback {fallback!r} ran instead"
    common = {"failedRunnable": failed, "fallbackRunnable": fallback, "errorType": error_type}
    kept = {assignment.flag_key: assignment for assignment in turn.assignments}
    if not kept:
        events.guardrail(Guardrail.FALLBACK_USED, message, **common)
    for assignment in kept.values():
        events.guardrail(
            Guardrail.FALLBACK_USED,
            f"{message}; the turn keeps variant {assignment.variant!r} of "
            f"{assignment.flag_key!r}",
            flagKey=assignment.flag_key,
            experimentKey=assignment.experiment_key,
            variation=assignment.variant,
            assignmentUnit=assignment.unit,
            unitId=assignment.unit_key.value,
            **common,
        )
