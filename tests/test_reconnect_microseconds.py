"""Back to READY after any reconnect, against a server comparing ``updatedAt`` as FeatBit does.

fbclient keeps each flag's version as ``updatedAt`` rounded to ms and asks for what is newer.
FeatBit 5.0 on PostgreSQL compares its microseconds, so it sends the newest flag again; fbclient
refuses it as not newer and never reports OK, and the provider stayed STALE. 5.1+ truncates to
ms; both must end READY with later patches applied."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from openfeature import api
from openfeature.client import OpenFeatureClient
from openfeature.evaluation_context import EvaluationContext
from openfeature.provider import ProviderStatus

from featbit_experiments import FeatBitProvider, InMemorySink
from tests.support import flags as fl
from tests.support.featbit_server import FeatBitTestServer, TimestampPrecision

pytestmark = pytest.mark.timeout(60)

FLAG = "answer-style"
USER = EvaluationContext("u-1")


@pytest.fixture(params=list(TimestampPrecision), ids=lambda p: p.value)
def server(request: pytest.FixtureRequest) -> Iterator[FeatBitTestServer]:
    with FeatBitTestServer(timestamp_precision=request.param) as running:
        running.set_flags([fl.flag(FLAG, ["short", "long"], serve=0)])
        yield running


@pytest.fixture
def client(server: FeatBitTestServer, sink: InMemorySink) -> Iterator[OpenFeatureClient]:
    provider = FeatBitProvider.connect(
        server.env_secret,
        server.streaming_url,
        server.event_url,
        sinks=[sink],
        streaming_first_retry_delay=0.1,
    )
    domain = f"reconnect-{uuid.uuid4().hex[:8]}"
    api.set_provider_and_wait(provider, domain=domain)
    yield api.get_client(domain)
    provider.shutdown()
    api.clear_providers()


def status_becomes(client: OpenFeatureClient, status: ProviderStatus) -> bool:
    return FeatBitTestServer.wait_for(lambda: client.get_provider_status() == status, 10.0)


def test_a_dropped_stream_comes_back_ready_and_later_patches_apply(
    server: FeatBitTestServer, client: OpenFeatureClient
) -> None:
    assert server.drop_connections(1011) == 1
    assert status_becomes(client, ProviderStatus.STALE)

    assert status_becomes(client, ProviderStatus.READY)
    assert server.push_flag(fl.flag(FLAG, ["short", "long"], serve=1, version=2)) == 1
    assert server.wait_for(lambda: client.get_string_value(FLAG, "x", USER) == "long")


def test_every_reconnect_comes_back_ready(
    server: FeatBitTestServer, client: OpenFeatureClient
) -> None:
    for version in (2, 3, 4):
        server.pause_streaming(1011)
        assert status_becomes(client, ProviderStatus.STALE)
        server.resume_streaming()  # nothing changed meanwhile: the newest flag may come again
        assert status_becomes(client, ProviderStatus.READY)
        server.push_flag(fl.flag(FLAG, ["short", "long"], serve=version % 2, version=version))
        expected = ["short", "long"][version % 2]
        assert server.wait_for(
            lambda want=expected: client.get_string_value(FLAG, "x", USER) == want
        )
