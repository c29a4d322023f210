"""A circuit breaker for a remote store: after enough failures in a row, callers stop waiting
for a server that is not answering.

States: *closed* (calls go through), *open* (every call fails at once for ``retry_interval``
seconds), *half-open* (the interval is over: exactly one caller probes the server while every
other caller keeps failing at once; the probe's outcome closes or reopens the breaker). So a
stalled server costs each caller at most one timeout, and once the breaker opens, no caller
waits at all, including callers that were already on their way to the server when it opened
(they ask :meth:`CircuitBreaker.allows_connect` before opening a connection).

It knows nothing about Redis; it must not sleep, retry, or hold its lock during I/O.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class CircuitBreaker:
    """Counts failures in a row and decides whether a call may go to the server.

    Args:
        failure_threshold: Failures in a row that open the breaker.
        retry_interval: Seconds the breaker stays open before one probe is let through.
        clock: Monotonic seconds.
    """

    def __init__(
        self,
        failure_threshold: int,
        retry_interval: float,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.failure_threshold = max(1, failure_threshold)
        self.retry_interval = retry_interval
        self._clock = clock
        self._lock = threading.Lock()
        self._failures = 0
        self._open_until = 0.0
        self._probing = False
        self._caller = threading.local()
        self.last_error = ""

    @property
    def is_open(self) -> bool:
        """True while calls fail at once (open, or half-open with a probe in flight)."""
        return self._failures >= self.failure_threshold and (
            self._probing or self._clock() < self._open_until
        )

    def admit(self) -> bool | None:
        """Whether a call may go ahead: None when it must fail at once, True when it is the
        single probe of a half-open breaker, False for an ordinary call."""
        if self._failures < self.failure_threshold:
            return False  # closed: the common case takes no lock
        with self._lock:
            if self._failures < self.failure_threshold:
                return False
            if self._probing or self._clock() < self._open_until:
                return None
            self._probing = True
            self._caller.probe = True
            return True

    def allows_connect(self) -> bool:
        """Whether the calling thread, already admitted, may still open a new connection:
        False once the breaker has opened meanwhile, unless this thread is the probe."""
        return bool(getattr(self._caller, "probe", False)) or not self.is_open

    def succeeded(self, *, probe: bool) -> None:
        if probe:
            self._caller.probe = False
        if self._failures or self._probing:
            with self._lock:
                self._failures = 0
                self._probing = False
                self._open_until = 0.0

    def failed(self, error: str, *, probe: bool) -> None:
        if probe:
            self._caller.probe = False
        with self._lock:
            self.last_error = error
            self._failures += 1
            if probe:
                self._probing = False
            if self._failures >= self.failure_threshold and (probe or not self._probing):
                self._open_until = self._clock() + self.retry_interval
