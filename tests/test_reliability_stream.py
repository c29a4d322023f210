"""The FeatBit stream dropped again and again while threads and asyncio tasks evaluate: every
evaluation is served from the last data, each drop is STALE and each reconnect READY, and a
flag change pushed after the last reconnect is applied. (The single-drop basics are in
test_provider_online.py.)"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fbclient.config import WebSocketConfig
from openfeature import api
from openfeature.client import OpenFeatureClient
from openfeature.evaluation_context import EvaluationContext
from openfeature.event import EventDetails, ProviderEvent
from openfeature.exception import ProviderNotReadyError
from openfeature.provider import ProviderStatus

from featbit_experiments import Experiment, FeatBitProvider, InMemorySink, UnitPolicy
from tests.support import flags as fl
from tests.support.featbit_server import FeatBitTestServer
from tests.support.load import Load, Tally

PLAIN = "answer-cache"
EXPERIMENT = "reply-style"
VARIANTS = {"concise", "detailed"}
POLICY = UnitPolicy([Experiment(EXPERIMENT, "conversation")])
READY, STALE = ProviderEvent.PROVIDER_READY, ProviderEvent.PROVIDER_STALE
#: fbclient doubles its reconnect delay on every reconnect and failed attempt (up to 60 s, reset
#: after 60 s connected), so after a few flaps a reconnect can take seconds: wait generously.
RECONNECT = 60.0


class ProviderEvents:
    """Counts the provider events one OpenFeature domain delivers."""

    def __init__(self, client: OpenFeatureClient) -> None:
        self._counts: Counter[ProviderEvent] = Counter()
        self._changed = threading.Condition()
        for kind in (READY, STALE):
            client.add_handler(kind, self._handler(kind))

    def _handler(self, kind: ProviderEvent) -> Callable[[EventDetails], None]:
        def on_event(details: EventDetails) -> None:
            with self._changed:
                self._counts[kind] += 1
                self._changed.notify_all()

        return on_event

    def count(self, kind: ProviderEvent) -> int:
        with self._changed:
            return self._counts[kind]

    def wait_for(self, kind: ProviderEvent, count: int, timeout: float = RECONNECT) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: self._counts[kind] >= count, timeout)


@pytest.fixture
def server() -> Iterator[FeatBitTestServer]:
    with FeatBitTestServer() as running:
        running.set_flags(
            [fl.flag(PLAIN, ["v1", "v2"], serve=0), fl.flag(EXPERIMENT, sorted(VARIANTS))]
        )
        yield running


@pytest.fixture
def online(
    server: FeatBitTestServer, sink: InMemorySink
) -> Iterator[tuple[OpenFeatureClient, ProviderEvents]]:
    provider = FeatBitProvider.connect(
        server.env_secret,
        server.streaming_url,
        server.event_url,
        policy=POLICY,
        sinks=[sink],
        streaming_first_retry_delay=0.05,
        events_flush_interval=0.2,
        websocket=WebSocketConfig(timeout=1.0),
    )
    domain = f"stream-{uuid.uuid4().hex[:8]}"
    client = api.get_client(domain)
    events = ProviderEvents(client)
    api.set_provider_and_wait(provider, domain=domain)
    yield client, events
    provider.shutdown()
    api.clear_providers()


def evaluations(client: OpenFeatureClient, tally: Tally, **options: Any) -> Load:
    """Threads and tasks evaluating the ordinary flag and the experiment over 40 conversations."""

    def call(worker: int, n: int) -> tuple[str, Any]:
        conversation = f"c-{(worker * 5 + n) % 40}"
        if n % 2:
            context = EvaluationContext(attributes={"conversationId": conversation})
            return conversation, client.get_string_details(EXPERIMENT, "default", context)
        return PLAIN, client.get_string_details(PLAIN, "default", EvaluationContext(conversation))

    async def acall(worker: int, n: int) -> tuple[str, Any]:
        conversation = f"c-{(worker * 3 + n) % 40}"
        if n % 2:
            context = EvaluationContext(attributes={"conversationId": conversation})
            return conversation, await client.get_string_details_async(EXPERIMENT, "d", context)
        return PLAIN, await client.get_string_details_async(
            PLAIN, "d", EvaluationContext(conversation)
        )

    options.setdefault("threads", 4)
    options.setdefault("tasks", 20)
    return Load(tally, call, acall, **options)


def wait_until(predicate: Callable[[], bool], timeout: float = RECONNECT) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def reconnected(server: FeatBitTestServer, client: OpenFeatureClient) -> bool:
    return server.connection_count == 1 and client.get_provider_status() == ProviderStatus.READY


def test_a_flapping_stream_under_load_serves_the_last_data_and_recovers_each_time(
    server: FeatBitTestServer, online: tuple[OpenFeatureClient, ProviderEvents]
) -> None:
    client, events = online
    tally = Tally()
    served_while_down: list[int] = []
    with evaluations(client, tally) as load:
        flaps: list[Callable[[], int]] = [
            lambda: server.pause_streaming(1011),  # down for a while, upgrades refused (503)
            lambda: server.drop_connections(1011),  # dropped, reconnects at once
            lambda: server.pause_streaming(None),  # TCP cut without a close frame
            lambda: server.drop_connections(None),
        ]
        for flap in flaps:
            assert wait_until(lambda: reconnected(server, client))
            stale, ready = events.count(STALE), events.count(READY)
            assert flap() == 1  # the one open stream was cut
            assert events.wait_for(STALE, stale + 1)
            before = tally.served
            # served while cut off (STALE until the reconnect)
            assert wait_until(lambda start=before: tally.served >= start + 50)
            served_while_down.append(tally.served - before)
            server.resume_streaming()
            assert events.wait_for(READY, ready + 1)
            assert wait_until(lambda: reconnected(server, client))
        assert load.stop(timeout=30)
    assert tally.exceptions == [] and tally.error_codes == {}
    assert all(served_while_down)
    assert tally.by_unit[PLAIN] == {"v1"}  # the last data, through every drop
    assert tally.units_with_several_values() == {}
    assert server.accepted_connections >= len(flaps) + 1


def test_a_change_pushed_after_the_reconnects_is_applied_under_load(
    server: FeatBitTestServer, online: tuple[OpenFeatureClient, ProviderEvents]
) -> None:
    client, events = online
    for _ in range(3):
        assert wait_until(lambda: reconnected(server, client))
        ready = events.count(READY)
        assert server.drop_connections(1011) == 1
        assert events.wait_for(READY, ready + 1)
    assert wait_until(lambda: reconnected(server, client))
    tally = Tally()
    with evaluations(client, tally) as load:
        assert wait_until(lambda: tally.served > 300)
        server.push_flag(fl.flag(PLAIN, ["v1", "v2"], serve=1, version=2))
        assert wait_until(
            lambda: client.get_string_value(PLAIN, "d", EvaluationContext("x")) == "v2"
        )
        settling = load.tally = Tally()  # takes the calls that were in flight during the patch
        assert wait_until(lambda: settling.served > 100)
        after = Tally()
        load.tally = after
        assert wait_until(lambda: after.served > 300)
        assert load.stop(timeout=30)
    assert tally.exceptions == [] and tally.error_codes == {}
    assert after.exceptions == [] and after.error_codes == {}
    assert tally.by_unit[PLAIN] <= {"v1", "v2"}
    assert after.by_unit[PLAIN] == {"v2"}


def test_a_late_server_under_load_serves_not_ready_defaults_then_its_data_and_nothing_else(
    sink: InMemorySink,
) -> None:
    server = FeatBitTestServer()
    server.set_flags([fl.flag(PLAIN, ["v1", "v2"], serve=0), fl.flag(EXPERIMENT, sorted(VARIANTS))])
    provider = FeatBitProvider.connect(
        server.env_secret,
        server.streaming_url,
        server.event_url,
        policy=POLICY,
        sinks=[sink],
        ready_timeout=0.2,
        streaming_first_retry_delay=0.05,
        websocket=WebSocketConfig(timeout=1.0),
    )
    domain = f"late-{uuid.uuid4().hex[:8]}"
    with pytest.raises(ProviderNotReadyError):
        api.set_provider_and_wait(provider, domain=domain)
    client = api.get_client(domain)
    tally = Tally()
    try:
        with evaluations(client, tally) as load:
            assert wait_until(lambda: tally.served > 500)
            server.start()
            assert wait_until(lambda: client.get_provider_status() == ProviderStatus.READY)
            served_at_ready = tally.served
            assert wait_until(lambda: tally.served > served_at_ready + 500)
            assert load.stop(timeout=30)
    finally:
        provider.shutdown()
        server.close()
    assert tally.exceptions == []
    # Before the first sync: the caller's default with PROVIDER_NOT_READY; after it, the data.
    # Never FLAG_NOT_FOUND, which a read racing the first sync could report.
    assert set(tally.error_codes) == {"PROVIDER_NOT_READY"}
    assert {"v1", "d", "default"} >= tally.by_unit[PLAIN] >= {"v1"}
