"""Turns: the root run of a chain or agent and every run nested under it.

A turn starts at a run with no parent (or, when the handler is attached below the root, at the
first run whose parent it has not seen) and ends with that run. Every nested chain, model,
tool and retriever run belongs to it. State is kept per ``run_id`` because LangChain passes
metadata only to the ``*_start`` callbacks. Callbacks of one turn may arrive on several threads
(executor threads, ``RunnableParallel`` branches): the run map is only touched by single,
atomic dict operations, and each turn's own state sits behind the turn's lock (``turn``).

A run started with no parent (or a parent further up) while LangChain's ambient config names a
run of a turn as the parent is adopted by that run: ``with_fallbacks`` hands its runnables its
own incoming config instead of its child config (langchain-ai/langchain#36072), and at the root
that made every fallback a turn of its own. A runnable that fails inside a
``RunnableWithFallbacks`` followed by the next one is a ``fallback_used`` guardrail naming both
and the variants the turn keeps.

The tracker never raises into the chain: LangChain logs and swallows callback errors, and the
outcome recorder catches its own.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from itertools import repeat
from typing import TYPE_CHECKING, Any
from uuid import UUID

from langchain_core.outputs import LLMResult
from langchain_core.runnables.config import var_child_runnable_config
from opentelemetry.trace import Span
from opentelemetry.util.types import AttributeValue

from featbit_experiments.provider import FeatBitProvider

from .fallbacks import FALLBACKS_RUN_NAME, record_fallback
from .provider_link import ProviderLink
from .spans import IdProtector, TurnSpans
from .turn import Pin, Turn
from .turn_context import TurnContext, TurnContextReader

if TYPE_CHECKING:
    from .outcomes import TurnOutcomes

__all__ = ["Pin", "Turn", "TurnTracker"]


@dataclass(slots=True)
class _Run:
    turn: Turn
    #: The run's own span (model, tool, or the turn span for a root chain), if any.
    span: Span | None
    #: The span this run's children are parented to.
    anchor: Span
    name: str = ""
    parent_id: UUID | None = None
    #: The name and error of the last child that failed (for a fallbacks run).
    failed_child: tuple[str, BaseException] | None = None


class TurnTracker:
    """Maps runs to turns and drives their spans and outcomes; shared by both handlers.

    Args:
        reader: Reads unit IDs from run metadata.
        spans: Creates the spans.
        outcomes: Records outcomes at the end of each turn, or None.
        provider: Where guardrails go and, unless ``privacy`` is given, whose privacy
            setting applies to spans; looked up through OpenFeature by default.
        privacy: How unit IDs appear on spans, instead of the provider's setting.
    """

    def __init__(
        self,
        reader: TurnContextReader,
        spans: TurnSpans,
        outcomes: TurnOutcomes | None = None,
        *,
        provider: ProviderLink | None = None,
        privacy: IdProtector | None = None,
    ) -> None:
        self.reader = reader
        self.spans = spans
        self.outcomes = outcomes
        self.provider = provider or ProviderLink(
            client=outcomes.client if outcomes is not None else None
        )
        self._privacy = privacy
        # Each access is one dict operation, atomic on its own: no lock is needed. Keyed by
        # the run ID's integer: hashing and comparing ints costs no Python call, UUIDs do.
        self._runs: dict[int, _Run] = {}

    def turn_of(self, run_id: UUID) -> Turn | None:
        """The turn a run (started and not yet ended) belongs to."""
        run = self._runs.get(run_id.int)
        return run.turn if run is not None else None

    @property
    def active_runs(self) -> int:
        """How many runs are being tracked (all of them end with their turn)."""
        return len(self._runs)

    def anchor_of(self, run_id: UUID) -> Span | None:
        """The span a run's children are parented to (the turn span for chains)."""
        run = self._runs.get(run_id.int)
        return run.anchor if run is not None else None

    def name_turn(self, turn: Turn, name: str) -> None:
        """Name the turn after what it runs (a router at the root names the agent or graph
        it chose, not itself)."""
        if name and name != turn.name:
            turn.name = name
            self.spans.rename_turn(turn.span, name)

    def learn_provider(self, turn: Turn, provider: object) -> None:
        """A router in the turn evaluates through ``provider``: when the handler was given
        none and found none, the turn reports to it and takes its privacy setting."""
        if turn.provider is None and isinstance(provider, FeatBitProvider):
            turn.provider = provider
            if self._privacy is None and turn.privacy is None:
                turn.privacy = provider.privacy

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
        parent_id, parent = self._parent(parent_run_id)
        if parent is None:
            turn = self._new_turn(run_id, metadata, name)
            self._put(run_id, _Run(turn, turn.span, turn.span, name))
        else:
            self._joined(parent, name)
            parent.turn._add_run(run_id.int)
            self._put(run_id, _Run(parent.turn, None, parent.anchor, name, parent_id))

    def start_model(
        self,
        run_id: UUID,
        parent_run_id: UUID | None,
        metadata: Mapping[str, Any] | None,
        name: str,
        operation: str,
        invocation_params: Mapping[str, Any] | None,
    ) -> None:
        parent_id, parent = self._parent(parent_run_id)
        if parent is None:
            turn = self._new_turn(run_id, metadata, name)
            anchor = turn.span
        else:
            self._joined(parent, name)
            turn, anchor = parent.turn, parent.anchor
            turn._add_run(run_id.int)
        span = self.spans.start_model(anchor, operation, metadata, invocation_params)
        self._put(run_id, _Run(turn, span, span, name, parent_id))

    def start_tool(
        self,
        run_id: UUID,
        parent_run_id: UUID | None,
        metadata: Mapping[str, Any] | None,
        name: str,
        call_id: str | None,
    ) -> None:
        parent_id, parent = self._parent(parent_run_id)
        if parent is None:
            turn = self._new_turn(run_id, metadata, name)
            anchor = turn.span
        else:
            self._joined(parent, name)
            turn, anchor = parent.turn, parent.anchor
            turn._add_run(run_id.int)
        span = self.spans.start_tool(anchor, name, call_id)
        self._put(run_id, _Run(turn, span, span, name, parent_id))

    # -- ends -----------------------------------------------------------------------------

    def end_model(self, run_id: UUID, response: LLMResult) -> None:
        run = self._runs.get(run_id.int)
        extra = None
        if run is not None and run.span is not None:
            usage, extra = self.spans.model_result(run.span, response)
            if usage is not None:
                run.turn.add_usage(usage)
        self.end_run(run_id, extra=extra)

    def end_run(
        self,
        run_id: UUID,
        error: BaseException | None = None,
        *,
        extra: Mapping[str, AttributeValue] | None = None,
    ) -> None:
        """Any run's end; the root run's end ends its turn. A stream its consumer closed
        early (``GeneratorExit``) ends normally: stopping to read is not a failure.
        ``extra`` attributes go on the run's own span."""
        if isinstance(error, GeneratorExit):
            error = None
        key = run_id.int
        run = self._runs.pop(key, None)
        if run is None:
            return
        turn = run.turn
        if run.span is not None and run.span is not turn.span:
            self.spans.finish(run.span, turn, error=error, extra=extra)
        if key == turn.run_key:
            self._end_turn(turn, error)
        elif error is not None and run.parent_id is not None:
            parent = self._runs.get(run.parent_id.int)
            if parent is not None and parent.name == FALLBACKS_RUN_NAME:
                parent.failed_child = (run.name, error)

    # -- internals ------------------------------------------------------------------------

    def _parent(self, parent_run_id: UUID | None) -> tuple[UUID | None, _Run | None]:
        """The run a starting run belongs under: its parent, or the run LangChain's ambient
        config names when that one is more specific (see the module docstring)."""
        parent_key = parent_run_id.int if parent_run_id is not None else None
        given = self._runs.get(parent_key) if parent_key is not None else None
        ambient = var_child_runnable_config.get()
        callbacks = ambient.get("callbacks") if ambient else None
        ambient_id = getattr(callbacks, "parent_run_id", None)
        if ambient_id is not None and ambient_id.int != parent_key:
            found = self._runs.get(ambient_id.int)
            if found is not None and (given is None or found.parent_id == parent_run_id):
                return ambient_id, found
        return parent_run_id, given

    def _joined(self, parent: _Run, name: str) -> None:
        """A run starts under ``parent``: after a failed child of a fallbacks run, it is the
        fallback, and the turn records that it ran."""
        failed = parent.failed_child
        if failed is None:
            return
        parent.failed_child = None
        provider = parent.turn.provider
        if provider is not None:
            record_fallback(provider.events, parent.turn, failed[0], failed[1], name)

    def _put(self, run_id: UUID, run: _Run) -> None:
        self._runs[run_id.int] = run

    def _new_turn(self, run_id: UUID, metadata: Mapping[str, Any] | None, name: str) -> Turn:
        provider = self.provider.provider()
        privacy = self._privacy
        if privacy is None and provider is not None:
            privacy = provider.privacy
        turn = Turn(
            run_id, name, self.reader.from_metadata(metadata), self.spans.start_turn(name), privacy
        )
        turn.provider = provider
        return turn

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
                self.spans.finish(run.span, turn)
        self.spans.finish(turn.span, turn, error=error, is_turn=True)
        if self.outcomes is not None:
            self.outcomes.record(turn)
