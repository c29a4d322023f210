"""The insights endpoint failing or slow, against the FeatBit protocol server on loopback:
evaluations keep their values and never fail, the events held for FeatBit stay within
``events_max_in_queue`` (memory included), an outage's backlog arrives once the endpoint
recovers, and shutting down during an outage drops what it cannot send instead of hanging."""

from __future__ import annotations

import gc
import threading
import tracemalloc
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fbclient.config import WebSocketConfig
from openfeature import api
from openfeature.client import OpenFeatureClient
from openfeature.evaluation_context import EvaluationContext
from openfeature.track import TrackingEventDetails

from featbit_experiments import Experiment, FeatBitProvider, InMemorySink, Metric, UnitPolicy
from featbit_experiments.insights import BoundedEventProcessor
from tests.support import flags as fl
from tests.support.featbit_server import FeatBitTestServer
from tests.support.load import Load, Tally

PLAIN = "answer-cache"
EXPERIMENT = "reply-style"
VARIANTS = {"concise", "detailed"}
POLICY = UnitPolicy(
    [Experiment(EXPERIMENT, "conversation")], metrics=[Metric("resolved", "conversation")]
)
#: What ``FeatBitTestServer.sdk_config`` tunes for fast tests, as ``connect()`` options.
FAST = {
    "streaming_first_retry_delay": 0.1,
    "events_flush_interval": 0.2,
    "websocket": WebSocketConfig(timeout=1.0),
}


class Processors:
    """An ``event_processor_imp`` that builds bounded processors and keeps them for the test."""

    def __init__(self, **options: Any) -> None:
        self.options = options
        self.made: list[BoundedEventProcessor] = []

    def __call__(self, config: Any, sender: Any) -> BoundedEventProcessor:
        processor = BoundedEventProcessor(config, sender, **self.options)
        self.made.append(processor)
        return processor

    @property
    def one(self) -> BoundedEventProcessor:
        assert len(self.made) == 1
        return self.made[0]


@pytest.fixture
def server() -> Iterator[FeatBitTestServer]:
    with FeatBitTestServer() as running:
        running.set_flags(
            [
                fl.flag(PLAIN, ["on", "off"], serve=0),
                fl.flag(EXPERIMENT, sorted(VARIANTS)),
            ]
        )
        yield running


@pytest.fixture
def connect(server: FeatBitTestServer, sink: InMemorySink) -> Iterator[Any]:
    made: list[FeatBitProvider] = []

    def make(**options: Any) -> tuple[FeatBitProvider, OpenFeatureClient]:
        # A short shutdown, so tearing down during an outage does not wait out the default 5 s.
        options.setdefault("event_processor_imp", Processors(shutdown_timeout=0.3))
        provider = FeatBitProvider.connect(
            server.env_secret,
            server.streaming_url,
            server.event_url,
            policy=POLICY,
            sinks=[sink],
            **{**FAST, **options},
        )
        made.append(provider)
        domain = f"insights-{uuid.uuid4().hex[:8]}"
        api.set_provider_and_wait(provider, domain=domain)
        return provider, api.get_client(domain)

    yield make
    for provider in made:
        provider.shutdown()
    api.clear_providers()


def mixed_load(
    client: OpenFeatureClient, tally: Tally, *, threads: int, tasks: int, calls: int
) -> Load:
    """Sync and async evaluations of the ordinary flag (a new user each time, so each one makes
    an insight event) and of the experiment (over 50 conversations)."""

    def call(worker: int, n: int) -> tuple[str, Any]:
        if n % 2:
            conversation = f"c-{(worker + n) % 50}"
            context = EvaluationContext(attributes={"conversationId": conversation})
            return conversation, client.get_string_details(EXPERIMENT, "default", context)
        user = f"u-{worker}-{n}"
        return user, client.get_string_details(PLAIN, "default", EvaluationContext(user))

    async def acall(worker: int, n: int) -> tuple[str, Any]:
        if n % 2:
            conversation = f"c-{(worker + n) % 50}"
            context = EvaluationContext(attributes={"conversationId": conversation})
            return conversation, await client.get_string_details_async(EXPERIMENT, "d", context)
        user = f"a-{worker}-{n}"
        return user, await client.get_string_details_async(PLAIN, "d", EvaluationContext(user))

    return Load(tally, call, acall, threads=threads, tasks=tasks, calls=calls)


def assert_served_correctly(tally: Tally, expected: int) -> None:
    assert tally.exceptions == []
    assert tally.error_codes == {}
    assert tally.served == expected
    assert set(tally.values) <= VARIANTS | {"on"}
    assert tally.units_with_several_values() == {}


def test_connect_sends_insights_through_the_bounded_processor(server: FeatBitTestServer) -> None:
    provider = FeatBitProvider.connect(
        server.env_secret, server.streaming_url, server.event_url, sinks=[], **FAST
    )
    try:
        assert isinstance(provider.client._event_processor, BoundedEventProcessor)
    finally:
        provider.shutdown()


def test_evaluations_keep_their_values_while_insights_fail(
    server: FeatBitTestServer, connect: Any
) -> None:
    server.insights_status = 500
    _, client = connect()
    tally = Tally()
    load = mixed_load(client, tally, threads=4, tasks=20, calls=400).start()
    assert load.join(timeout=60)
    assert_served_correctly(tally, 24 * 400)
    assert server.insights == []  # nothing got through: the endpoint really failed


def test_a_slow_insights_endpoint_neither_fails_nor_holds_up_evaluations(
    server: FeatBitTestServer, connect: Any
) -> None:
    server.insights_delay = 2.0
    _, client = connect()
    tally = Tally()
    load = mixed_load(client, tally, threads=4, tasks=20, calls=200).start()
    assert load.join(timeout=60)  # finishes although every POST takes 2 s
    assert_served_correctly(tally, 24 * 200)


def test_events_held_during_an_outage_never_exceed_events_max_in_queue(
    server: FeatBitTestServer, connect: Any
) -> None:
    server.insights_status = 500
    processors = Processors(shutdown_timeout=0.3)
    _, client = connect(events_max_in_queue=200, event_processor_imp=processors)
    for n in range(2000):
        client.get_string_value(PLAIN, "default", EvaluationContext(f"u-{n}"))
    counts = processors.one.counts()
    assert counts.pending <= 200
    assert counts.accepted + counts.dropped_full == 2000  # every event is accounted for
    assert counts.delivered == 0 and counts.dropped_full >= 1800


def test_memory_held_for_a_failing_endpoint_is_bounded_by_the_queue(
    server: FeatBitTestServer, connect: Any
) -> None:
    server.insights_status = 500
    processors = Processors(shutdown_timeout=0.3)
    _, client = connect(events_max_in_queue=1000, event_processor_imp=processors)
    contexts = [EvaluationContext(f"u-{n}") for n in range(8_000)]
    for context in contexts[:2000]:  # warm-up: fills the queue, builds every cache
        client.get_string_value(PLAIN, "default", context)
    gc.collect()
    # The test server (same process) keeps each request it received, parsed: leave out what
    # its loop allocates, so only the client side is measured.
    not_the_server = [
        tracemalloc.Filter(False, pattern)
        for pattern in ("*featbit_server.py", "*/json/decoder.py", "*/asyncio/*", "*/websockets/*")
    ]
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot().filter_traces(not_the_server)
        for context in contexts[2000:]:
            client.get_string_value(PLAIN, "default", context)
        gc.collect()
        after = tracemalloc.take_snapshot().filter_traces(not_the_server)
    finally:
        tracemalloc.stop()
    growth = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
    counts = processors.one.counts()
    assert counts.pending <= 1000 and counts.dropped_full >= 6_000 - 1000
    # 6,000 more evaluations, all refused by the full queue: nothing of theirs stays alive
    # (fbclient's own processor holds every one of them: about 5 MB in this test).
    assert growth < 500_000


def test_an_outage_backlog_is_delivered_when_the_endpoint_recovers(
    server: FeatBitTestServer, connect: Any
) -> None:
    server.insights_status = 500
    processors = Processors(max_backoff=0.5, shutdown_timeout=0.3)
    _, client = connect(event_processor_imp=processors)
    users = [f"u-{n}" for n in range(300)]
    for user in users:
        client.get_string_value(PLAIN, "default", EvaluationContext(user))
    for n in range(50):
        context = EvaluationContext(attributes={"conversationId": f"c-{n}"})
        client.track("resolved", context, TrackingEventDetails(value=1))
    processor = processors.one
    assert server.wait_for(lambda: processor.counts().failed_posts >= 2)
    assert server.insights == []
    server.insights_status = 200
    assert server.wait_for(lambda: processor.counts().pending == 0, timeout=10)
    counts = processor.counts()
    assert (counts.accepted, counts.delivered, counts.dropped) == (350, 350, 0)
    assert sorted(e.user_key for e in server.flag_events(PLAIN)) == sorted(users)
    assert len(server.metric_events("resolved")) == 50


def test_stopping_during_an_outage_drops_what_it_cannot_send_instead_of_hanging(
    server: FeatBitTestServer, connect: Any
) -> None:
    server.insights_status = 500
    processors = Processors(shutdown_timeout=0.5)
    provider, client = connect(event_processor_imp=processors)
    for n in range(1000):
        client.get_string_value(PLAIN, "default", EvaluationContext(f"u-{n}"))
    stopping = threading.Thread(target=provider.shutdown)
    stopping.start()
    stopping.join(timeout=20)  # generous: a hang, not a duration, is what this catches
    assert not stopping.is_alive()
    counts = processors.one.counts()
    assert counts.pending == 0
    assert counts.dropped_at_stop == counts.accepted - counts.delivered == 1000
