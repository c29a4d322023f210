"""Reliability under faults: for each fault, how long it ran, how many evaluations were served,
how many errors reached the callers, evaluation latency, what happened to the insight events
(delivered to FeatBit versus dropped) and the process's memory before and after.

Every scenario runs mixed load through the real OpenFeature client: threads calling the sync
API and asyncio tasks calling the async API at once (``tests/support/load.py``). The FeatBit
test server runs in a child process (``tests/support/featbit_server_process.py``) so it neither
competes with the client for the GIL nor shows up in its memory; Redis is a throwaway
``redis-server``. Memory is the resident set (RSS) of this process, read from ``/proc``.

Run alone with ``python -m benchmarks.bench_reliability``: it prints the Markdown table pasted
into ``docs/reliability.md``.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import multiprocessing
import os
import platform
import tempfile
import threading
import time
import uuid
from array import array
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import redis
from fbclient.config import WebSocketConfig
from fbclient.data_storage import InMemoryDataStorage
from fbclient.event_processor import DefaultEventProcessor
from openfeature import api
from openfeature.client import OpenFeatureClient
from openfeature.evaluation_context import EvaluationContext
from openfeature.event import EventDetails, ProviderEvent
from openfeature.exception import OpenFeatureError
from openfeature.track import TrackingEventDetails

from benchmarks._report import Row
from featbit_experiments import (
    BoundedEventProcessor,
    Experiment,
    FeatBitProvider,
    InMemorySink,
    Metric,
    UnitPolicy,
)
from featbit_experiments.continuity import RedisStore
from tests.support import flags as fl
from tests.support.featbit_server_process import FeatBitServerProcess
from tests.support.load import Load, Tally
from tests.support.redis_server import ThrowawayRedis

PLAIN = "answer-cache"
EXPERIMENT = "reply-style"
POLICY = UnitPolicy(
    [Experiment(EXPERIMENT, "conversation")], metrics=[Metric("resolved", "conversation")]
)
FLAGS = [fl.flag(PLAIN, ["on", "off"], serve=0), fl.flag(EXPERIMENT, ["concise", "detailed"])]
CONVERSATIONS = 2_000
LOAD_SECONDS = 5.0
THREADS, TASKS = 4, 50
#: Longest wait for the SDK to reconnect (its backoff reaches 60 s).
RECONNECT = 75.0
#: As ``FeatBitTestServer.sdk_config`` tunes the SDK for loopback.
FAST = {
    "streaming_first_retry_delay": 0.1,
    "events_flush_interval": 0.2,
    "websocket": WebSocketConfig(timeout=1.0),
}


@dataclass
class FaultRun:
    """One row of the reliability table."""

    fault: str
    seconds: float = 0.0
    served: int = 0
    exceptions: int = 0
    error_results: int = 0
    p50_us: float = 0.0
    p99_us: float = 0.0
    events_sent: int | None = None
    events_delivered: int | None = None
    events_dropped: int | None = None
    rss_before_mb: float = 0.0
    rss_after_mb: float = 0.0
    notes: list[str] = field(default_factory=list)


# -- measurement helpers -------------------------------------------------------------------


def rss_mb() -> float:
    with open("/proc/self/statm", encoding="ascii") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


class Latencies:
    """Per-call wall time of every evaluation, 8 bytes each (``array.append`` holds the GIL)."""

    def __init__(self) -> None:
        self.ns = array("q")

    def sync(self, call: Callable[[int, int], tuple[str, Any]]) -> Callable[[int, int], Any]:
        def timed(worker: int, n: int) -> tuple[str, Any]:
            start = time.perf_counter_ns()
            try:
                return call(worker, n)
            finally:
                self.ns.append(time.perf_counter_ns() - start)

        return timed

    def asynchronous(self, call: Callable[[int, int], Any]) -> Callable[[int, int], Any]:
        async def timed(worker: int, n: int) -> tuple[str, Any]:
            start = time.perf_counter_ns()
            try:
                result: tuple[str, Any] = await call(worker, n)
                return result
            finally:
                self.ns.append(time.perf_counter_ns() - start)

        return timed

    def percentile(self, q: float) -> float:
        ordered = sorted(self.ns)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1000 if ordered else 0.0


def mixed_calls(
    client: OpenFeatureClient, *, metrics: bool = True
) -> tuple[Callable[[int, int], Any], Callable[[int, int], Any]]:
    """Half ordinary-flag evaluations for a new user each (one insight event each), half
    experiment evaluations over 2,000 conversations; every 20th call also tracks an outcome."""

    def plan(worker: int, n: int) -> tuple[bool, str, EvaluationContext]:
        if n % 2:
            conversation = f"c-{(worker * 7_919 + n) % CONVERSATIONS}"
            return (
                True,
                conversation,
                EvaluationContext(attributes={"conversationId": conversation}),
            )
        user = f"u-{worker}-{n}-{uuid.uuid4().hex[:6]}"
        return False, user, EvaluationContext(user)

    # Ordinary-flag results are tallied under the flag key, not per user, so the tally stays
    # small and the memory measured is the provider's.
    def call(worker: int, n: int) -> tuple[str, Any]:
        is_experiment, unit, context = plan(worker, n)
        details = client.get_string_details(EXPERIMENT if is_experiment else PLAIN, "d", context)
        if metrics and is_experiment and n % 20 == 1:
            client.track("resolved", context, TrackingEventDetails(value=1))
        return (unit if is_experiment else PLAIN), details

    async def acall(worker: int, n: int) -> tuple[str, Any]:
        is_experiment, unit, context = plan(worker + 1_000, n)
        flag = EXPERIMENT if is_experiment else PLAIN
        return (unit if is_experiment else PLAIN), await client.get_string_details_async(
            flag, "d", context
        )

    return call, acall


@contextmanager
def measured(
    run: FaultRun,
    client: OpenFeatureClient,
    *,
    calls_pair: tuple[Callable[[int, int], Any], Callable[[int, int], Any]] | None = None,
    threads: int = THREADS,
    tasks: int = TASKS,
    thread_calls: int | None = None,
    task_calls: int | None = None,
) -> Iterator[Tally]:
    """Runs mixed load for the body of the ``with`` (or, with call counts, until every worker
    is done) and fills ``run`` from what the callers saw."""
    tally, latencies = Tally(), Latencies()
    call, acall = calls_pair or mixed_calls(client)
    loads = [
        Load(tally, latencies.sync(call), threads=threads, calls=thread_calls),
        Load(tally, async_call=latencies.asynchronous(acall), threads=0, tasks=tasks,
             calls=task_calls),
    ]  # fmt: skip
    counted = thread_calls is not None
    run.rss_before_mb = rss_mb()
    start = time.perf_counter()
    for load in loads:
        load.start()
    try:
        yield tally
    finally:
        finished = [load.join(600) if counted else load.stop(timeout=60) for load in loads]
        run.seconds = time.perf_counter() - start
        if not all(finished):
            run.notes.append("workers still running after the timeout (hang)")
    run.served = tally.served
    run.exceptions = len(tally.exceptions)
    run.error_results = sum(tally.error_codes.values())
    if tally.error_codes:
        run.notes.append(", ".join(f"{code} x{count}" for code, count in tally.error_codes.items()))
    run.p50_us, run.p99_us = latencies.percentile(0.5), latencies.percentile(0.99)


class CountingSink:
    """Counts the provider's events by kind and guardrail name, keeping none of them (an
    in-memory sink would hold every guardrail and show up in the memory measured)."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def emit(self, event: Mapping[str, Any]) -> None:
        self.counts[str(event.get("guardrail") or event.get("event"))] += 1


def connect(
    server: FeatBitServerProcess, sink: CountingSink | None = None, **options: Any
) -> tuple[FeatBitProvider, Any]:
    provider = FeatBitProvider.connect(
        server.env_secret,
        server.streaming_url,
        server.event_url,
        policy=POLICY,
        sinks=[sink or CountingSink()],
        **{**FAST, **options},
    )
    domain = f"bench-reliability-{uuid.uuid4().hex[:8]}"
    with contextlib.suppress(OpenFeatureError):  # not ready: defaults now, READY later
        api.set_provider_and_wait(provider, domain=domain)
    return provider, api.get_client(domain)


def wait(predicate: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


# -- scenarios -------------------------------------------------------------------------------


class Processors:
    """``event_processor_imp`` keeping the bounded processor it built, to read its counts."""

    def __init__(self, **options: Any) -> None:
        self.options = options
        self.made: list[BoundedEventProcessor] = []

    def __call__(self, config: Any, sender: Any) -> BoundedEventProcessor:
        self.made.append(BoundedEventProcessor(config, sender, **self.options))
        return self.made[-1]


def insights(
    fault: str, status: int = 200, delay: float = 0.0, *, one_thread: bool = False
) -> FaultRun:
    """Insights endpoint answering ``status`` after ``delay`` during the load, then healthy.

    ``one_thread``: 20,000 evaluations from a single thread instead of the saturating mixed
    load, so the latency measured is the evaluation's own and not a wait for a busy CPU.
    """
    run = FaultRun(fault)
    with FeatBitServerProcess(FLAGS) as server:
        server.control.set_insights(status, delay)
        processors = Processors(max_backoff=2.0)
        provider, client = connect(server, event_processor_imp=processors)
        processor = processors.made[0]
        held = [0]

        def sample() -> None:
            while not stopped.is_set():
                held[0] = max(held[0], processor.counts().pending)
                time.sleep(0.02)

        stopped = threading.Event()
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        if one_thread:
            pair = mixed_calls(client, metrics=False)
            with measured(run, client, calls_pair=pair, threads=1, tasks=0, thread_calls=20_000):
                pass  # the thread runs its count to the end
        else:
            with measured(run, client):
                time.sleep(LOAD_SECONDS)
        stopped.set()
        sampler.join()
        server.control.set_insights(200, 0.0)  # the endpoint recovers
        recovered = time.perf_counter()
        wait(lambda: processor.counts().pending == 0, timeout=30)
        drained = time.perf_counter() - recovered
        provider.shutdown()
        run.rss_after_mb = rss_mb()
        counts = processor.counts()
        delivered = server.control.delivered()
    run.events_sent = counts.accepted + counts.dropped_full
    run.events_delivered = delivered["flag_events"] + delivered["metric_events"]
    run.events_dropped = counts.dropped
    run.notes.append(
        f"at most {held[0]:,} events held (bound {processor.capacity:,}); "
        f"{counts.dropped_full:,} refused while full, {counts.dropped_at_stop:,} at stop; "
        f"backlog delivered {drained:.1f} s after recovery; {counts.failed_posts} failed POSTs"
    )
    return run


class _CountingDefaultProcessor(DefaultEventProcessor):  # type: ignore[misc]
    """fbclient's own processor, counting the events it is handed."""

    handed = 0

    def send_event(self, event: Any) -> None:
        if event is not None and event.is_send_event:
            _CountingDefaultProcessor.handed += 1
        super().send_event(event)


def insights_failing_with_fbclient_processor(recovers: bool) -> FaultRun:
    """The same failing endpoint with fbclient's DefaultEventProcessor, what the fix replaced:
    either the endpoint recovers before shutdown (what is delivered then), or shutdown comes
    while it still fails (how long ``stop()`` blocks)."""
    then = "recovers" if recovers else "still failing at shutdown"
    run = FaultRun(f"insights 500, {then}: fbclient's own processor (before the fix)")
    _CountingDefaultProcessor.handed = 0
    with FeatBitServerProcess(FLAGS) as server:
        server.control.set_insights(500, 0.0)
        provider, client = connect(server, event_processor_imp=_CountingDefaultProcessor)
        with measured(run, client):
            time.sleep(LOAD_SECONDS)
        run.rss_after_mb = rss_mb()
        if recovers:
            server.control.set_insights(200, 0.0)
            delivered_so_far = -1
            while delivered_so_far != server.control.delivered()["flag_events"]:
                delivered_so_far = server.control.delivered()["flag_events"]
                time.sleep(1.0)  # until a second passes with nothing more delivered
        stopping = threading.Thread(target=provider.shutdown, daemon=True)
        started = time.perf_counter()
        stopping.start()
        stopping.join(60.0)
        if stopping.is_alive():
            run.notes.append("shutdown() still blocked after 60 s")
            server.control.set_insights(200, 0.0)  # let it finish
            stopping.join(300.0)
        run.notes.append(f"shutdown() took {time.perf_counter() - started:.1f} s")
        delivered = server.control.delivered()
    run.events_sent = _CountingDefaultProcessor.handed
    run.events_delivered = delivered["flag_events"] + delivered["metric_events"]
    run.events_dropped = run.events_sent - run.events_delivered
    run.notes.append(
        "no bound: every event stays in memory until its POST is tried, and a batch that "
        "fails twice is dropped"
    )
    return run


def stream_flapping() -> FaultRun:
    run = FaultRun(
        "FeatBit stream dropped 6 times (3 outages of 0.5 s, 3 cuts), server comparing "
        "updatedAt in microseconds"
    )
    with FeatBitServerProcess(FLAGS) as server:
        provider, client = connect(server, streaming_first_retry_delay=0.05)
        seen: dict[ProviderEvent, int] = {ProviderEvent.PROVIDER_STALE: 0}
        ready = threading.Event()

        def on_event(kind: ProviderEvent) -> Callable[[EventDetails], None]:
            def count(details: EventDetails) -> None:
                seen[kind] = seen.get(kind, 0) + 1
                if kind == ProviderEvent.PROVIDER_READY:
                    ready.set()

            return count

        for kind in (ProviderEvent.PROVIDER_STALE, ProviderEvent.PROVIDER_READY):
            client.add_handler(kind, on_event(kind))
        reconnects: list[float] = []
        with measured(run, client, calls_pair=mixed_calls(client, metrics=False)) as tally:
            for flap in range(6):
                wait(lambda: server.control.connection_count() == 1, timeout=RECONNECT)
                ready.clear()
                if flap % 2 == 0:
                    server.control.pause_streaming(1011 if flap % 4 == 0 else None)
                    time.sleep(0.5)
                    server.control.resume_streaming()
                else:
                    server.control.drop_connections(1011)
                back = time.perf_counter()
                wait(ready.is_set, timeout=RECONNECT)
                reconnects.append(time.perf_counter() - back)
            wait(lambda: server.control.connection_count() == 1, timeout=RECONNECT)
            server.control.push_flag(fl.flag(PLAIN, ["on", "off"], serve=1, version=2))
            applied = wait(
                lambda: client.get_string_value(PLAIN, "d", EvaluationContext("x")) == "off", 10
            )
        plain_values = tally.by_unit[PLAIN]
        provider.shutdown()
        run.rss_after_mb = rss_mb()
    run.notes.append(
        f"STALE x{seen[ProviderEvent.PROVIDER_STALE]}, READY x"
        f"{seen.get(ProviderEvent.PROVIDER_READY, 0) - 1} after reconnects, which took "
        f"{', '.join(f'{r:.1f}' for r in reconnects)} s (fbclient doubles its reconnect delay "
        "each time, up to 60 s, until a connection has lasted 60 s); values served "
        f"{sorted(plain_values)}; the patch pushed after the last reconnect applied: {applied}"
    )
    return run


def reconnect_with_fbclients_storage() -> FaultRun:
    """One drop against a microsecond server, with fbclient's store as shipped: it refuses the
    flag the server sends again, so the provider stays STALE (what the provider now fixes)."""
    run = FaultRun(
        "stream dropped once, server comparing updatedAt in microseconds: fbclient's own "
        "store (before the fix)"
    )
    storage = InMemoryDataStorage()
    storage._accepts_resent_versions = True  # type: ignore[attr-defined]  # skip the fix
    with FeatBitServerProcess(FLAGS) as server:
        provider, client = connect(server, data_storage=storage)
        with measured(run, client, calls_pair=mixed_calls(client, metrics=False)):
            time.sleep(0.5)
            server.control.drop_connections(1011)
            back = wait(lambda: server.control.connection_count() == 1, timeout=RECONNECT)
            ready = wait(lambda: client.get_provider_status().value == "READY", timeout=10)
            status = client.get_provider_status().value
            server.control.push_flag(fl.flag(PLAIN, ["on", "off"], serve=1, version=2))
            after_change = wait(lambda: client.get_provider_status().value == "READY", 10)
        provider.shutdown()
        run.rss_after_mb = rss_mb()
    run.notes.append(
        f"reconnected: {back}; READY within 10 s of it: {ready} (status {status}); READY once "
        f"a flag changed: {after_change}"
    )
    return run


def poison() -> FaultRun:
    """The issue's measurement: a NaN, an infinity and a value beyond float32 tracked among
    1,000 ordinary outcomes, plus one evaluation whose attribute FeatBit's binding rejects (an
    unpaired surrogate: the whole POST is a 400), from one thread."""
    run = FaultRun(
        "poison: NaN, inf and 1e39 tracked, and 1 attribute FeatBit rejects, among 1,000 "
        "outcomes and 1,000 evaluations"
    )
    sink = CountingSink()
    bad = {100: math.nan, 500: math.inf, 900: 1e39}
    with FeatBitServerProcess(FLAGS) as server:
        processors = Processors()
        provider, client = connect(server, sink, event_processor_imp=processors)
        processor = processors.made[0]
        run.rss_before_mb = rss_mb()
        latencies: list[float] = []
        start = time.perf_counter()
        for n in range(1_000):
            context = EvaluationContext(attributes={"conversationId": f"c-{n}"})
            try:
                if n in bad:
                    client.track("resolved", context, TrackingEventDetails(value=bad[n]))
                client.track("resolved", context, TrackingEventDetails(value=float(n)))
                note = "bad \udc80" if n == 321 else "ok"
                began = time.perf_counter()
                details = client.get_string_details(
                    PLAIN, "d", EvaluationContext(f"u-{n}", {"note": note})
                )
                latencies.append(time.perf_counter() - began)
                run.served += 1
                run.error_results += details.error_code is not None
            except Exception:
                run.exceptions += 1
        wait(lambda: processor.counts().delivered + processor.counts().rejected >= 2_000, 30)
        run.seconds = time.perf_counter() - start
        counts = processor.counts()
        delivered = server.control.delivered()
        provider.shutdown()
        run.rss_after_mb = rss_mb()
    latencies.sort()
    run.p50_us = latencies[len(latencies) // 2] * 1e6
    run.p99_us = latencies[int(len(latencies) * 0.99)] * 1e6
    run.events_sent = counts.offered
    run.events_delivered = delivered["flag_events"] + delivered["metric_events"]
    run.events_dropped = counts.dropped
    run.notes.append(
        f"{sink.counts['invalid_metric_value']} invalid_metric_value guardrails (refused in "
        f"track(), no event made); {counts.rejected} event rejected by FeatBit, isolated by "
        f"splitting its batch ({delivered['posts_failed']} POSTs answered 400), "
        f"{sink.counts['insights_rejected']} insights_rejected guardrail; "
        f"{counts.failed_posts} transient failures, {counts.pending} still held. Before the "
        "fix one NaN put its batch back at the head of the queue for good: 0 of 21 later "
        "events were delivered"
    )
    return run


def server_absent_at_start() -> FaultRun:
    run = FaultRun("FeatBit server absent at start, up after 2 s")
    sink = CountingSink()
    with FeatBitServerProcess(FLAGS) as server:
        server.control.stop()
        provider, client = connect(server, sink, ready_timeout=0.5)
        with measured(run, client, calls_pair=mixed_calls(client, metrics=False)):
            time.sleep(2.0)
            server.control.start()
            up = time.perf_counter()
            wait(lambda: provider.client.initialize, timeout=30)
            to_ready = time.perf_counter() - up
            time.sleep(2.0)
        provider.shutdown()
        run.rss_after_mb = rss_mb()
    run.notes.append(
        f"the error results are the PROVIDER_NOT_READY defaults; READY {to_ready:.1f} s after "
        "the server came up (fbclient's reconnect backoff grew while it was down); "
        f"{sink.counts['provider_not_ready']:,} provider_not_ready guardrails (throttled)"
    )
    return run


def redis_faults() -> FaultRun:
    run = FaultRun("Redis paused 60 ms and 400 ms, paused for writes, stopped 1 s, restarted")
    sink = InMemorySink()
    recoveries = _RecoveryLog()
    logging.getLogger("featbit_experiments").addHandler(recoveries)
    flag_path = _bootstrap()
    with ThrowawayRedis() as server:
        store = RedisStore(server.url, key_prefix=f"bench-{uuid.uuid4().hex[:8]}:")
        provider = FeatBitProvider.offline(flag_path, policy=POLICY, sinks=[sink], store=store)
        domain = f"bench-reliability-{uuid.uuid4().hex[:8]}"
        api.set_provider_and_wait(provider, domain=domain)
        client = api.get_client(domain)
        admin = redis.Redis.from_url(server.url)
        pause: Callable[..., Any] = admin.execute_command
        with measured(run, client, calls_pair=mixed_calls(client, metrics=False)) as tally:
            time.sleep(1.0)
            pause("CLIENT", "PAUSE", "60", "ALL")  # slow, within the store's 100 ms timeout
            time.sleep(0.5)
            pause("CLIENT", "PAUSE", "400", "ALL")  # stalled past it
            time.sleep(1.0)
            pause("CLIENT", "PAUSE", "400", "WRITE")  # reads answer, the ledger's writes wait
            time.sleep(1.0)
            admin.close()
            server.stop()
            time.sleep(1.0)
            server.start()
            time.sleep(1.5)
        outages = sink.guardrails("store_unavailable")
        provider.shutdown()
        store.close()
        run.rss_after_mb = rss_mb()
    suppressed = sum(int(g.get("suppressed") or 0) for g in outages) + recoveries.suppressed
    mixed = len(tally.units_with_several_values())
    run.notes.append(
        f"{len(outages) + suppressed:,} evaluations went on without the ledger (FeatBit alone), "
        f"reported as {len(outages)} rate-limited store_unavailable guardrails; "
        f"{mixed} of {CONVERSATIONS} conversations saw a second variant (FeatBit alone during "
        "the outage serves the same hash, so none should)"
    )
    return run


class _RecoveryLog(logging.Handler):
    """Adds up the outage reports the ledger suppressed, from its "store is back" warnings."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.suppressed = 0

    def emit(self, record: logging.LogRecord) -> None:
        if record.msg.startswith("assignment store is back") and record.args:
            self.suppressed += int(record.args[0])  # type: ignore[index, call-overload]


def soak() -> FaultRun:
    """100,000 evaluations: 8 threads x 6,250 and 200 tasks x 250, over 2,000 conversations."""
    run = FaultRun("soak: 100,000 evaluations, 8 threads + 200 tasks, no fault")
    provider = FeatBitProvider.offline(_bootstrap(), policy=POLICY, sinks=[CountingSink()])
    domain = f"bench-reliability-{uuid.uuid4().hex[:8]}"
    api.set_provider_and_wait(provider, domain=domain)
    client = api.get_client(domain)

    def context(conversation: int) -> tuple[str, EvaluationContext]:
        conversation_id = f"conv-{conversation}"
        return conversation_id, EvaluationContext(
            f"user-{conversation % 500}", {"conversationId": conversation_id}
        )

    def call(worker: int, n: int) -> tuple[str, Any]:
        conversation_id, ctx = context((worker * 7_919 + n * 13) % CONVERSATIONS)
        return conversation_id, client.get_string_details(EXPERIMENT, "d", ctx)

    async def acall(worker: int, n: int) -> tuple[str, Any]:
        conversation_id, ctx = context((worker * 104_729 + n * 17) % CONVERSATIONS)
        return conversation_id, await client.get_string_details_async(EXPERIMENT, "d", ctx)

    with measured(
        run,
        client,
        calls_pair=(call, acall),
        threads=8,
        tasks=200,
        thread_calls=6_250,
        task_calls=250,
    ) as tally:
        pass  # the workers run their counts to the end
    run.rss_after_mb = rss_mb()
    provider.shutdown()
    run.notes.append(
        f"cross-talk: {tally.foreign} results for another conversation, "
        f"{len(tally.units_with_several_values())} conversations with two variants"
    )
    return run


def _bootstrap() -> Path:
    path = Path(tempfile.mkdtemp()) / "reliability.json"
    path.write_text(fl.bootstrap_json(FLAGS), encoding="utf-8")
    return path


# -- report ----------------------------------------------------------------------------------


SCENARIOS: list[Callable[[], FaultRun]] = [
    functools.partial(insights, "one thread, insights healthy", one_thread=True),
    functools.partial(insights, "one thread, insights answering 500", 500, one_thread=True),
    functools.partial(insights, "one thread, insights taking 2 s", delay=2.0, one_thread=True),
    functools.partial(insights, "insights healthy (baseline)"),
    functools.partial(insights, "insights endpoint answering 500", status=500),
    functools.partial(insights, "insights endpoint taking 2 s per POST", delay=2.0),
    stream_flapping,
    reconnect_with_fbclients_storage,
    poison,
    server_absent_at_start,
    redis_faults,
    soak,
    functools.partial(insights_failing_with_fbclient_processor, recovers=True),
    functools.partial(insights_failing_with_fbclient_processor, recovers=False),
]


def _child(scenario: Callable[[], FaultRun], results: Connection) -> None:
    try:
        results.send(scenario())
    finally:
        results.close()
        os._exit(0)  # leftover daemon threads (a blocked SDK thread) must not keep it alive


def isolated(scenario: Callable[[], FaultRun]) -> FaultRun:
    """Run one scenario in a forked process, so its memory numbers are its own and nothing
    it leaves running (SDK threads, a stuck shutdown) touches the next one."""
    context = multiprocessing.get_context("fork")
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(target=_child, args=(scenario, sender))
    process.start()
    sender.close()
    try:
        result: FaultRun = receiver.recv()
    except EOFError:
        result = FaultRun(getattr(scenario, "__name__", str(scenario)), notes=["crashed"])
    process.join(30)
    return result


def measure() -> list[FaultRun]:
    return [isolated(scenario) for scenario in SCENARIOS]


def _events(run: FaultRun) -> str:
    if run.events_sent is None:
        return "n/a (offline or none)"
    return f"{run.events_delivered:,} / {run.events_dropped:,} of {run.events_sent:,}"


def markdown(runs: list[FaultRun]) -> str:
    load = os.getloadavg()
    lines = [
        f"Measured {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC on {platform.node()} "
        f"({os.cpu_count()} cores, Python {platform.python_version()}), load average "
        f"{load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f} at the end.",
        "",
        "| fault | ran (s) | evaluations served | exceptions to callers | error results "
        "| p50 / p99 (us) | events delivered / dropped of sent | RSS before -> after (MB) |",
        "|---|---:|---:|---:|---:|---:|---|---|",
    ]
    for run in runs:
        lines.append(
            f"| {run.fault} | {run.seconds:.1f} | {run.served:,} | {run.exceptions} "
            f"| {run.error_results:,} | {run.p50_us:,.0f} / {run.p99_us:,.0f} | {_events(run)} "
            f"| {run.rss_before_mb:.0f} -> {run.rss_after_mb:.0f} |"
        )
    lines.append("")
    lines.extend(f"- **{run.fault}**: {'; '.join(run.notes)}" for run in runs if run.notes)
    return "\n".join(lines)


def run() -> list[Row]:
    return [
        Row(
            name=r.fault[:58],
            value=float(r.served),
            unit="evals",
            note=(
                f"{r.seconds:.1f} s, {r.exceptions} exceptions, {r.error_results} error results, "
                f"p50/p99 {r.p50_us:.0f}/{r.p99_us:.0f} us, events {_events(r)}, "
                f"RSS {r.rss_before_mb:.0f}->{r.rss_after_mb:.0f} MB"
            ),
        )
        for r in measure()
    ]


if __name__ == "__main__":
    print(markdown(measure()))
