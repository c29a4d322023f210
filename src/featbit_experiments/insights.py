"""FeatBit insight delivery with bounded memory, a bounded shutdown and poison isolation.

``fbclient``'s ``DefaultEventProcessor`` (1.2.1) bounds only its inbox (``events_max_in_queue``):
its dispatcher moves each event on into a buffer and into up to five flush workers, each holding
every event it took, and none of those is bounded. When the insights endpoint fails or is slow,
events pile up there for as long as evaluations go on (measured: 60,000 evaluations at 16k/s with
the endpoint answering 500 left all 60,000 events held, and ``FBClient.stop()`` then blocked for
84 s retrying them). A batch that still fails after the sender's retry is dropped.

:class:`BoundedEventProcessor` is a drop-in replacement (``Config(event_processor_imp=
BoundedEventProcessor)``; :meth:`FeatBitProvider.connect` uses it by default):

* at most ``events_max_in_queue`` events are held, queued or being sent; beyond that a new event
  is dropped and counted, and the evaluating thread never waits (``send_event`` is one short lock
  and an append);
* a batch that fails transiently (no answer, 5xx, 408, 429) after ``events_max_retries`` goes
  back to the head of the queue and delivery backs off (doubling up to ``max_backoff``, one
  worker probing the endpoint at a time), so an outage loses nothing that fits the bound;
* one bad event never holds up the others: an event that cannot be written as FeatBit's JSON
  (``NaN``, infinity, a metric beyond float32) is refused before sending, and a batch the
  endpoint rejects for its content (another 4xx) is split until every acceptable event is
  delivered and only the rejected ones are dropped; each refusal is counted and reported to the
  :attr:`~BoundedEventProcessor.rejection_listeners` (the provider makes them guardrails);
* ``stop()`` delivers what it can within ``shutdown_timeout`` and counts the rest as dropped.

It moves ``fbclient``'s events and nothing else: no flag evaluation, no policy.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import _sdk
from .insight_wire import Answer, answer_to, write_event

logger = logging.getLogger("featbit_experiments")

#: Events per POST, as ``fbclient`` sends them.
BATCH_SIZE = 50
#: Threads posting batches at once: as many as ``fbclient``'s sender keeps connections. Under a
#: CPU-bound load each POST waits for the GIL several times, so delivery scales with the posts
#: in flight (4 busy threads, 60,000 events: 1 worker 0.8k/s, 5 workers 8.7k/s, 10 workers 26k/s).
DEFAULT_WORKERS = 10
DEFAULT_MAX_BACKOFF = 30.0
DEFAULT_SHUTDOWN_TIMEOUT = 5.0


@dataclass(frozen=True)
class InsightCounts:
    """What happened to the insight events (flag evaluations, metrics) handed to the processor.

    ``accepted == delivered + pending + dropped_at_stop + rejected`` once in-flight posts have
    settled; ``dropped_full`` were refused on arrival because the bound was reached, so every
    event offered is ``delivered + pending + dropped``.
    """

    accepted: int
    delivered: int
    pending: int
    dropped_full: int
    dropped_at_stop: int
    failed_posts: int
    rejected: int = 0

    @property
    def dropped(self) -> int:
        return self.dropped_full + self.dropped_at_stop + self.rejected

    @property
    def offered(self) -> int:
        return self.accepted + self.dropped_full


@dataclass(frozen=True)
class InsightRejection:
    """Events dropped for good because FeatBit cannot take them.

    ``status`` is the endpoint's answer, or None when they were refused before sending.
    """

    events: int
    status: int | None
    reason: str


RejectionListener = Callable[[InsightRejection], None]


class BoundedEventProcessor:
    """An ``fbclient`` event processor whose held events never exceed ``events_max_in_queue``.

    ``fbclient`` calls it as ``event_processor_imp(config, sender)``; bind the keyword options
    with ``functools.partial``. It posts through its own connection pool built from ``config``
    (the same secret, headers, proxy and TLS settings), since ``fbclient``'s sender does not
    tell a rejected batch from a failed one.

    Args:
        config: The ``fbclient`` ``Config`` (``events_max_in_queue``, ``events_flush_interval``,
            ``events_max_retries``, ``events_retry_interval`` and ``events_uri`` are read).
        sender: ``fbclient``'s HTTP sender; only stopped.
        workers: Threads posting batches at once.
        max_backoff: Longest pause, in seconds, between attempts while the endpoint fails.
        shutdown_timeout: How long :meth:`stop` keeps delivering before dropping the rest.
    """

    def __init__(
        self,
        config: Any,
        sender: Any,
        *,
        workers: int = DEFAULT_WORKERS,
        max_backoff: float = DEFAULT_MAX_BACKOFF,
        shutdown_timeout: float = DEFAULT_SHUTDOWN_TIMEOUT,
    ) -> None:
        self.capacity = max(1, int(config.events_max_in_queue))
        self._uri = str(config.events_uri)
        self._interval = float(config.events_flush_interval)
        self._retries = max(0, int(config.events_max_retries))
        self._retry_interval = float(config.events_retry_interval)
        self._sender = sender
        self._http = _sdk.insights_http(config, max(1, workers))
        self._max_backoff = max(max_backoff, self._interval)
        self._shutdown_timeout = shutdown_timeout
        #: Called (outside any lock) with each :class:`InsightRejection`; must not raise.
        self.rejection_listeners: list[RejectionListener] = []
        self._pending: deque[Any] = deque()
        self._in_flight = 0
        self._ready = threading.Condition(threading.Lock())
        self._flush_due = False
        self._backoff = 0.0
        self._resume_at = 0.0
        self._probe: list[Any] | None = None  # the batch testing a failing endpoint
        self._stopping = False
        self._deadline = 0.0
        self._accepted = self._delivered = self._dropped_full = 0
        self._dropped_at_stop = self._failed_posts = self._rejected = 0
        self._threads = [
            threading.Thread(target=self._work, name=f"featbit-insights-{n}", daemon=True)
            for n in range(max(1, workers))
        ]
        for thread in self._threads:
            thread.start()

    # -- fbclient's EventProcessor ------------------------------------------------------

    def send_event(self, event: Any) -> None:
        """Queue one event, or drop it when the bound is reached; never blocks."""
        if event is None or not event.is_send_event:
            return
        with self._ready:
            if self._stopping or len(self._pending) + self._in_flight >= self.capacity:
                self._dropped_full += 1
                return
            self._pending.append(event)
            self._accepted += 1
            if len(self._pending) == BATCH_SIZE:
                self._ready.notify()

    def flush(self) -> None:
        """Send what is queued now rather than at the next interval (asynchronously)."""
        with self._ready:
            self._flush_due = True
            self._ready.notify_all()

    def stop(self) -> None:
        """Deliver what can be delivered within ``shutdown_timeout``; drop and count the rest."""
        with self._ready:
            if self._stopping:
                return
            self._stopping = True
            self._deadline = time.monotonic() + self._shutdown_timeout
            self._ready.notify_all()
        for thread in self._threads:
            thread.join(max(0.0, self._deadline - time.monotonic()) + 0.1)
        with self._ready:
            self._dropped_at_stop += len(self._pending)
            self._pending.clear()
        for closing in (self._http.clear, self._sender.stop):
            try:
                closing()
            except Exception:
                logger.exception("FeatBit insight sender failed to stop")

    # -- observation --------------------------------------------------------------------

    def counts(self) -> InsightCounts:
        with self._ready:
            return InsightCounts(
                accepted=self._accepted,
                delivered=self._delivered,
                pending=len(self._pending) + self._in_flight,
                dropped_full=self._dropped_full,
                dropped_at_stop=self._dropped_at_stop,
                failed_posts=self._failed_posts,
                rejected=self._rejected,
            )

    # -- delivery -----------------------------------------------------------------------

    def _work(self) -> None:
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            try:
                self._deliver(batch)
            finally:
                with self._ready:
                    if self._probe is batch:
                        self._probe = None
                        self._ready.notify_all()

    def _next_batch(self) -> list[Any] | None:
        """Wait until a batch is due (full, flush interval, flush(), stop) and take it."""
        with self._ready:
            while True:
                now = time.monotonic()
                if self._stopping and (not self._pending or now >= self._deadline):
                    return None
                failing = self._backoff > 0
                if now < self._resume_at or (failing and self._probe is not None):
                    # Backing off, or one worker is already probing the failing endpoint.
                    wait = max(self._resume_at - now, 0.0) or self._interval
                    if self._stopping:
                        wait = min(wait, self._deadline - now)
                    self._ready.wait(wait)
                    continue
                due = self._flush_due or self._stopping or len(self._pending) >= BATCH_SIZE
                if self._pending and due:
                    size = min(BATCH_SIZE, len(self._pending))
                    batch = [self._pending.popleft() for _ in range(size)]
                    self._in_flight += size
                    if failing:
                        self._probe = batch
                    if not self._pending:
                        self._flush_due = False
                    return batch
                if not self._ready.wait(self._interval):
                    self._flush_due = True

    def _deliver(self, batch: list[Any]) -> None:
        parts: list[tuple[Any, str]] = []
        unwritable = 0
        for event in batch:
            text = write_event(event)
            if text is None:
                unwritable += 1
            else:
                parts.append((event, text))
        if unwritable:
            self._reject(
                unwritable,
                InsightRejection(
                    unwritable,
                    None,
                    "not writable as FeatBit's insight JSON (NaN, infinity or a metric value "
                    "beyond float32)",
                ),
            )
        if parts:
            self._send(parts)

    def _send(self, parts: list[tuple[Any, str]]) -> None:
        """Post ``parts``; split a batch rejected for its content until only the rejected
        events are left."""
        if self._stopping and time.monotonic() >= self._deadline:
            with self._ready:
                self._in_flight -= len(parts)
                self._dropped_at_stop += len(parts)
            return
        status = self._post("[" + ",".join(text for _, text in parts) + "]")
        answer = answer_to(status)
        if answer is Answer.DELIVERED:
            self._settle_delivered(len(parts))
        elif answer is Answer.TRANSIENT:
            self._settle_failed([event for event, _ in parts])
        elif answer is Answer.CONTENT_REJECTED and len(parts) > 1:
            middle = len(parts) // 2
            self._send(parts[:middle])
            self._send(parts[middle:])
        else:
            reason = f"FeatBit's insights endpoint answered {status}"
            self._reject(len(parts), InsightRejection(len(parts), status, reason))

    def _post(self, body: str) -> int | None:
        """The endpoint's status after up to ``events_max_retries`` retries of a transient
        failure; None when it never answered."""
        status: int | None = None
        for attempt in range(self._retries + 1):
            if attempt:
                time.sleep(self._retry_interval)
            try:
                status = int(self._http.request("POST", self._uri, body=body).status)
            except Exception as error:
                logger.warning("FeatBit insight batch could not be sent: %s", error)
                status = None
            if answer_to(status) is not Answer.TRANSIENT:
                return status
        return status

    def _settle_delivered(self, size: int) -> None:
        with self._ready:
            self._in_flight -= size
            self._delivered += size
            if self._backoff:
                self._backoff = self._resume_at = 0.0
                self._ready.notify_all()  # the endpoint is back: every worker may post

    def _settle_failed(self, events: list[Any]) -> None:
        with self._ready:
            self._in_flight -= len(events)
            self._failed_posts += 1
            if self._stopping and time.monotonic() >= self._deadline:
                self._dropped_at_stop += len(events)
                return
            self._pending.extendleft(reversed(events))
            self._backoff = min(self._max_backoff, max(self._interval, self._backoff * 2))
            self._resume_at = time.monotonic() + self._backoff
            self._ready.notify_all()

    def _reject(self, size: int, rejection: InsightRejection) -> None:
        with self._ready:
            self._in_flight -= size
            self._rejected += size
        logger.warning("dropped %d FeatBit insight event(s): %s", size, rejection.reason)
        for listener in self.rejection_listeners:
            try:
                listener(rejection)
            except Exception:
                logger.exception("insight rejection listener %r failed", listener)
