"""Shutting the provider down in every fault, against the FeatBit protocol server on loopback:
the insights' last deliveries and the stream's stop run at once, every insight event is
delivered or counted as dropped (``accepted == delivered + rejected + dropped_at_stop`` once
``shutdown()`` has returned), the dropped ones are a guardrail, and no thread of ours or of
fbclient's is left running. How long each takes is measured in ``benchmarks/bench_shutdown.py``,
not here."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from fbclient.config import WebSocketConfig
from openfeature.evaluation_context import EvaluationContext

from featbit_experiments import Experiment, FeatBitProvider, InMemorySink, UnitPolicy
from featbit_experiments.continuity import InMemoryStore
from featbit_experiments.insights import BoundedEventProcessor, InsightCounts
from featbit_experiments.upkeep import UPKEEP
from tests.support import flags as fl
from tests.support.featbit_server import FeatBitTestServer

FLAG = "answer-cache"
EXPERIMENT = "reply-style"
EVENTS = 500
#: The defaults a service runs with, but a short reconnect delay and flush interval.
OPTIONS = {"streaming_first_retry_delay": 0.1, "events_flush_interval": 0.2}


@pytest.fixture
def server() -> Iterator[FeatBitTestServer]:
    with FeatBitTestServer() as running:
        running.set_flags([fl.flag(FLAG, ["on", "off"], serve=0)])
        yield running


@pytest.fixture
def threads_before() -> set[threading.Thread]:
    return set(threading.enumerate())


@pytest.fixture
def connect(server: FeatBitTestServer, sink: InMemorySink) -> Iterator[Any]:
    made: list[FeatBitProvider] = []

    def make(*, synced: bool = True, **options: Any) -> FeatBitProvider:
        provider = FeatBitProvider.connect(
            server.env_secret,
            server.streaming_url,
            server.event_url,
            sinks=[sink],
            **{**OPTIONS, **options},
        )
        made.append(provider)
        if synced:
            provider.initialize(EvaluationContext())
        return provider

    yield make
    for provider in made:
        provider.shutdown()


def evaluate_new_users(provider: FeatBitProvider, count: int = EVENTS) -> None:
    """One insight event per evaluation: a new user each time."""
    for n in range(count):
        provider.resolve_string_details(FLAG, "default", EvaluationContext(f"user-{n}"))


def insights_of(provider: FeatBitProvider) -> BoundedEventProcessor:
    processor = provider.client._event_processor
    assert isinstance(processor, BoundedEventProcessor)
    return processor


def left_running(before: set[threading.Thread]) -> list[str]:
    return sorted(t.name for t in threading.enumerate() if t not in before and t.is_alive())


def assert_every_event_accounted_for(counts: InsightCounts) -> None:
    assert counts.pending == 0
    assert counts.accepted == counts.delivered + counts.rejected + counts.dropped_at_stop


def test_with_a_healthy_endpoint_shutdown_delivers_every_event_and_leaves_no_thread(
    server: FeatBitTestServer, connect: Any, sink: InMemorySink, threads_before: set[Any]
) -> None:
    provider = connect()
    evaluate_new_users(provider)
    provider.shutdown()
    counts = insights_of(provider).counts()
    assert (counts.accepted, counts.delivered, counts.dropped_at_stop) == (EVENTS, EVENTS, 0)
    assert len(server.flag_events(FLAG)) == EVENTS
    assert sink.guardrails("insights_dropped") == []
    assert left_running(threads_before) == []


@pytest.mark.parametrize("status", [500, 429])
def test_with_a_failing_endpoint_shutdown_counts_every_held_event_as_dropped(
    server: FeatBitTestServer, connect: Any, threads_before: set[Any], status: int
) -> None:
    server.insights_status = status
    provider = connect()
    evaluate_new_users(provider)
    processor = insights_of(provider)
    assert server.wait_for(lambda: processor.counts().failed_posts >= 1)
    provider.shutdown()
    counts = processor.counts()
    assert_every_event_accounted_for(counts)
    assert (counts.accepted, counts.delivered, counts.dropped_at_stop) == (EVENTS, 0, EVENTS)
    assert left_running(threads_before) == []


def test_with_a_hanging_endpoint_shutdown_cuts_the_posts_in_flight_and_counts_their_events(
    server: FeatBitTestServer, connect: Any, threads_before: set[Any]
) -> None:
    server.insights_hanging = True
    provider = connect()
    evaluate_new_users(provider)
    processor = insights_of(provider)
    processor.flush()
    assert server.wait_for(lambda: server.hanging_posts >= 1)
    provider.shutdown()
    counts = processor.counts()
    assert_every_event_accounted_for(counts)
    assert (counts.accepted, counts.delivered, counts.dropped_at_stop) == (EVENTS, 0, EVENTS)
    assert left_running(threads_before) == []


def test_events_dropped_at_shutdown_are_recorded_as_a_guardrail(
    server: FeatBitTestServer, connect: Any, sink: InMemorySink
) -> None:
    server.insights_hanging = True
    provider = connect()
    evaluate_new_users(provider)
    provider.shutdown()
    [dropped] = sink.guardrails("insights_dropped")
    assert (dropped["events"], dropped["accepted"], dropped["delivered"]) == (EVENTS, EVENTS, 0)


def test_events_dropped_at_shutdown_are_logged(
    server: FeatBitTestServer, connect: Any, caplog: pytest.LogCaptureFixture
) -> None:
    server.insights_status = 500
    provider = connect()
    evaluate_new_users(provider)
    with caplog.at_level("WARNING", logger="featbit_experiments"):
        provider.shutdown()
    assert f"{EVENTS} FeatBit insight event(s) dropped at stop" in caplog.text


@pytest.mark.parametrize("synced_first", [True, False], ids=["after-sync", "from-the-start"])
def test_with_a_stalled_stream_shutdown_ends_the_streaming_thread(
    server: FeatBitTestServer, connect: Any, threads_before: set[Any], synced_first: bool
) -> None:
    if synced_first:
        provider = connect()
        assert server.stall_streaming() == 1
    else:
        server.stall_streaming()  # accepts the WebSocket, never answers the data sync
        provider = connect(synced=False)
        assert server.wait_for(lambda: server.connection_count == 1)
    evaluate_new_users(provider, 50)
    provider.shutdown()
    assert left_running(threads_before) == []
    assert_every_event_accounted_for(insights_of(provider).counts())


def test_a_slow_websocket_timeout_does_not_hold_up_shutdown_of_a_stalled_stream(
    server: FeatBitTestServer, connect: Any, threads_before: set[Any]
) -> None:
    provider = connect(websocket=WebSocketConfig(timeout=10.0))  # fbclient's longest
    server.stall_streaming()
    provider.shutdown()
    assert left_running(threads_before) == []


def provider_with_a_unit(make_provider: Any, **options: Any) -> FeatBitProvider:
    """An offline provider whose ledger holds one conversation's assignment."""
    policy = UnitPolicy([Experiment(EXPERIMENT, "conversation")])
    provider = make_provider([fl.flag(EXPERIMENT, ["a", "b"])], policy, **options)
    context = EvaluationContext(attributes={"conversationId": "c-1"})
    provider.resolve_string_details(EXPERIMENT, "default", context)
    return provider


def test_shutdown_closes_the_store_the_provider_built(make_provider: Any) -> None:
    provider = provider_with_a_unit(make_provider)
    store = provider.store
    assert isinstance(store, InMemoryStore) and len(store) == 1
    provider.shutdown()
    assert len(store) == 0
    assert store not in UPKEEP.owners()


def test_shutdown_leaves_a_store_it_was_given_open(make_provider: Any) -> None:
    store = InMemoryStore()
    provider = provider_with_a_unit(make_provider, store=store)
    provider.shutdown()
    assert len(store) == 1
    assert store in UPKEEP.owners()
    store.close()


def test_shutdown_ends_every_periodic_task_of_the_ledger_the_exposures_and_the_store(
    make_provider: Any,
) -> None:
    provider = provider_with_a_unit(make_provider)
    ledger = provider.resolver.ledger
    assert ledger is not None
    recovery = ledger.recovery
    mine = [provider.store, provider.exposures, recovery, *vars(recovery).values()]
    assert provider.exposures in UPKEEP.owners()
    provider.shutdown()
    assert not [owner for owner in UPKEEP.owners() if any(owner is m for m in mine)]
