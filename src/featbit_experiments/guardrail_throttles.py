"""Guardrails for conditions that last (a store outage, FeatBit not synced, a sink that keeps
failing, a lost ledger): recorded at most once per interval instead of once per evaluation, with
the count of what was suppressed, so nobody drowns in records and nothing goes uncounted.

Both classes only decide *when* to record; the record goes through the event fanout. They hold a
short lock, never the fanout's, and never raise.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .guardrails import EventFanout, EventSink, Guardrail

logger = logging.getLogger("featbit_experiments")


class ThrottledGuardrail:
    """One guardrail that a condition lasting a while (a store outage, FeatBit not synced yet)
    would otherwise record on every evaluation: recorded at most once per ``interval``
    seconds, each record saying how many were suppressed since the last one.

    Args:
        events: Where the guardrail goes.
        name: The guardrail's name.
        interval: Seconds between two records while the condition lasts.
    """

    def __init__(self, events: EventFanout, name: Guardrail, interval: float) -> None:
        self._events = events
        self._name = name
        self._interval = interval
        self._lock = threading.Lock()
        self._next_report = 0.0
        self._suppressed = 0
        self.active = False

    def report(self, message: str, **attributes: Any) -> None:
        now = time.monotonic()
        with self._lock:
            self.active = True
            if now < self._next_report:
                self._suppressed += 1
                return
            suppressed, self._suppressed = self._suppressed, 0
            self._next_report = now + self._interval
        self._events.guardrail(self._name, message, suppressed=suppressed, **attributes)

    def recovered(self) -> int | None:
        """Mark the condition over; the count of records suppressed since the last one, or
        None when it was not active."""
        if not self.active:
            return None
        with self._lock:
            if not self.active:
                return None
            self.active = False  # the interval runs on: a store flapping (a cluster with one
            suppressed, self._suppressed = self._suppressed, 0  # node down) is one record each
        return suppressed


class CountedGuardrail:
    """One guardrail that counts what happened (units restored, events lost), recorded at
    most once per ``interval`` seconds with the counts since the last record and the totals.

    The first occurrence is recorded at once; later ones add to the counts, which the next
    record (or :meth:`flush`, run periodically by the owner) carries, so no count is lost to
    the throttle.

    Args:
        events: Where the guardrail goes.
        name: The guardrail's name.
        interval: Minimum seconds between two records.
        clock: Monotonic seconds.
    """

    def __init__(
        self,
        events: EventFanout,
        name: Guardrail,
        interval: float,
        *,
        skip: EventSink | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._events = events
        self._name = name
        self._interval = interval
        self._skip = skip
        self._clock = clock
        self._lock = threading.Lock()
        self._next_report = 0.0
        self._pending: dict[str, int] = {}
        self._totals: dict[str, int] = {}
        self._message = ""
        self._attributes: dict[str, Any] = {}

    def totals(self) -> dict[str, int]:
        """Every count since this guardrail was created."""
        with self._lock:
            return dict(self._totals)

    def add(
        self, message: str, counts: Mapping[str, int], *, quiet: bool = False, **attributes: Any
    ) -> None:
        """Count an occurrence; records it now unless one was recorded within ``interval``
        (or ``quiet``: count only, for the next record)."""
        with self._lock:
            for name, count in counts.items():
                self._pending[name] = self._pending.get(name, 0) + count
                self._totals[name] = self._totals.get(name, 0) + count
            self._message, self._attributes = message, attributes
            if quiet or self._clock() < self._next_report:
                return
            report = self._take()
        self._record(*report)

    def flush(self, *, force: bool = False) -> None:
        """Record the counts not recorded yet, if any and the interval has passed (or
        ``force``: at shutdown)."""
        with self._lock:
            if not self._pending or (not force and self._clock() < self._next_report):
                return
            report = self._take()
        self._record(*report)

    def _take(self) -> tuple[str, dict[str, int], dict[str, int], dict[str, Any]]:
        pending, self._pending = self._pending, {}
        self._next_report = self._clock() + self._interval
        return self._message, pending, dict(self._totals), self._attributes

    def _record(
        self, message: str, pending: dict[str, int], totals: dict[str, int], attributes: Any
    ) -> None:
        counts = {name: pending.get(name, 0) for name in totals}
        fields = {**counts, **{f"{name}Total": total for name, total in totals.items()}}
        if self._skip is not None:  # the failing sink is told nothing; the logger is
            logger.warning("guardrail %s: %s %s", self._name, message, fields)
        self._events.guardrail_except(self._skip, self._name, message, **fields, **attributes)
