"""One turn's state while it runs: its name, unit IDs, span, assignments, token usage, and the
flag evaluations it keeps (:class:`Pin`) so every router on a flag in the turn follows one
evaluation.

Callbacks of one turn may arrive on several threads (executor threads, ``RunnableParallel``
branches). A change that is one operation on a builtin container (adding a run, keeping or
reading a pin, copying the assignments) is atomic on its own; one that takes several (the
token sums, handing over the runs, adding assignments from any iterable) goes through the
turn's lock. This module holds state only;
:class:`~.turns.TurnTracker` decides when turns start and end.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from uuid import UUID

from opentelemetry.trace import Span

from featbit_experiments.assignment import Assignment
from featbit_experiments.provider import FeatBitProvider

from .spans import IdProtector, SharedAttributes
from .turn_context import TurnContext


@dataclass(frozen=True)
class Pin:
    """A flag's evaluation kept for the rest of a turn (see :meth:`Turn.pin`).

    Args:
        value: The value served (the router's default when the evaluation failed).
        variant: The variant name, None when the evaluation failed.
        served: Whether the flag served a variant (False: an error gave the default).
    """

    value: str
    variant: str | None
    served: bool


class Turn:
    """What is known about one turn while it runs.

    Attributes:
        run_id: The root run's ID.
        name: The agent's or workflow's name (the root run's, or what a router at the root
            ran).
        privacy: How the turn's unit IDs appear on its spans.
        context: The turn's unit IDs (metadata, plus what a router read from ``configurable``).
        span: The turn's span.
        error: The exception the root run ended with, if any.
        input_tokens, output_tokens: Token usage summed over the turn's model calls.
        saw_usage: Whether any model call reported usage.
    """

    def __init__(
        self,
        run_id: UUID,
        name: str,
        context: TurnContext,
        span: Span,
        privacy: IdProtector | None = None,
    ) -> None:
        self.run_id = run_id
        #: ``run_id.int``, how the tracker keys runs.
        self.run_key = run_id.int
        self.name = name
        self.context = context
        self.span = span
        self.privacy = privacy
        #: The FeatBit provider the turn reports guardrails to, when one is known.
        self.provider: FeatBitProvider | None = None
        self.started = time.perf_counter()
        self.ended: float | None = None
        self.error: BaseException | None = None
        self.input_tokens = 0
        self.output_tokens = 0
        self.saw_usage = False
        #: The attributes every span of the turn carries, kept by ``spans`` with what they
        #: were built from.
        self.span_attributes: SharedAttributes | None = None
        self._assignments: list[Assignment] = []
        self._pins: dict[str, Pin] = {}
        self._runs: set[int] = {run_id.int}  # the tracker's keys of the turn's runs
        self._lock = threading.Lock()

    @property
    def assignments(self) -> tuple[Assignment, ...]:
        """Every experiment assignment made in the turn so far, in order."""
        return tuple(self._assignments)  # one copy, atomic

    @property
    def latency_ms(self) -> float:
        end = self.ended if self.ended is not None else time.perf_counter()
        return (end - self.started) * 1000.0

    def add_assignments(self, assignments: Iterable[Assignment]) -> None:
        with self._lock:
            self._assignments.extend(assignments)

    def pin(self, flag_key: str, pin: Pin) -> Pin:
        """Keep ``flag_key``'s evaluation for the rest of the turn; returns the one in force
        (an earlier pin wins, so retries, fallbacks and other routers on the flag keep the
        first evaluation)."""
        return self._pins.setdefault(flag_key, pin)  # one operation, atomic

    def pinned(self, flag_key: str) -> Pin | None:
        return self._pins.get(flag_key)

    def add_usage(self, usage: tuple[int, int]) -> None:
        with self._lock:
            self.saw_usage = True
            self.input_tokens += usage[0]
            self.output_tokens += usage[1]

    def _add_run(self, run_key: int) -> None:
        # Atomic without the lock. A run added while _take_runs hands the set over lands in
        # the new set, as it would after waiting for the lock.
        self._runs.add(run_key)

    def _take_runs(self) -> list[int]:
        with self._lock:
            runs, self._runs = list(self._runs), set()
            return runs
