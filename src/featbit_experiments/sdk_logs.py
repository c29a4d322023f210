"""Collapse the FeatBit SDK's repeated log lines: one line per distinct message, then a count.

While FeatBit is unreachable, ``fbclient`` and ``websocket-client`` log the same failure on
every reconnect attempt (with a traceback for some), which buries the one line that says what
is wrong. :func:`collapse_repeated_sdk_logs` adds a filter to their loggers that lets each
distinct warning or error through once, drops its repeats for ``interval`` seconds, and then
lets it through again saying how many were dropped. Records below WARNING (fbclient's
per-evaluation INFO line) pass untouched: they are not failures repeating, and an application
that turned them on wants every one. It changes nothing else about those loggers
(level, handlers, propagation) and never touches the application's own loggers.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

__all__ = ["SDK_LOGGERS", "RepeatedRecordFilter", "collapse_repeated_sdk_logs"]

#: The loggers fbclient 1.2 and websocket-client write to.
SDK_LOGGERS = ("fbclient.utils", "websocket")
#: Seconds a repeated message stays silent before it is let through again with its count.
REPEAT_INTERVAL = 60.0
_MAX_MESSAGES = 256


class RepeatedRecordFilter(logging.Filter):
    """Lets the first record of each (logger, level, message) through and counts repeats.

    Args:
        interval: Seconds after which a repeated message is let through again, with
            ``(repeated N times in the last Ss)`` appended and its traceback dropped.
        clock: A monotonic clock (tests pass their own).
    """

    def __init__(
        self, interval: float = REPEAT_INTERVAL, clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__()
        self._interval = interval
        self._clock = clock
        self._lock = threading.Lock()
        self._seen: OrderedDict[tuple[str, int, str], tuple[float, int]] = OrderedDict()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        key = (record.name, record.levelno, record.getMessage())
        now = self._clock()
        with self._lock:
            seen = self._seen.get(key)
            if seen is None:
                self._seen[key] = (now, 0)
                if len(self._seen) > _MAX_MESSAGES:
                    self._seen.popitem(last=False)
                return True
            since, repeats = seen
            if now - since < self._interval:
                self._seen[key] = (since, repeats + 1)
                return False
            self._seen[key] = (now, 0)
        if repeats:
            elapsed = now - since
            record.msg = f"{record.getMessage()} (repeated {repeats} times in {elapsed:.0f}s)"
            record.args = None
            record.exc_info = record.exc_text = None
        return True


_installed: RepeatedRecordFilter | None = None
_install_lock = threading.Lock()


def collapse_repeated_sdk_logs() -> RepeatedRecordFilter:
    """Add one shared :class:`RepeatedRecordFilter` to the SDK's loggers (idempotent)."""
    global _installed
    with _install_lock:
        if _installed is None:
            _installed = RepeatedRecordFilter()
            for name in SDK_LOGGERS:
                logging.getLogger(name).addFilter(_installed)
        return _installed
