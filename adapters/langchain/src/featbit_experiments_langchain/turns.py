"""Turns: the root run of a chain or agent and every run nested under it.

A turn starts at a run with no parent (or, when the handler is attached below the root, at the
first run whose parent it has not seen) and ends with that run. Every nested chain, model,
tool and retriever run belongs to it. State is kept per ``run_id`` because LangChain passes
metadata only to the ``*_start`` callbacks. Callbacks of one turn may arrive on several threads
(executor threads, ``RunnableParallel`` branches): the run map is only touched by single,
atomic dict operations, and each turn's own state sits behind the turn's lock.

The tracker never raises into the chain: LangChain logs and swallows callback errors, and the
outcome recorder catches its own.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from itertools import repeat
from typing import TYPE_CHECKING, Any
from uuid import UUID

from langchain_core.outputs import LLMResult
from opentelemetry.trace import Span

from featbit_experiments.assignment import Assignment

from .spans import TurnSpans
from .turn_context import TurnContext, TurnContextReader

if TYPE_CHECKING:
    from .outcomes import TurnOutcomes


class Turn:
    """What is known about one turn while it runs.

    Attributes:
        run_id: The root run's ID.
        name: The root run's name.
        context: The turn's unit IDs (metadata, plus what a router read from ``configurable``).
        span: The turn's span.
        error: The exception the root run ended with, if any.
        input_tokens, output_tokens: Token usage summed over the turn's model calls.
        saw_usage: Whether any model call reported usage.
    """

    def __init__(self, run_id: UUID, name: str, context: TurnContext, span: Span) -> None:
        self.run_id = run_id
        self.name = name
        self.context = context
        self.span = span
        self.started = time.perf_counter()
        self.ended: float | None = None
        self.error: BaseException | None = None
        self.input_tokens = 0
        self.output_tokens = 0
        self.saw_usage = False
        self._assignments: list[Assignment] = []
        self._pins: dict[str, str] = {}
        self._runs: set[UUID] = {run_id}
        self._lock = threading.Lock()

    @property
    def assignments(self) -> tuple[Assignment, ...]:
        """Every experiment assignment made in the turn so far, in order."""
        with self._lock:
            return tuple(self._assignments)

    @property
    def latency_ms(self) -> float:
        end = self.ended if self.ended is not None else time.perf_counter()
        return (end - self.started) * 1000.0

    def add_assignments(self, assignments: Iterable[Assignment]) -> None:
        with self._lock:
            self._assignments.extend(assignments)

    def pin(self, flag_key: str, branch: str) -> str:
        """Keep ``branch`` for ``flag_key`` for the rest of the turn; returns the branch in
        force (an earlier pin wins, so retries and fallbacks keep the first choice)."""
        with self._lock:
            return self._pins.setdefault(flag_key, branch)

    def pinned(self, flag_key: str) -> str | None:
        with self._lock:
            return self._pins.get(flag_key)

    def add_usage(self, usage: tuple[int, int]) -> None:
        with self._lock:
            self.saw_usage = True
            self.input_tokens += usage[0]
            self.output_tokens += usage[1]

    def _add_run(self, run_id: UUID) -> None:
        with self._lock:
            self._runs.add(run_id)

    def _take_runs(self) -> list[UUID]:
        with self._lock:
            runs, self._runs = list(self._runs), set()
            return runs


@dataclass
class _Run:
    turn: Turn
    #: The run's own span (model, tool, or the turn span for a root chain), if any.
    span: Span | None
    #: The span this run's children are parented to.
    anchor: Span


class TurnTracker:
    """Maps runs to turns and drives their spans and outcomes; shared by both handlers.

    Args:
        reader: Reads unit IDs from run metadata.
        spans: Creates the spans.
        outcomes: Records outcomes at the end of each turn, or None.
    """

    def __init__(
        self,
        reader: TurnContextReader,
        spans: TurnSpans,
        outcomes: TurnOutcomes | None = None,
    ) -> None:
        self.reader = reader
        self.spans = spans
        self.outcomes = outcomes
        # Each access is one dict operation, atomic on its own: no lock is needed.
        self._runs: dict[UUID, _Run] = {}

    def turn_of(self, run_id: UUID) -> Turn | None:
        """The turn a run (started and not yet ended) belongs to."""
        run = self._runs.get(run_id)
        return run.turn if run is not None else None

    @property
    def active_runs(self) -> int:
        """How many runs are being tracked (all of them end with their turn)."""
        return len(self._runs)

    def absorb_context(self, turn: Turn, context: TurnContext) -> None:
        """Add IDs a runnable read from its config (``configurable``) that the callback could
        not see in metadata; IDs already known win."""
        if context is not turn.context and not context.is_empty:
            turn.context = self.reader.merge(turn.context, context)

    # -- starts ---------------------------------------------------------------------------

    def start_run(
        self,
        run_id: UUID,
        parent_run_id: UUID | None,
        metadata: Mapping[str, Any] | None,
        name: str,
    ) -> None:
        """A chain or retriever run: a new turn when it has no known parent."""
        parent = self._parent(parent_run_id)
        if parent is None:
            turn = self._new_turn(run_id, metadata, name)
            self._put(run_id, _Run(turn, turn.span, turn.span))
        else:
            parent.turn._add_run(run_id)
            self._put(run_id, _Run(parent.turn, None, parent.anchor))

    def start_model(
        self,
        run_id: UUID,
        parent_run_id: UUID | None,
        metadata: Mapping[str, Any] | None,
        name: str,
        operation: str,
        invocation_params: Mapping[str, Any] | None,
    ) -> None:
        parent = self._parent(parent_run_id)
        if parent is None:
            turn = self._new_turn(run_id, metadata, name)
            anchor = turn.span
        else:
            turn, anchor = parent.turn, parent.anchor
            turn._add_run(run_id)
        span = self.spans.start_model(anchor, operation, metadata, invocation_params)
        self._put(run_id, _Run(turn, span, span))

    def start_tool(
        self,
        run_id: UUID,
        parent_run_id: UUID | None,
        metadata: Mapping[str, Any] | None,
        name: str,
        call_id: str | None,
    ) -> None:
        parent = self._parent(parent_run_id)
        if parent is None:
            turn = self._new_turn(run_id, metadata, name)
            anchor = turn.span
        else:
            turn, anchor = parent.turn, parent.anchor
            turn._add_run(run_id)
        span = self.spans.start_tool(anchor, name, call_id)
        self._put(run_id, _Run(turn, span, span))

    # -- ends -----------------------------------------------------------------------------

    def end_model(self, run_id: UUID, response: LLMResult) -> None:
        run = self._runs.get(run_id)
        if run is not None and run.span is not None:
            usage = self.spans.record_usage(run.span, response)
            if usage is not None:
                run.turn.add_usage(usage)
        self.end_run(run_id)

    def end_run(self, run_id: UUID, error: BaseException | None = None) -> None:
        """Any run's end; the root run's end ends its turn. A stream its consumer closed
        early (``GeneratorExit``) ends normally: stopping to read is not a failure."""
        if isinstance(error, GeneratorExit):
            error = None
        run = self._runs.pop(run_id, None)
        if run is None:
            return
        turn = run.turn
        if run.span is not None and run.span is not turn.span:
            self.spans.finish(run.span, turn.context, turn.assignments, error=error)
        if run_id == turn.run_id:
            self._end_turn(turn, error)

    # -- internals ------------------------------------------------------------------------

    def _parent(self, parent_run_id: UUID | None) -> _Run | None:
        return self._runs.get(parent_run_id) if parent_run_id is not None else None

    def _put(self, run_id: UUID, run: _Run) -> None:
        self._runs[run_id] = run

    def _new_turn(self, run_id: UUID, metadata: Mapping[str, Any] | None, name: str) -> Turn:
        return Turn(run_id, name, self.reader.from_metadata(metadata), self.spans.start_turn(name))

    def _end_turn(self, turn: Turn, error: BaseException | None) -> None:
        turn.ended = time.perf_counter()
        turn.error = error
        leftovers = [
            run for run in map(self._runs.pop, turn._take_runs(), repeat(None)) if run is not None
        ]
        # Runs still open when their turn ends were abandoned (an async stream closed early
        # leaves its inner generators to the garbage collector): end their spans with it.
        for run in leftovers:
            if run.span is not None and run.span is not turn.span:
                self.spans.finish(run.span, turn.context, turn.assignments)
        self.spans.finish(turn.span, turn.context, turn.assignments, error=error, unit_ids=True)
        if self.outcomes is not None:
            self.outcomes.record(turn)
