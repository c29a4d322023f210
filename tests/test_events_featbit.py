"""FeatBit as a destination: the SDK's own evaluation insights and metrics reach FeatBit's
insights endpoint keyed by the experiment's unit, so FeatBit's results count conversations in a
conversation experiment (the real ``fbclient`` against the loopback FeatBit test server)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from openfeature.evaluation_context import EvaluationContext
from openfeature.track import TrackingEventDetails

from featbit_experiments import (
    Experiment,
    FeatBitProvider,
    InMemorySink,
    Metric,
    Privacy,
    UnitPolicy,
)
from featbit_experiments import event_schema as schema
from tests.support import flags as fl
from tests.support.featbit_server import FeatBitTestServer

SUPPORT = "support-retrieval-test"
POLICY = UnitPolicy(
    [Experiment(SUPPORT, "conversation")], [Metric("resolved", "conversation", (SUPPORT,))]
)


@pytest.fixture
def server() -> Iterator[FeatBitTestServer]:
    with FeatBitTestServer() as srv:
        srv.set_flags([fl.flag(SUPPORT, ["control", "retrieval_profile_b"])])
        yield srv


def connect(server: FeatBitTestServer, sink: InMemorySink, **options: Any) -> FeatBitProvider:
    return FeatBitProvider.connect(
        server.env_secret,
        server.streaming_url,
        server.event_url,
        policy=POLICY,
        sinks=[sink],
        events_flush_interval=0.2,
        streaming_first_retry_delay=0.1,
        **options,
    )


def test_featbit_insights_and_metrics_are_keyed_by_the_conversation(
    server: FeatBitTestServer, of_client, sink: InMemorySink
) -> None:
    provider = connect(server, sink)
    client = of_client(provider)
    context = EvaluationContext("user-42", {"conversationId": "conv-7", "userId": "user-42"})
    served = client.get_string_details(SUPPORT, "control", context)
    client.track("resolved", context, TrackingEventDetails(value=1.0))
    assert server.wait_for(lambda: server.flag_events(SUPPORT) and server.metric_events())
    provider.shutdown()
    [flag_event] = server.flag_events(SUPPORT)
    [metric] = server.metric_events("resolved")
    assert flag_event.user_key == "conv-7"
    assert metric.user_key == flag_event.user_key
    assert flag_event.variation_id == served.flag_metadata["variationId"]
    # Our own exposure agrees with what FeatBit received.
    [exposure] = sink.of_kind(schema.EXPOSURE)
    assert (exposure[schema.UNIT_ID], exposure[schema.VARIATION_ID]) == (
        flag_event.user_key,
        flag_event.variation_id,
    )


def test_featbit_gets_the_real_key_while_sinks_get_a_pseudonym(
    server: FeatBitTestServer, of_client, sink: InMemorySink
) -> None:
    provider = connect(server, sink, privacy=Privacy.hashed("featbit-test-key-0123456789abcdef"))
    client = of_client(provider)
    context = EvaluationContext("user-42", {"conversationId": "conv-7", "userId": "user-42"})
    client.get_string_value(SUPPORT, "control", context)
    client.track("resolved", context)
    assert server.wait_for(lambda: server.flag_events(SUPPORT) and server.metric_events())
    provider.shutdown()
    assert [e.user_key for e in server.flag_events(SUPPORT)] == ["conv-7"]
    assert [m.user_key for m in server.metric_events("resolved")] == ["conv-7"]
    [exposure] = sink.of_kind(schema.EXPOSURE)
    assert exposure[schema.UNIT_ID] == provider.privacy.protect("conv-7") != "conv-7"
