"""Exposures FeatBit's experiment analysis counts: every flag insight carries
``sendToExperiment`` decided by FeatBit's own rule (fb-python-sdk 1.2.1 no longer sends it, and
FeatBit reads a missing field as false, so its experiment results would count none of them).

The expectations are computed here independently, from the rule as FeatBit's server SDKs
implement it and FeatBit's md5 bucketing, and checked against what the strict FeatBit test
server received."""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fbclient.client import FBClient
from openfeature.evaluation_context import EvaluationContext

from featbit_experiments import Experiment, FeatBitProvider, InMemorySink, UnitPolicy
from featbit_experiments import event_schema as schema
from featbit_experiments.continuity import RedisStore
from tests.support import flags as fl
from tests.support.capture import CapturedInsights
from tests.support.featbit_server import FeatBitTestServer, FlagEventRecord
from tests.support.redis_server import ThrowawayRedis

pytestmark = pytest.mark.timeout(60)

EXPERIMENT = "reply-style"
ORDINARY = "answer-cache"
TARGETED = "beta-banner"
TARGETED_ALL = "beta-banner-all"
RULED = "tone"
SAMPLED = "sampled-style"
OFF = "retired-banner"
VIP = "u-vip"
POLICY = UnitPolicy([Experiment(EXPERIMENT, "conversation")])
USERS = [VIP, *(f"u-{i}" for i in range(60))]


def featbit_bucket(key: str) -> float:
    """FeatBit's dispatch: |int32_le(md5(key)[:4]) / -2^31|."""
    digest = hashlib.md5(key.encode("utf-8")).digest()
    return abs(int.from_bytes(digest[:4], "little", signed=True) / -2147483648)


def targeted(key: str, *, include_all_targets: bool) -> dict[str, Any]:
    return fl.flag(
        key,
        [True, False],
        serve=1,
        targets=[{"keyIds": [VIP], "variationId": f"{key}-v0"}],
        expt_include_all_targets=include_all_targets,
    )


FLAGS = [
    fl.flag(EXPERIMENT, ["concise", "detailed"], expt_include_all_targets=False),
    fl.flag(ORDINARY, ["on", "off"], included_in_expt=False, expt_include_all_targets=False),
    targeted(TARGETED, include_all_targets=False),
    targeted(TARGETED_ALL, include_all_targets=True),
    fl.flag(
        RULED,
        ["plain", "warm"],
        expt_include_all_targets=False,
        rules=[
            fl.rule(
                [fl.condition("plan", "Equal", "pro")],
                fl.rollout({f"{RULED}-v0": 0.5, f"{RULED}-v1": 0.5}),
                included_in_expt=False,
            )
        ],
    ),
    # A quarter of each half is sampled into the experiment: half of each variation's units.
    fl.flag(SAMPLED, ["a", "b"], expt_rollout=0.25, expt_include_all_targets=False),
    fl.flag(OFF, ["x", "y"], enabled=False, expt_include_all_targets=True),
]


def expected(flag_key: str, key: str) -> bool:
    """FeatBit's rule, written out for these flags."""
    if flag_key == EXPERIMENT or (flag_key in (TARGETED, TARGETED_ALL) and key != VIP):
        return True  # fallthrough included, exptRollout covers the whole variation
    if flag_key == TARGETED:
        return False  # a target, and exptIncludeAllTargets is off
    if flag_key == TARGETED_ALL:
        return True
    if flag_key == RULED:
        return not is_pro(key)  # the matched rule is not included in the experiment
    if flag_key == SAMPLED:
        return featbit_bucket("expt" + SAMPLED + key) < 0.25 / 0.5
    return False  # ORDINARY (not included) and OFF (flag off never is)


def is_pro(key: str) -> bool:
    return key.endswith(("0", "3", "6"))


def evaluate_everything(resolve: Callable[..., Any]) -> None:
    for key in USERS:
        context = EvaluationContext(key, {"plan": "pro" if is_pro(key) else "free"})
        for flag_key in (ORDINARY, RULED, SAMPLED):
            resolve(flag_key, "default", FlagKind.STRING, context)
        for flag_key in (TARGETED, TARGETED_ALL):
            resolve(flag_key, False, FlagKind.BOOLEAN, context)
        resolve(OFF, "default", FlagKind.STRING, context)
        resolve(EXPERIMENT, "default", FlagKind.STRING, conversation(key))


class FlagKind:
    STRING, BOOLEAN = "string", "boolean"


def conversation(key: str) -> EvaluationContext:
    return EvaluationContext(key, {"conversationId": f"c-{key}"})


def resolver_of(provider: FeatBitProvider) -> Callable[..., Any]:
    def resolve(flag_key: str, default: Any, kind: str, context: EvaluationContext) -> Any:
        if kind == FlagKind.BOOLEAN:
            return provider.resolve_boolean_details(flag_key, default, context)
        return provider.resolve_string_details(flag_key, default, context)

    return resolve


@pytest.fixture
def server() -> Iterator[FeatBitTestServer]:
    with FeatBitTestServer() as running:
        running.set_flags(FLAGS)
        yield running


@pytest.fixture
def connected(server: FeatBitTestServer, sink: InMemorySink) -> Iterator[FeatBitProvider]:
    provider = FeatBitProvider.connect(
        server.env_secret,
        server.streaming_url,
        server.event_url,
        policy=POLICY,
        sinks=[sink],
        events_flush_interval=0.2,
    )
    provider.initialize(EvaluationContext())
    yield provider
    provider.shutdown()


def received(server: FeatBitTestServer) -> list[FlagEventRecord]:
    total = len(USERS) * 7
    assert server.wait_for(lambda: len(server.flag_events()) >= total, timeout=15)
    events = server.flag_events()
    assert len(events) == total
    return events


def test_every_insight_carries_featbits_send_to_experiment_decision(
    server: FeatBitTestServer, connected: FeatBitProvider
) -> None:
    evaluate_everything(resolver_of(connected))

    events = received(server)
    assert all("sendToExperiment" in e.item["variations"][0] for e in events)
    mismatches = [
        (e.flag_key, e.user_key, e.send_to_experiment)
        for e in events
        if e.send_to_experiment != expected(e.flag_key, e.user_key.removeprefix("c-"))
    ]
    assert mismatches == []
    sampled = [e.send_to_experiment for e in events if e.flag_key == SAMPLED]
    assert 0 < sum(sampled) < len(sampled)  # exptRollout < 1 really samples


def test_featbits_experiment_analysis_counts_exactly_the_units_we_expose(
    server: FeatBitTestServer, connected: FeatBitProvider, sink: InMemorySink
) -> None:
    evaluate_everything(resolver_of(connected))

    counted = {
        (e.user_key, e.variation_id)
        for e in received(server)
        if e.flag_key == EXPERIMENT and e.send_to_experiment  # FeatBit's tag_2 = 'true'
    }
    exposed = {(x[schema.UNIT_ID], x[schema.VARIATION_ID]) for x in sink.of_kind(schema.EXPOSURE)}
    assert len(exposed) == len(USERS)
    assert counted == exposed


def test_offline_insights_through_the_callers_processor_carry_the_field(
    make_provider: Callable[..., FeatBitProvider],
) -> None:
    insights = CapturedInsights()
    provider = make_provider(FLAGS, POLICY, event_processor=insights.processor)

    evaluate_everything(resolver_of(provider))

    variations = [v for item in insights.flag_events() for v in item["variations"]]
    assert len(variations) == len(USERS) * 7
    decided = {(v["featureFlagKey"], v["sendToExperiment"]) for v in variations}
    assert (ORDINARY, False) in decided and (EXPERIMENT, True) in decided
    assert (ORDINARY, True) not in decided and (EXPERIMENT, False) not in decided


def test_the_ledgers_deferred_insight_carries_the_field(
    make_provider: Callable[..., FeatBitProvider],
) -> None:
    insights = CapturedInsights()
    with ThrowawayRedis() as redis_server:
        store = RedisStore(redis_server.url, key_prefix=f"test-{uuid.uuid4().hex[:8]}:")
        try:
            provider = make_provider(
                FLAGS, POLICY, store=store, event_processor=insights.processor
            )
            for key in USERS[:10]:
                provider.resolve_string_details(EXPERIMENT, "default", conversation(key))
                provider.resolve_string_details(EXPERIMENT, "default", conversation(key))
        finally:
            store.close()

    variations = [v for item in insights.flag_events() for v in item["variations"]]
    assert len(variations) == 10  # one insight per conversation: the second turn is CACHED
    assert all(v["sendToExperiment"] is True for v in variations)


class PublicSurfaceOnly:
    """A real ``FBClient`` seen without the evaluator internals ``_sdk`` uses, as a release
    that moved them would look (``_config`` stays: the flag store is read through it)."""

    HIDDEN = frozenset({"_evaluator", "_get_flag_internal", "_event_handler"})

    def __init__(self, client: FBClient) -> None:
        self._client = client

    def __getattr__(self, name: str) -> Any:
        if name in self.HIDDEN:
            raise AttributeError(name)
        return getattr(self._client, name)


def test_an_sdk_without_the_internals_still_evaluates_and_says_exposures_are_not_counted(
    write_bootstrap: Callable[..., Any], sink: InMemorySink
) -> None:
    owned = FeatBitProvider.offline(write_bootstrap(FLAGS), policy=POLICY)
    degraded = FeatBitProvider(PublicSurfaceOnly(owned.client), policy=POLICY, sinks=[sink])
    try:
        first = degraded.resolve_string_details(EXPERIMENT, "default", conversation("u-1"))
        second = degraded.resolve_string_details(EXPERIMENT, "default", conversation("u-2"))
    finally:
        degraded.shutdown()
        owned.shutdown()

    assert first.error_code is None and second.error_code is None
    [warning] = sink.guardrails("exposures_not_counted")
    assert "sendToExperiment" in warning["message"]


def test_a_client_passed_in_with_an_unknown_processor_is_named_in_the_log(
    write_bootstrap: Callable[..., Any], sink: InMemorySink, caplog: pytest.LogCaptureFixture
) -> None:
    insights = CapturedInsights()
    owned = FeatBitProvider.offline(
        write_bootstrap(FLAGS), policy=POLICY, event_processor=insights.processor
    )
    with caplog.at_level(logging.WARNING, logger="featbit_experiments"):
        FeatBitProvider(owned.client, policy=POLICY, sinks=[sink])
    owned.shutdown()

    [line] = [r.getMessage() for r in caplog.records if "CapturingProcessor" in r.getMessage()]
    assert "sendToExperiment" in line
