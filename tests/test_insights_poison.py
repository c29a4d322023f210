"""One bad event never blocks the others (against the strict FeatBit test server, whose insights
endpoint fails a whole request as FeatBit's binding does): ``track()`` refuses values FeatBit
cannot store, the processor refuses events it cannot write, and a batch rejected for its content
is split until only the rejected events are dropped; every refusal is counted and reported."""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fbclient.client import FBClient
from fbclient.config import Config
from openfeature.evaluation_context import EvaluationContext
from openfeature.track import TrackingEventDetails

from featbit_experiments import Experiment, FeatBitProvider, InMemorySink, Metric, UnitPolicy
from featbit_experiments.insights import BoundedEventProcessor
from tests.support import flags as fl
from tests.support.featbit_server import FeatBitTestServer

pytestmark = pytest.mark.timeout(60)

FLAG = "answer-cache"
POLICY = UnitPolicy(
    [Experiment("reply-style", "conversation")], metrics=[Metric("latency_ms", "user")]
)
POISON = [math.nan, math.inf, -math.inf, 1e39]


@pytest.fixture
def server() -> Iterator[FeatBitTestServer]:
    with FeatBitTestServer() as running:
        running.set_flags([fl.flag(FLAG, ["on", "off"])])
        yield running


@pytest.fixture
def provider(server: FeatBitTestServer, sink: InMemorySink) -> Iterator[FeatBitProvider]:
    connected = FeatBitProvider.connect(
        server.env_secret,
        server.streaming_url,
        server.event_url,
        policy=POLICY,
        sinks=[sink],
        events_flush_interval=0.1,
    )
    connected.initialize(EvaluationContext())
    yield connected
    connected.shutdown()


def processor_of(provider: FeatBitProvider) -> BoundedEventProcessor:
    processor = provider.client._event_processor
    assert isinstance(processor, BoundedEventProcessor)
    return processor


def settled(processor: BoundedEventProcessor, server: FeatBitTestServer, delivered: int) -> Any:
    assert server.wait_for(lambda: processor.counts().delivered >= delivered, timeout=20)
    assert server.wait_for(lambda: processor.counts().pending == 0, timeout=10)
    counts = processor.counts()
    assert counts.offered == counts.delivered + counts.pending + counts.dropped
    return counts


def test_track_refuses_values_featbit_cannot_store_without_raising(
    server: FeatBitTestServer, provider: FeatBitProvider, sink: InMemorySink
) -> None:
    context = EvaluationContext("u-1")
    for value in POISON:
        provider.track("latency_ms", context, TrackingEventDetails(value=value))
    provider.track("latency_ms", context, TrackingEventDetails(value=3.4e38))  # fits float32

    assert server.wait_for(lambda: server.metric_events("latency_ms"))
    assert [m.numeric_value for m in server.metric_events()] == [pytest.approx(3.4e38)]
    refused = sink.guardrails("invalid_metric_value")
    assert [g["value"] for g in refused] == ["nan", "inf", "-inf", "1e+39"]
    assert all(g["metric"] == "latency_ms" for g in refused)


def test_bad_values_among_a_thousand_events_leave_the_thousand_delivered(
    server: FeatBitTestServer, provider: FeatBitProvider, sink: InMemorySink
) -> None:
    """The issue's measurement: before, one NaN put a batch at the head of the queue forever
    (FeatBit answers 400) and nothing after it arrived."""
    bad = {10: math.nan, 500: math.inf, 990: 1e39}
    for n in range(1000):
        if n in bad:
            provider.track("latency_ms", EvaluationContext(f"u-{n}"), TrackingEventDetails(bad[n]))
        provider.track("latency_ms", EvaluationContext(f"u-{n}"), TrackingEventDetails(n))

    counts = settled(processor_of(provider), server, 1000)

    assert len(server.metric_events("latency_ms")) == 1000
    assert (counts.delivered, counts.rejected, counts.failed_posts) == (1000, 0, 0)
    assert len(sink.guardrails("invalid_metric_value")) == 3
    assert {r.status for r in server.insight_requests} == {200}


def test_an_event_the_processor_cannot_write_is_dropped_alone(
    server: FeatBitTestServer, provider: FeatBitProvider, sink: InMemorySink
) -> None:
    """Defence in depth: a NaN handed to fbclient directly (not through ``track()``)."""
    for n in range(200):
        user = {"key": f"u-{n}", "name": f"u-{n}"}
        provider.client.track_metric(user, "latency_ms", math.nan if n == 77 else float(n))

    counts = settled(processor_of(provider), server, 199)

    assert (counts.delivered, counts.rejected) == (199, 1)
    assert "u-77" not in {m.user_key for m in server.metric_events()}
    [guardrail] = sink.guardrails("insights_rejected")
    assert (guardrail["events"], guardrail.get("status")) == (1, None)  # refused before sending


def test_a_batch_rejected_for_one_event_is_split_until_only_that_event_is_dropped(
    server: FeatBitTestServer, provider: FeatBitProvider, sink: InMemorySink
) -> None:
    """An unpaired surrogate in an attribute: Python writes it, FeatBit's binding fails the
    whole request with 400."""
    for n in range(1000):
        note = "bad \udc80 bytes" if n == 321 else "fine"
        provider.resolve_string_details(FLAG, "d", EvaluationContext(f"u-{n}", {"note": note}))

    counts = settled(processor_of(provider), server, 999)

    assert (counts.delivered, counts.rejected, counts.failed_posts) == (999, 1, 0)
    assert {e.user_key for e in server.flag_events(FLAG)} == {f"u-{n}" for n in range(1000)} - {
        "u-321"
    }
    rejected_posts = [r for r in server.insight_requests if r.status == 400]
    assert 1 <= len(rejected_posts) <= 7  # halving 50 events: at most log2(50) + 1 levels
    [guardrail] = sink.guardrails("insights_rejected")
    assert (guardrail["events"], guardrail["status"]) == (1, 400)


def test_a_request_level_rejection_drops_the_batch_without_splitting_it(
    server: FeatBitTestServer,
) -> None:
    """401 is about the secret, not the events: splitting could not help."""
    processors: list[BoundedEventProcessor] = []

    def build(config: Any, sender: Any) -> BoundedEventProcessor:
        processors.append(BoundedEventProcessor(config, sender))
        return processors[-1]

    config = Config(
        "not-a-secret",
        server.event_url,
        server.streaming_url,
        offline=True,
        events_flush_interval=0.1,
        event_processor_imp=build,
    )
    client = FBClient(config, start_wait=0)
    try:
        for n in range(120):
            client.track_metric({"key": f"u-{n}", "name": "n"}, "latency_ms", 1.0)
        [processor] = processors
        assert server.wait_for(lambda: processor.counts().rejected == 120, timeout=10)
    finally:
        client.stop()

    assert processor.counts().delivered == 0
    assert [r.status for r in server.insight_requests] == [401, 401, 401]  # 50 + 50 + 20


def test_transient_failures_keep_the_bounded_retry(
    server: FeatBitTestServer, provider: FeatBitProvider, sink: InMemorySink
) -> None:
    server.insights_status = 503
    for _ in range(60):
        provider.resolve_string_details(FLAG, "d", EvaluationContext(f"u-{uuid.uuid4().hex}"))
    processor = processor_of(provider)
    assert server.wait_for(lambda: processor.counts().failed_posts >= 1)
    assert processor.counts().rejected == 0

    server.insights_status = 200
    counts = settled(processor, server, 60)

    assert (counts.delivered, counts.rejected) == (60, 0)
    assert sink.guardrails("insights_rejected") == []
