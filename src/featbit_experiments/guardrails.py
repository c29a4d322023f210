"""Guardrail events: the stable record of everything that made an evaluation or an outcome
less trustworthy (a missing unit ID, a unit mismatch, a fallback, a store outage, a lost ledger,
a sink that lost events).

Each guardrail has a stable name from :class:`Guardrail`, so analysis and alerting can count
them. Sinks receive plain dicts; a sink that fails never breaks the caller, and the events it
lost are counted and reported to the other sinks as ``sink_failed``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from enum import Enum
from typing import Any, Protocol, runtime_checkable

from .guardrail_throttles import CountedGuardrail, ThrottledGuardrail
from .privacy import Privacy, id_fields_of
from .units import STANDARD_UNITS
from .upkeep import UPKEEP, Task

__all__ = [
    "GUARDRAIL_EVENT",
    "CountedGuardrail",
    "EventFanout",
    "EventSink",
    "Guardrail",
    "InMemorySink",
    "LoggingSink",
    "SinkFailed",
    "ThrottledGuardrail",
    "utc_now",
]

logger = logging.getLogger("featbit_experiments")


class Guardrail(str, Enum):
    """Stable guardrail names."""

    MISSING_UNIT_ID = "missing_unit_id"
    INVALID_UNIT_ID = "invalid_unit_id"
    UNIT_CONFLICT = "unit_conflict"
    UNIT_CHANGED = "unit_changed"
    REQUEST_UNIT_REFUSED = "request_unit_refused"
    METRIC_UNIT_MISMATCH = "metric_unit_mismatch"
    METRIC_DIRECTION_CONFLICT = "metric_direction_conflict"
    INVALID_METRIC_DIRECTION = "invalid_metric_direction"
    EXPERIMENT_FLAG_MISSING = "experiment_flag_missing"
    DISPATCH_KEY_MISMATCH = "dispatch_key_mismatch"
    TARGETING_UNIT_MISMATCH = "targeting_unit_mismatch"
    INVALID_METRIC_VALUE = "invalid_metric_value"
    INSIGHTS_REJECTED = "insights_rejected"
    INSIGHTS_DROPPED = "insights_dropped"
    EXPOSURES_NOT_COUNTED = "exposures_not_counted"
    FALLBACK_USED = "fallback_used"
    VARIANT_SWITCHED = "variant_switched"
    PROVIDER_NOT_READY = "provider_not_ready"
    STORE_UNAVAILABLE = "store_unavailable"
    LEDGER_LOST = "ledger_lost"
    LEDGER_AT_RISK = "ledger_at_risk"
    LEDGER_CACHE_DROPPED = "ledger_cache_dropped"
    SINK_FAILED = "sink_failed"

    def __str__(self) -> str:
        return self.value


GUARDRAIL_EVENT = "experiment_guardrail"

#: Default minimum seconds between two ``sink_failed`` guardrails for one sink.
DEFAULT_SINK_FAILURE_INTERVAL = 10.0


@runtime_checkable
class EventSink(Protocol):
    """Receives experiment events (guardrails, exposures, outcomes) as JSON-ready dicts.

    A sink that cannot deliver raises: :class:`SinkFailed` saying how many events were lost (a
    buffered sink may lose a whole batch), or any other exception for the one event.
    """

    def emit(self, event: Mapping[str, Any]) -> None: ...


class SinkFailed(Exception):
    """A sink could not deliver ``lost`` events (counted by the sink; reported by the fanout)."""

    def __init__(self, message: str, *, lost: int) -> None:
        super().__init__(message)
        self.lost = lost


class InMemorySink:
    """Keeps the most recent events in memory (bounded), for tests and small demos."""

    def __init__(self, max_events: int = 100_000) -> None:
        self._events: deque[dict[str, Any]] = deque(maxlen=max_events)
        self._lock = threading.Lock()

    def emit(self, event: Mapping[str, Any]) -> None:
        with self._lock:
            self._events.append(dict(event))

    @property
    def events(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._events)

    def of_kind(self, event: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("event") == event]

    def guardrails(self, name: str | None = None) -> list[dict[str, Any]]:
        return [
            e for e in self.of_kind(GUARDRAIL_EVENT) if name is None or e.get("guardrail") == name
        ]

    def clear(self) -> None:
        with self._lock:
            self._events.clear()


class LoggingSink:
    """Writes guardrails to the ``featbit_experiments`` logger at WARNING, other events at DEBUG."""

    def emit(self, event: Mapping[str, Any]) -> None:
        if event.get("event") == GUARDRAIL_EVENT:
            logger.warning("guardrail %s: %s", event.get("guardrail"), event.get("message"))
        elif logger.isEnabledFor(logging.DEBUG):  # no copy of every exposure for nothing
            logger.debug("%s", dict(event))


class EventFanout:
    """Sends each event to every sink; one failing sink does not stop the others.

    A sink that fails is reported to the *other* sinks and the logger as a ``sink_failed``
    guardrail counting the events it lost, at most once per ``failure_report_interval`` per
    sink (the counts of suppressed reports are carried by the next one, and by :meth:`flush`).

    Args:
        sinks: Where events go.
        privacy: Applied to every event's unit ID fields before any sink sees it, so no sink
            can receive a raw ID when hashing or omission is on.
        id_fields: The field names that hold unit IDs (see ``privacy.id_fields_of``); the
            standard units' fields by default.
        failure_report_interval: Minimum seconds between two ``sink_failed`` guardrails for
            one sink.
    """

    def __init__(
        self,
        sinks: Iterable[EventSink],
        *,
        privacy: Privacy | None = None,
        id_fields: Iterable[str] = (),
        failure_report_interval: float = DEFAULT_SINK_FAILURE_INTERVAL,
    ) -> None:
        self._sinks = tuple(sinks)
        self._privacy = privacy if privacy is not None and not privacy.is_raw else None
        self._id_fields = frozenset(id_fields) or id_fields_of(STANDARD_UNITS)
        self._failure_interval = failure_report_interval
        self._failures: dict[int, tuple[str, CountedGuardrail]] = {}
        self._reporting = threading.local()
        self._upkeep: Task | None = None

    @property
    def sinks(self) -> tuple[EventSink, ...]:
        return self._sinks

    def flush(self) -> None:
        """Flush every sink that buffers (has a ``flush()``), then record every failure count
        not recorded yet."""
        for sink in self._sinks:
            flush = getattr(sink, "flush", None)
            if callable(flush):
                try:
                    flush()
                except Exception as error:
                    self._sink_failed(sink, error)
        for _, report in list(self._failures.values()):
            report.flush(force=True)

    def lost_events(self) -> dict[str, int]:
        """Events each failing sink lost so far, by the sink's ``repr``."""
        return {
            name: report.totals().get("eventsLost", 0)
            for name, report in list(self._failures.values())
        }

    def _flush_failure_reports(self) -> None:
        for _, report in list(self._failures.values()):
            report.flush()

    def emit(self, event: Mapping[str, Any], *, skip: EventSink | None = None) -> None:
        if self._privacy is not None:
            event = self._privacy.scrub(event, self._id_fields)
        for sink in self._sinks:
            if sink is skip:
                continue
            try:
                sink.emit(event)
            except Exception as error:
                self._sink_failed(sink, error)

    def guardrail(self, name: Guardrail | str, message: str, /, **attributes: Any) -> None:
        self.guardrail_except(None, name, message, **attributes)

    def guardrail_except(
        self,
        skip_sink: EventSink | None,
        name: Guardrail | str,
        message: str,
        /,
        **attributes: Any,
    ) -> None:
        """A guardrail for every sink but ``skip_sink`` (the one it is about)."""
        event: dict[str, Any] = {
            "event": GUARDRAIL_EVENT,
            "guardrail": str(name),
            "message": message,
            "timestamp": utc_now(),
        }
        event.update({k: v for k, v in attributes.items() if v is not None})
        self.emit(event, skip=skip_sink)

    def _sink_failed(self, sink: EventSink, error: Exception) -> None:
        """Count the events ``sink`` lost and report them to the others (never recursively: a
        sink failing while a failure is reported is counted, and reported next time)."""
        lost = error.lost if isinstance(error, SinkFailed) else 1
        known = self._failures.get(id(sink))
        if known is None:
            report = CountedGuardrail(
                self, Guardrail.SINK_FAILED, self._failure_interval, skip=sink
            )
            _, report = self._failures.setdefault(id(sink), (repr(sink), report))
            if self._upkeep is None:  # counts left after the last report are recorded later
                self._upkeep = UPKEEP.every(self._failure_interval, self._flush_failure_reports)
            if not isinstance(error, SinkFailed):  # the first unexpected error, with its trace
                logger.error("event sink %r failed", sink, exc_info=error)
        else:
            _, report = known
        message = (
            f"event sink {sink!r} could not deliver events ({error}); they are lost, counted "
            "in eventsLost"
        )
        reporting = getattr(self._reporting, "active", False)
        self._reporting.active = True
        try:
            report.add(message, {"eventsLost": lost}, sink=repr(sink), quiet=reporting)
        finally:
            self._reporting.active = reporting


def utc_now() -> str:
    """An ISO-8601 UTC timestamp with millisecond precision and a ``Z`` suffix.

    Every exposure carries one, so the part up to the second is formatted once per second."""
    global _second_text
    now = time.time()
    second = int(now)
    cached = _second_text
    if cached[0] != second:
        text = datetime.fromtimestamp(second, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
        cached = _second_text = (second, text)  # one tuple, replaced whole: thread-safe
    return f"{cached[1]}.{int((now - second) * 1000):03d}Z"


_second_text: tuple[int, str] = (-1, "")
