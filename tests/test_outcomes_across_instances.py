"""An outcome tracked on another instance than the one that assigned its unit still carries the
unit's variant: two providers share one Redis ledger, and the second finds the variant there."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from openfeature.evaluation_context import EvaluationContext
from openfeature.track import TrackingEventDetails

from featbit_experiments import Experiment, FeatBitProvider, InMemorySink, Metric, UnitPolicy
from featbit_experiments import event_schema as schema
from featbit_experiments.continuity import RedisStore
from tests.support import flags as fl
from tests.support.redis_server import ThrowawayRedis

FLAG = "support-retrieval-test"
ARMS = ["control", "retrieval_profile_b"]
POLICY = UnitPolicy(
    [Experiment(FLAG, "conversation", variant_names={f"{FLAG}-v1": "profile-b"})],
    [Metric("resolved", "conversation", (FLAG,))],
)


def turn(conversation: str) -> EvaluationContext:
    return EvaluationContext(attributes={"conversationId": conversation})


@pytest.fixture
def server() -> Iterator[ThrowawayRedis]:
    with ThrowawayRedis() as running:
        yield running


@pytest.fixture
def instance(server: ThrowawayRedis, make_provider: Any) -> Iterator[Callable[..., Any]]:
    prefix = f"outcomes-{uuid.uuid4().hex[:8]}:"
    stores: list[RedisStore] = []

    def make(sink: InMemorySink) -> FeatBitProvider:
        store = RedisStore(server.url, key_prefix=prefix, retry_interval=0.05)
        stores.append(store)
        provider: FeatBitProvider = make_provider(
            [fl.flag(FLAG, ARMS)], POLICY, store=store, sinks=[sink]
        )
        return provider

    yield make
    for store in stores:
        store.close()


def test_an_outcome_on_another_instance_carries_the_variant_from_the_shared_ledger(
    instance: Callable[..., FeatBitProvider],
) -> None:
    assigning_sink, tracking_sink = InMemorySink(), InMemorySink()
    assigning, tracking = instance(assigning_sink), instance(tracking_sink)
    served = {c: assigning.resolve_string_details(FLAG, "control", turn(c)) for c in ("c-1", "c-2")}
    for conversation in served:
        tracking.track("resolved", turn(conversation), TrackingEventDetails(value=1))

    records = {o[schema.UNIT_ID]: o for o in tracking_sink.of_kind(schema.OUTCOME)}
    assert {c: records[c][schema.VARIATION] for c in served} == {
        c: d.variant for c, d in served.items()
    }
    assert {c: records[c][schema.VARIATION_ID] for c in served} == {
        c: d.flag_metadata["variationId"] for c, d in served.items()
    }
    assert tracking_sink.of_kind(schema.EXPOSURE) == []  # it never served them


def test_with_redis_down_the_outcome_goes_without_a_variant_and_the_outage_is_recorded(
    server: ThrowawayRedis, instance: Callable[..., FeatBitProvider]
) -> None:
    assigning_sink, tracking_sink = InMemorySink(), InMemorySink()
    assigning, tracking = instance(assigning_sink), instance(tracking_sink)
    assigning.resolve_string_details(FLAG, "control", turn("c-1"))
    server.stop()
    tracking.track("resolved", turn("c-1"), TrackingEventDetails(value=1))
    server.start()

    [record] = tracking_sink.of_kind(schema.OUTCOME)
    assert schema.VARIATION not in record
    assert tracking_sink.guardrails("store_unavailable")
