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
* ``stop()`` delivers what it can within ``shutdown_timeout`` (1.2 s), then cuts the posts
  still in flight (:mod:`.insight_posts`) and counts everything undelivered, queued or in a cut
  post, as dropped: once it returns, ``accepted == delivered + rejected + dropped_at_stop``
  exactly, and its threads have ended. :meth:`~BoundedEventProcessor.begin_stop` starts that
  clock without waiting, so the provider stops the stream meanwhile.

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

from .insight_posts import InsightPoster, InsightRejection, Settle

__all__ = ["BoundedEventProcessor", "InsightCounts", "InsightRejection", "RejectionListener"]

logger = logging.getLogger("featbit_experiments")

#: Events per POST, as ``fbclient`` sends them.
BATCH_SIZE = 50
#: Threads posting batches at once: as many as ``fbclient``'s sender keeps connections. Under a
#: CPU-bound load each POST waits for the GIL several times, so delivery scales with the posts
#: in flight (4 busy threads, 60,000 events: 1 worker 0.8k/s, 5 workers 8.7k/s, 10 workers 26k/s).
DEFAULT_WORKERS = 10
DEFAULT_MAX_BACKOFF = 30.0
#: Seconds ``stop()`` keeps delivering; with :data:`CUT_GRACE` it keeps a provider's shutdown
#: within 2 s whatever the endpoint does.
DEFAULT_SHUTDOWN_TIMEOUT = 1.2
#: Longest wait, once the posts still in flight at the deadline are cut, for their threads to
#: settle them (they do in microseconds unless the machine is saturated).
CUT_GRACE = 0.5


@dataclass(frozen=True)
class InsightCounts:
    """What happened to the insight events (flag evaluations, metrics) handed to the processor.

    ``accepted == delivered + pending + dropped_at_stop + rejected`` once in-flight posts have
    settled, and always once ``stop()`` has returned (``pending`` is then 0); ``dropped_full``
    were refused on arrival because the bound was reached or the processor was stopping, so
    every event offered is ``delivered + pending + dropped``.
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


RejectionListener = Callable[[InsightRejection], None]


class BoundedEventProcessor:
    """An ``fbclient`` event processor whose held events never exceed ``events_max_in_queue``.

    ``fbclient`` calls it as ``event_processor_imp(config, sender)``; bind the keyword options
    with ``functools.partial``. It posts through its own connection pool built from ``config``
    (the same secret, headers, proxy and TLS settings; see :mod:`.insight_posts`), since
    ``fbclient``'s sender does not tell a rejected batch from a failed one, nor can its posts
    be interrupted.

    Args:
        config: The ``fbclient`` ``Config`` (``events_max_in_queue``, ``events_flush_interval``,
            ``events_max_retries``, ``events_retry_interval`` and ``events_uri`` are read).
        sender: ``fbclient``'s HTTP sender; only stopped.
        workers: Threads posting batches at once.
        max_backoff: Longest pause, in seconds, between attempts while the endpoint fails.
        shutdown_timeout: How long :meth:`stop` keeps delivering before dropping the rest
            (then :data:`CUT_GRACE` at most for the posts it cuts).
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
        self._interval = float(config.events_flush_interval)
        self._sender = sender
        self._poster = InsightPoster(config, max(1, workers))
        self._settle = Settle(
            self._settle_delivered,
            self._settle_failed,
            self._reject,
            self._expire,
            self._too_late,
        )
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
        self._stop_lock = threading.Lock()
        self._closed = False  # stopped: every event is counted, late settlements are ignored
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

    def begin_stop(self) -> None:
        """Start stopping without waiting: new events are refused, and what is held keeps
        being delivered until ``shutdown_timeout`` from the first call. Idempotent."""
        with self._ready:
            if self._stopping:
                return
            self._stopping = True
            self._deadline = time.monotonic() + self._shutdown_timeout
            self._ready.notify_all()

    def stop(self) -> None:
        """Deliver what can be delivered until the deadline (see :meth:`begin_stop`), cut the
        posts still in flight, and count every event not delivered as dropped at stop; the
        posting threads have ended when it returns (one still connecting to a host that drops
        packets is named in a warning, its events counted). Idempotent."""
        self.begin_stop()
        with self._stop_lock:
            if self._closed:
                return
            for thread in self._threads:
                thread.join(max(0.0, self._deadline - time.monotonic()))
            self._poster.cut()
            settled_by = time.monotonic() + CUT_GRACE
            for thread in self._threads:
                thread.join(max(0.0, settled_by - time.monotonic()))
            with self._ready:
                self._dropped_at_stop += len(self._pending) + self._in_flight
                self._pending.clear()
                self._in_flight = 0
                self._closed = True
                dropped = self._dropped_at_stop
            self._report_stop(dropped)
            for closing in (self._poster.close, self._sender.stop):
                try:
                    closing()
                except Exception:
                    logger.exception("FeatBit insight sender failed to stop")

    def _report_stop(self, dropped: int) -> None:
        if dropped:
            logger.warning(
                "%d FeatBit insight event(s) dropped at stop: not delivered within %.1f s",
                dropped,
                self._shutdown_timeout,
            )
        running = [thread.name for thread in self._threads if thread.is_alive()]
        if running:
            logger.warning(
                "FeatBit insight thread(s) %s still connecting after stop; their events are "
                "counted as dropped",
                ", ".join(running),
            )

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
                self._poster.deliver(batch, self._settle)
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

    def _too_late(self) -> bool:
        return self._stopping and time.monotonic() >= self._deadline

    def _expire(self, size: int) -> None:
        with self._ready:
            if not self._closed:
                self._in_flight -= size
                self._dropped_at_stop += size

    def _settle_delivered(self, size: int) -> None:
        with self._ready:
            if self._closed:  # counted as dropped at stop already
                return
            self._in_flight -= size
            self._delivered += size
            if self._backoff:
                self._backoff = self._resume_at = 0.0
                self._ready.notify_all()  # the endpoint is back: every worker may post

    def _settle_failed(self, events: list[Any]) -> None:
        with self._ready:
            if self._closed:
                return
            self._in_flight -= len(events)
            self._failed_posts += 1
            if self._too_late():
                self._dropped_at_stop += len(events)
                return
            self._pending.extendleft(reversed(events))
            self._backoff = min(self._max_backoff, max(self._interval, self._backoff * 2))
            self._resume_at = time.monotonic() + self._backoff
            self._ready.notify_all()

    def _reject(self, rejection: InsightRejection) -> None:
        size = rejection.events
        with self._ready:
            if self._closed:
                return
            self._in_flight -= size
            self._rejected += size
        logger.warning("dropped %d FeatBit insight event(s): %s", size, rejection.reason)
        for listener in self.rejection_listeners:
            try:
                listener(rejection)
            except Exception:
                logger.exception("insight rejection listener %r failed", listener)
