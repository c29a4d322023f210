"""What a router run sets up around the runnable it chose, and puts back afterwards.

:class:`TurnBinding` is opened where the chosen runnable runs (the caller's context for
``invoke``, LangChain's per-run context copy for streams): it collects the experiment
evaluations made inside (``featbit_experiments.scope``) for the turn and for any scope
outside (a web request's), merges the turn's IDs into OpenFeature's transaction context, and
makes the turn's span OpenTelemetry's current span. It never raises into the chain and never
leaves anything set in the caller's context.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from langchain_core.callbacks import BaseRunManager
from langchain_core.runnables import Runnable
from openfeature import api
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span

from featbit_experiments.assignment import Assignment
from featbit_experiments.scope import collect_assignments, record_assignment

from .callback import TurnTracking
from .turn import Turn
from .turn_context import TurnContext
from .turns import TurnTracker


@dataclass(frozen=True)
class Entered:
    """What a router run knows about its turn when it starts."""

    context: TurnContext
    turn: Turn | None
    tracker: TurnTracker | None
    #: The span the run's children are parented to (the turn span for chains).
    span: Span | None
    #: Whether the run is the turn's root run.
    is_root: bool


class TurnBinding:
    """One router run's assignment collection, transaction context and current span.

    Opened where the chosen runnable runs (the caller's context for ``invoke``, LangChain's
    per-run context copy for streams) and restored by :meth:`close`. A stream abandoned by
    its consumer is closed from another context, so :meth:`abandon` reports and restores
    nothing there.
    """

    def __init__(self, entered: Entered) -> None:
        self._turn = entered.turn
        self._reported = 0
        self._collecting = collect_assignments()
        self._collected: list[Assignment] = self._collecting.__enter__()
        self._previous = previous = api.get_transaction_context()
        context = entered.context
        if not context.is_empty:
            ours = context.evaluation_context
            if previous.attributes or previous.targeting_key:  # else merging copies ours
                ours = previous.merge(ours)
            api.set_transaction_context(ours)
        self._span_token = (
            otel_context.attach(trace.set_span_in_context(entered.span))
            if entered.span is not None
            else None
        )

    def report(self) -> None:
        """Hand the assignments collected since the last report to the turn."""
        if self._turn is not None and len(self._collected) > self._reported:
            self._turn.add_assignments(self._collected[self._reported :])
            self._reported = len(self._collected)

    def close(self) -> None:
        self.report()
        if self._span_token is not None:
            otel_context.detach(self._span_token)
        api.set_transaction_context(self._previous)
        self._collecting.__exit__(None, None, None)
        for assignment in self._collected:  # the scope outside (a web request's) sees them too
            record_assignment(assignment)

    def abandon(self) -> None:
        self.report()
        # Closed from the consumer's context, where none of ours is set: the reset fails
        # there and there is nothing to undo; the transaction context is left alone.
        with contextlib.suppress(ValueError):
            self._collecting.__exit__(None, None, None)

    def __enter__(self) -> TurnBinding:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def name_turn(entered: Entered, runnable: Runnable[Any, Any]) -> None:
    """At the root of a turn, the turn is the agent or graph the router chose."""
    if entered.is_root and entered.tracker is not None and entered.turn is not None:
        entered.tracker.name_turn(entered.turn, runnable.get_name())


def tracker_of(run_manager: BaseRunManager) -> TurnTracker | None:
    for handler in run_manager.handlers:
        if isinstance(handler, TurnTracking):
            return handler.tracker
    return None


async def one(value: Any) -> AsyncIterator[Any]:
    yield value


@contextlib.asynccontextmanager
async def closing(chunks: AsyncIterator[Any]) -> AsyncIterator[AsyncIterator[Any]]:
    """Close ``chunks`` (when it can be closed) as soon as its reader stops."""
    try:
        yield chunks
    finally:
        aclose = getattr(chunks, "aclose", None)
        if aclose is not None:
            await aclose()
