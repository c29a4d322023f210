"""One turn's state while it runs: its name, unit IDs, span, assignments, token usage, and the
flag evaluations it keeps (:class:`Pin`) so every router on a flag in the turn follows one
evaluation.

Callbacks of one turn may arrive on several threads (executor threads, ``RunnableParallel``
branches), so every change to a turn's own state goes through its lock. This module holds
state only; :class:`~.turns.TurnTracker` decides when turns start and end.
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

from .spans import IdProtector
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
        self._assignments: list[Assignment] = []
        self._pins: dict[str, Pin] = {}
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

    def pin(self, flag_key: str, pin: Pin) -> Pin:
        """Keep ``flag_key``'s evaluation for the rest of the turn; returns the one in force
        (an earlier pin wins, so retries, fallbacks and other routers on the flag keep the
        first evaluation)."""
        with self._lock:
            return self._pins.setdefault(flag_key, pin)

    def pinned(self, flag_key: str) -> Pin | None:
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
