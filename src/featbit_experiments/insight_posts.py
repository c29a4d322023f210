"""One batch of insight events on its way to FeatBit: written, posted (retried on a transient
failure), split when FeatBit rejects its content, and cut short when the processor stops.

``fbclient``'s sender (1.2.1) cannot tell a batch FeatBit rejected from one that failed, and
nothing interrupts its POST to an endpoint that never answers (10 s of read timeout by default).
:class:`InsightPoster` posts through its own pool built from the client's ``Config`` (the same
secret, headers, proxy and TLS), and :meth:`~InsightPoster.cut` ends every post in flight at
once (see :mod:`.abortable_http`). Each event of a batch ends in exactly one of the
:class:`Settle` callbacks.

It does not hold, schedule or count events: that is the processor's business (:mod:`.insights`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import _sdk
from .abortable_http import OpenConnections
from .insight_wire import Answer, answer_to, write_event

logger = logging.getLogger("featbit_experiments")

_UNWRITABLE = (
    "not writable as FeatBit's insight JSON (NaN, infinity or a metric value beyond float32)"
)


@dataclass(frozen=True)
class InsightRejection:
    """Events dropped for good because FeatBit cannot take them.

    ``status`` is the endpoint's answer, or None when they were refused before sending.
    """

    events: int
    status: int | None
    reason: str


@dataclass(frozen=True)
class Settle:
    """Where each event of a batch ends: delivered, failed (to be retried), rejected for good,
    or expired (the stop deadline passed before it was posted); ``too_late`` says whether
    that deadline has passed."""

    delivered: Callable[[int], None]
    failed: Callable[[list[Any]], None]
    rejected: Callable[[InsightRejection], None]
    expired: Callable[[int], None]
    too_late: Callable[[], bool]


class InsightPoster:
    """Posts JSON bodies to ``config.events_uri``, retrying ``events_max_retries`` times.

    Args:
        config: The ``fbclient`` ``Config`` (``events_uri``, ``events_max_retries``,
            ``events_retry_interval`` and the HTTP settings are read).
        pool_size: Connections kept open at once (one per posting thread).
    """

    def __init__(self, config: Any, pool_size: int) -> None:
        self._uri = str(config.events_uri)
        self._retries = max(0, int(config.events_max_retries))
        self._retry_interval = float(config.events_retry_interval)
        self._http = _sdk.insights_http(config, max(1, pool_size))
        self._connections = OpenConnections()
        self._connections.track(self._http)
        self._cut = threading.Event()

    def deliver(self, batch: list[Any], settle: Settle) -> None:
        """Write each event on its own (one FeatBit cannot read is rejected alone), then post
        the rest."""
        parts: list[tuple[Any, str]] = []
        for event in batch:
            text = write_event(event)
            if text is not None:
                parts.append((event, text))
        unwritable = len(batch) - len(parts)
        if unwritable:
            settle.rejected(InsightRejection(unwritable, None, _UNWRITABLE))
        if parts:
            self._send(parts, settle)

    def _send(self, parts: list[tuple[Any, str]], settle: Settle) -> None:
        """Post ``parts``; split a batch rejected for its content until only the rejected
        events are left."""
        if settle.too_late():
            settle.expired(len(parts))
            return
        status = self.post("[" + ",".join(text for _, text in parts) + "]")
        answer = answer_to(status)
        if answer is Answer.DELIVERED:
            settle.delivered(len(parts))
        elif answer is Answer.TRANSIENT:
            settle.failed([event for event, _ in parts])
        elif answer is Answer.CONTENT_REJECTED and len(parts) > 1:
            middle = len(parts) // 2
            self._send(parts[:middle], settle)
            self._send(parts[middle:], settle)
        else:
            reason = f"FeatBit's insights endpoint answered {status}"
            settle.rejected(InsightRejection(len(parts), status, reason))

    def post(self, body: str) -> int | None:
        """The endpoint's status after up to ``events_max_retries`` retries of a transient
        failure; None when it never answered (or the post was cut)."""
        status: int | None = None
        for attempt in range(self._retries + 1):
            if self._cut.is_set() or (attempt and self._cut.wait(self._retry_interval)):
                return status
            try:
                status = int(self._http.request("POST", self._uri, body=body).status)
            except Exception as error:
                if not self._cut.is_set():
                    logger.warning("FeatBit insight batch could not be sent: %s", error)
                status = None
            if answer_to(status) is not Answer.TRANSIENT:
                return status
        return status

    def cut(self) -> int:
        """End every post in flight now (each answers None) and make later ones return at
        once; returns how many connections were open."""
        self._cut.set()
        return self._connections.cut()

    def close(self) -> None:
        """Close the pool's idle connections."""
        self._http.clear()
