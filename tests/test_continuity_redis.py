"""The ledger on a real Redis: what an evaluation does when Redis stops, stalls and comes
back, how many round trips an evaluation costs, and the async path. Each test runs its own
throwaway ``redis-server`` (never the machine's main one) so it can stop it."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from openfeature.client import OpenFeatureClient
from openfeature.evaluation_context import EvaluationContext
from openfeature.flag_evaluation import FlagType, Reason

from featbit_experiments import Assignment, Experiment, FeatBitProvider, InMemorySink, UnitPolicy
from featbit_experiments.continuity import LedgerKey, RedisStore
from tests.support import flags as fl
from tests.support.capture import CapturedInsights
from tests.support.redis_server import ThrowawayRedis

FLAG = "reply-style"
CONTROL, TREATMENT = "concise", "detailed"
POLICY = UnitPolicy([Experiment(FLAG, "conversation")])

ProviderFactory = Callable[..., FeatBitProvider]
ClientFactory = Callable[[FeatBitProvider], OpenFeatureClient]


def experiment_flag(treatment: float = 0.5) -> dict[str, Any]:
    return fl.flag(FLAG, [CONTROL, TREATMENT], weights=[1 - treatment, treatment])


def turn(conversation_id: str) -> EvaluationContext:
    return EvaluationContext(attributes={"conversationId": conversation_id})


@pytest.fixture
def server() -> Iterator[ThrowawayRedis]:
    with ThrowawayRedis() as running:
        yield running


@pytest.fixture
def instance(
    server: ThrowawayRedis, make_provider: ProviderFactory
) -> Iterator[Callable[..., FeatBitProvider]]:
    """One service instance: an offline provider with its own RedisStore on ``server``."""
    prefix = f"test-{uuid.uuid4().hex[:8]}:"
    stores: list[RedisStore] = []

    def make(
        treatment: float = 0.5, event_processor: Any = None, **options: Any
    ) -> FeatBitProvider:
        store = RedisStore(server.url, key_prefix=prefix, retry_interval=0.05, **options)
        stores.append(store)
        return make_provider(
            [experiment_flag(treatment)], POLICY, store=store, event_processor=event_processor
        )

    yield make
    for store in stores:
        store.close()


def evaluate(provider: FeatBitProvider, conversation_id: str) -> Any:
    return provider.resolve_string_details(FLAG, "default", turn(conversation_id))


def first_conversation_in(provider: FeatBitProvider, variant: str) -> str:
    for _ in range(200):
        conversation_id = f"c-{uuid.uuid4().hex[:8]}"
        if evaluate(provider, conversation_id).value == variant:
            return conversation_id
    raise AssertionError(f"no conversation landed in {variant!r}")


def ledger_answers(provider: FeatBitProvider) -> bool:
    """True when a new conversation's second turn is served from the ledger."""
    probe = f"probe-{uuid.uuid4().hex[:8]}"
    evaluate(provider, probe)
    return bool(evaluate(provider, probe).reason == Reason.CACHED)


def wait_for(predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_redis_stopped_mid_run_never_breaks_an_evaluation(
    server: ThrowawayRedis, instance: Callable[..., FeatBitProvider]
) -> None:
    provider = instance()
    conversation = first_conversation_in(provider, TREATMENT)
    server.stop()
    results = [evaluate(provider, c) for c in [conversation, "c-new", conversation, "c-other"]]
    assert [r.error_code for r in results] == [None] * 4
    assert {r.value for r in results} <= {CONTROL, TREATMENT}


def test_an_outage_is_recorded_as_rate_limited_store_unavailable_guardrails(
    server: ThrowawayRedis, instance: Callable[..., FeatBitProvider], sink: InMemorySink
) -> None:
    provider = instance()
    evaluate(provider, "c-1")
    server.stop()
    for n in range(20):
        evaluate(provider, f"c-{n}")
    outages = sink.guardrails("store_unavailable")
    assert 1 <= len(outages) < 20
    assert outages[0]["experimentKey"] == FLAG


def test_sticky_behaviour_resumes_when_redis_is_back(
    server: ThrowawayRedis, instance: Callable[..., FeatBitProvider]
) -> None:
    rolled_out, rolled_back = instance(treatment=0.5), instance(treatment=0.0)
    evaluate(rolled_out, "c-before")
    server.stop()
    evaluate(rolled_out, "c-during")
    server.start()  # an empty Redis, as a cache-mode server restarts
    assert wait_for(lambda: ledger_answers(rolled_out))  # within the store's retry_interval
    conversation = first_conversation_in(rolled_out, TREATMENT)
    on_the_other_instance = evaluate(rolled_back, conversation)
    assert (on_the_other_instance.value, on_the_other_instance.reason) == (
        TREATMENT,
        Reason.CACHED,
    )


def test_a_stalled_redis_is_treated_as_unavailable(
    server: ThrowawayRedis, instance: Callable[..., FeatBitProvider], sink: InMemorySink
) -> None:
    provider = instance(socket_timeout=0.05)
    evaluate(provider, "c-1")
    admin = redis.Redis.from_url(server.url)
    admin.execute_command("CLIENT", "PAUSE", "300", "ALL")  # every client stalls for 300 ms
    admin.close()
    result = evaluate(provider, "c-2")
    assert result.error_code is None
    assert "TimeoutError" in sink.guardrails("store_unavailable")[0]["message"]


def test_only_the_instance_that_assigns_a_conversation_sends_featbit_an_insight(
    instance: Callable[..., FeatBitProvider],
) -> None:
    on_a, on_b = CapturedInsights(), CapturedInsights()
    a = instance(event_processor=on_a.processor)
    b = instance(event_processor=on_b.processor)
    first = evaluate(a, "c-1")
    repeats = [evaluate(b, "c-1"), evaluate(a, "c-1")]
    assert [r.value for r in repeats] == [first.value] * 2
    assert (len(on_a.flag_events()), len(on_b.flag_events())) == (1, 0)
    [insight] = on_a.flag_events()
    assert insight["variations"][0]["variation"]["value"] == first.value


def test_finish_active_costs_one_round_trip_per_evaluation(
    instance: Callable[..., FeatBitProvider],
) -> None:
    provider = instance()
    store = provider.store
    assert isinstance(store, RedisStore)
    evaluate(provider, "warm-up")  # handshake, script loading, the run's unit record
    before = store.round_trips
    conversations = [f"c-{n}" for n in range(25)]
    for conversation in conversations:  # new conversations, then repeat turns
        evaluate(provider, conversation)
    for conversation in conversations:
        evaluate(provider, conversation)
    assert store.round_trips - before == 50


def test_a_kill_switch_costs_no_round_trip(
    make_provider: ProviderFactory, server: ThrowawayRedis
) -> None:
    store = RedisStore(server.url, key_prefix=f"test-{uuid.uuid4().hex[:8]}:")
    provider = make_provider(
        [fl.flag(FLAG, [CONTROL, TREATMENT], enabled=False)], POLICY, store=store
    )
    evaluate(provider, "warm-up")
    before = store.round_trips
    result = evaluate(provider, "c-1")
    store.close()
    assert (result.value, result.reason) == (CONTROL, Reason.DISABLED)
    assert store.round_trips == before


async def test_async_evaluations_with_redis_run_off_the_event_loop(
    instance: Callable[..., FeatBitProvider], of_client: ClientFactory
) -> None:
    provider = instance(local_cache=False)  # every evaluation waits on Redis
    threads: list[int] = []

    def note_thread(assignment: Assignment) -> None:
        threads.append(threading.get_ident())

    provider.resolver.assignment_listeners.append(note_thread)
    client = of_client(provider)
    results = await asyncio.gather(
        *(client.get_string_details_async(FLAG, "default", turn(f"c-{n % 5}")) for n in range(20))
    )
    assert all(r.error_code is None for r in results)
    assert threading.get_ident() not in threads
    for n in range(5):
        assert len({r.value for r in results[n::5]}) == 1


async def test_async_repeat_turns_answered_by_the_local_copy_stay_on_the_loop(
    instance: Callable[..., FeatBitProvider],
) -> None:
    provider = instance()
    store = provider.store
    assert isinstance(store, RedisStore) and store.local_cache is not None
    copy = store.local_cache
    deadline = time.monotonic() + 10
    while not copy.live and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    key = LedgerKey(FLAG, "", "conversation", "c-1")
    while store.cached(key) is None and time.monotonic() < deadline:
        await provider.resolve_string_details_async(FLAG, "default", turn("c-1"))
    threads: list[int] = []
    provider.resolver.assignment_listeners.append(lambda a: threads.append(threading.get_ident()))
    first = await provider.resolve_string_details_async(FLAG, "default", turn("c-1"))
    other = await provider.resolve_string_details_async(FLAG, "default", turn("c-new"))
    assert first.reason == Reason.CACHED and other.error_code is None
    assert threads[0] == threading.get_ident()  # the copy answered on the loop
    assert threads[1] != threading.get_ident()  # a new conversation waited on Redis elsewhere


async def test_async_evaluations_with_the_in_memory_store_stay_on_the_loop(
    make_provider: ProviderFactory,
) -> None:
    provider = make_provider([experiment_flag()], POLICY)
    threads: list[int] = []
    provider.resolver.assignment_listeners.append(lambda a: threads.append(threading.get_ident()))
    result = await provider.resolve_string_details_async(FLAG, "default", turn("c-1"))
    assert result.error_code is None
    assert threads == [threading.get_ident()]


def test_the_flag_type_reaches_the_async_path_unchanged(
    instance: Callable[..., FeatBitProvider],
) -> None:
    provider = instance()
    result = asyncio.run(provider._aresolve(FLAG, "default", FlagType.BOOLEAN, turn("c-1")))
    assert result.error_code is not None and result.value == "default"
