"""Provider status and events against a FeatBit server speaking the real protocol on
loopback: READY once synced, STALE when the stream drops, READY again after reconnect,
CONFIGURATION_CHANGED with the changed flag key, NOT_READY until a late server appears, and
ERROR/FATAL when FeatBit closes the stream for good."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fbclient.client import FBClient
from openfeature import api
from openfeature.evaluation_context import EvaluationContext
from openfeature.event import EventDetails, ProviderEvent
from openfeature.exception import ErrorCode, ProviderFatalError, ProviderNotReadyError
from openfeature.provider import ProviderStatus

from featbit_experiments import FeatBitProvider, InMemorySink
from tests.support import flags as fl
from tests.support.featbit_server import FeatBitTestServer

FLAG = "support-retrieval-test"
CTX = EvaluationContext("u-1", {"conversationId": "c-1"})


class Recorder:
    """Collects OpenFeature provider events (delivered on a thread pool) for one domain."""

    def __init__(self) -> None:
        self.events: list[tuple[ProviderEvent, EventDetails]] = []
        self._changed = threading.Condition()

    def handler(self, kind: ProviderEvent) -> Any:
        def on_event(details: EventDetails) -> None:
            with self._changed:
                self.events.append((kind, details))
                self._changed.notify_all()

        return on_event

    def wait_for(self, kind: ProviderEvent, count: int = 1, timeout: float = 10.0) -> bool:
        with self._changed:
            return self._changed.wait_for(
                lambda: sum(1 for k, _ in self.events if k == kind) >= count, timeout
            )

    def of(self, kind: ProviderEvent) -> list[EventDetails]:
        return [d for k, d in self.events if k == kind]


@pytest.fixture
def server() -> Iterator[FeatBitTestServer]:
    with FeatBitTestServer() as running:
        running.set_flags([fl.flag(FLAG, ["control", "treatment"], tags=["unit:conversation"])])
        yield running


def wait_until(predicate: Any, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return bool(predicate())


def connect(server: FeatBitTestServer, sink: InMemorySink, **options: Any) -> FeatBitProvider:
    client = FBClient(server.sdk_config(**options), start_wait=0)
    return FeatBitProvider(client, sinks=[sink], owns_client=True, ready_timeout=5.0)


def register(provider: FeatBitProvider, domain: str | None = None) -> tuple[str, Recorder]:
    domain = domain or f"online-{uuid.uuid4().hex[:8]}"
    recorder = Recorder()
    client = api.get_client(domain)
    for kind in ProviderEvent:
        client.add_handler(kind, recorder.handler(kind))
    api.set_provider_and_wait(provider, domain=domain)
    return domain, recorder


def test_ready_after_first_sync_and_serves_streamed_flags(server, sink) -> None:
    provider = connect(server, sink)
    domain, recorder = register(provider)
    try:
        assert recorder.wait_for(ProviderEvent.PROVIDER_READY)
        details = api.get_client(domain).get_string_details(FLAG, "x", CTX)
        assert details.value in {"control", "treatment"} and details.error_code is None
    finally:
        provider.shutdown()


def test_pushed_flag_emits_configuration_changed_with_its_key(server, sink) -> None:
    provider = connect(server, sink)
    domain, recorder = register(provider)
    client = api.get_client(domain)
    try:
        server.push_flag(fl.flag("late-flag", [True, False], serve=0, version=5))
        assert wait_until(
            lambda: any(
                d.flags_changed == ["late-flag"]
                for d in recorder.of(ProviderEvent.PROVIDER_CONFIGURATION_CHANGED)
            )
        )
        assert client.get_boolean_value("late-flag", False, CTX) is True
        server.push_flag(
            fl.flag(FLAG, ["control", "treatment"], serve=1, version=2, tags=["unit:conversation"])
        )

        # A fresh conversation on every poll: the ledger keeps a polled one on its first arm.
        def new_conversation_gets_treatment() -> bool:
            fresh = EvaluationContext("u-1", {"conversationId": f"c-{uuid.uuid4().hex[:8]}"})
            return client.get_string_value(FLAG, "x", fresh) == "treatment"

        assert wait_until(new_conversation_gets_treatment)
    finally:
        provider.shutdown()


def test_dropped_stream_is_stale_keeps_serving_and_recovers(server, sink) -> None:
    provider = connect(server, sink)
    domain, recorder = register(provider)
    client = api.get_client(domain)
    try:
        before = client.get_string_value(FLAG, "x", CTX)
        server.pause_streaming(1011)
        assert wait_until(lambda: client.get_provider_status() == ProviderStatus.STALE)
        assert recorder.wait_for(ProviderEvent.PROVIDER_STALE)
        assert client.get_string_value(FLAG, "x", CTX) == before
        server.resume_streaming()
        assert wait_until(lambda: client.get_provider_status() == ProviderStatus.READY)
    finally:
        provider.shutdown()


def test_server_down_at_start_serves_not_ready_defaults_then_ready(sink) -> None:
    server = FeatBitTestServer()
    server.set_flags([fl.flag(FLAG, ["control", "treatment"], tags=["unit:conversation"])])
    provider = FeatBitProvider(
        FBClient(server.sdk_config(), start_wait=0),
        sinks=[sink],
        owns_client=True,
        ready_timeout=0.3,
    )
    domain = f"late-{uuid.uuid4().hex[:8]}"
    recorder = Recorder()
    for kind in ProviderEvent:
        api.get_client(domain).add_handler(kind, recorder.handler(kind))
    with pytest.raises(ProviderNotReadyError):
        api.set_provider_and_wait(provider, domain=domain)
    client = api.get_client(domain)
    try:
        assert client.get_provider_status() == ProviderStatus.ERROR
        details = client.get_string_details(FLAG, "fallback", CTX)
        assert details.value == "fallback"
        assert details.error_code == ErrorCode.PROVIDER_NOT_READY
        assert sink.guardrails("provider_not_ready")
        server.start()
        assert wait_until(lambda: client.get_provider_status() == ProviderStatus.READY)
        assert client.get_string_details(FLAG, "fallback", CTX).error_code is None
    finally:
        provider.shutdown()
        server.close()


def test_invalid_secret_is_a_fatal_provider_error(server, sink) -> None:
    provider = connect(server, sink, env_secret="x" * 44)
    domain = f"online-{uuid.uuid4().hex[:8]}"
    try:
        with pytest.raises(ProviderFatalError):
            api.set_provider_and_wait(provider, domain=domain)
        assert api.get_client(domain).get_provider_status() == ProviderStatus.FATAL
        details = api.get_client(domain).get_string_details(FLAG, "fallback", CTX)
        assert details.value == "fallback" and details.error_code == ErrorCode.PROVIDER_FATAL
    finally:
        provider.shutdown()


def test_shutdown_is_idempotent_and_stops_the_owned_client(server, sink) -> None:
    provider = connect(server, sink)
    register(provider)
    provider.shutdown()
    provider.shutdown()
    assert provider.client._closed
