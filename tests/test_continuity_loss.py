"""A ledger that lost what it held is detected, not absorbed: Redis restarted empty, flushed, or
down while a rollout moved. A unit this instance served keeps its variation (finish_active) or
its move is reported (contain), a ``ledger_lost`` guardrail counts shards and units, and a unit
that merely expired or ended is a new unit, not a loss. Each test has its own redis-server.

Rollouts move on the same instance the way they do in FeatBit: the client receives a newer
version of the flag (here from a bootstrap payload; tests/test_continuity.py pushes them
through the FeatBit test server).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from openfeature.evaluation_context import EvaluationContext
from openfeature.flag_evaluation import Reason

from featbit_experiments import (
    Experiment,
    FeatBitProvider,
    InMemorySink,
    RollbackMode,
    UnitPolicy,
)
from featbit_experiments import event_schema as schema
from featbit_experiments.continuity import LedgerEntry, LedgerKey, RedisStore
from featbit_experiments.continuity.redis_store import shard_of
from tests.support import flags as fl
from tests.support.featbit_server import updated_at_ms
from tests.support.redis_server import ThrowawayRedis

FLAG = "reply-style"
CONTROL, TREATMENT = "concise", "detailed"
CONTROL_ID, TREATMENT_ID = f"{FLAG}-v0", f"{FLAG}-v1"
CONVERSATIONS = [f"c-{n}" for n in range(162)]

InstanceFactory = Callable[..., FeatBitProvider]


def experiment_flag(treatment: float, version: int = 1) -> dict[str, Any]:
    return fl.flag(FLAG, [CONTROL, TREATMENT], weights=[1 - treatment, treatment], version=version)


def turn(conversation_id: str) -> EvaluationContext:
    return EvaluationContext(attributes={"conversationId": conversation_id})


def evaluate(provider: FeatBitProvider, conversation_id: str) -> Any:
    return provider.resolve_string_details(FLAG, "default", turn(conversation_id))


def move_rollout(provider: FeatBitProvider, treatment: float, version: int) -> None:
    """The instance's FeatBit client receives a newer version of the flag."""
    flag = experiment_flag(treatment, version)
    assert provider.client.initialize_from_external_json(fl.bootstrap_json([flag]))
    view = provider.resolver.view(FLAG)
    assert view is not None and view.version == updated_at_ms(flag)


@pytest.fixture
def server() -> Iterator[ThrowawayRedis]:
    with ThrowawayRedis() as running:
        yield running


@pytest.fixture
def prefix(server: ThrowawayRedis) -> str:
    return f"loss-{uuid.uuid4().hex[:8]}:"


@pytest.fixture
def instance(
    server: ThrowawayRedis, prefix: str, make_provider: Any, sink: InMemorySink
) -> Iterator[InstanceFactory]:
    """One service instance: an offline provider with its own RedisStore on ``server``."""
    stores: list[RedisStore] = []

    def make(
        treatment: float = 0.5,
        rollback: RollbackMode = RollbackMode.FINISH_ACTIVE,
        sinks: list[Any] | None = None,
    ) -> FeatBitProvider:
        store = RedisStore(server.url, key_prefix=prefix, retry_interval=0.05)
        stores.append(store)
        policy = UnitPolicy([Experiment(FLAG, "conversation", rollback=rollback)])
        return make_provider(
            [experiment_flag(treatment)], policy, store=store, sinks=sinks or [sink]
        )

    yield make
    for store in stores:
        store.close()


def restart_empty(server: ThrowawayRedis) -> None:
    server.stop()
    server.start()


def exposures_of(sink: InMemorySink, conversation: str) -> list[str]:
    return [
        e[schema.VARIATION] for e in sink.of_kind(schema.EXPOSURE) if e["unitId"] == conversation
    ]


# -- the store: a lost shard is not an expired unit -------------------------------------------


def store_on(server: ThrowawayRedis, prefix: str) -> RedisStore:
    return RedisStore(server.url, key_prefix=prefix, retry_interval=0.0)


def key(unit_id: str) -> LedgerKey:
    return LedgerKey("exp", "run-1", "conversation", unit_id)


def entry(variation_id: str) -> LedgerEntry:
    now = time.time()
    return LedgerEntry(variation_id, "conversation", now, now, 1)


def test_a_redis_restarted_empty_is_a_loss_of_every_shard_the_store_used(
    server: ThrowawayRedis, prefix: str
) -> None:
    store = store_on(server, prefix)
    units = [f"c-{n}" for n in range(20)]
    for unit in units:
        store.claim(key(unit), entry("a"))
    generations = {unit: store.generation("conversation", unit) for unit in units}
    restart_empty(server)
    assert all(store.touch(key(unit)) is None for unit in units)
    assert store.losses_seen == len({shard_of("conversation", unit) for unit in units})
    assert all(store.generation("conversation", u) == generations[u] + 1 for u in units)
    store.close()


def test_flushdb_is_a_loss(server: ThrowawayRedis, prefix: str) -> None:
    store = store_on(server, prefix)
    store.claim(key("c-1"), entry("a"))
    admin = redis.Redis.from_url(server.url)
    admin.flushdb()
    admin.close()
    assert store.touch(key("c-1")) is None
    assert store.losses_seen == 1
    store.close()


def test_a_unit_expiring_or_ending_is_not_a_loss(server: ThrowawayRedis, prefix: str) -> None:
    store = store_on(server, prefix)
    store.claim(key("c-1"), entry("a"))
    store.claim(key("c-2"), entry("a"))
    admin = redis.Redis.from_url(server.url)
    admin.pexpire(store.unit_key("conversation", "c-1"), 1)
    while admin.exists(store.unit_key("conversation", "c-1")):
        pass
    admin.close()
    store.end_unit("conversation", "c-2")
    assert store.touch(key("c-1")) is None and store.touch(key("c-2")) is None
    assert store.losses_seen == 0
    store.close()


def test_every_instance_sees_the_loss_after_another_one_wrote_to_the_empty_redis(
    server: ThrowawayRedis, prefix: str
) -> None:
    first, second = store_on(server, prefix), store_on(server, prefix)
    first.claim(key("c-1"), entry("a"))
    second.touch(key("c-1"))
    restart_empty(server)
    first.claim(key("c-1"), entry("b"))  # recreates the shard's marker
    second.touch(key("c-1"))
    assert (first.losses_seen, second.losses_seen) == (1, 1)
    first.close()
    second.close()


# -- the ledger: finish_active keeps what this instance served --------------------------------


def test_after_redis_comes_back_empty_no_conversation_this_instance_served_switches_variant(
    server: ThrowawayRedis, instance: InstanceFactory, sink: InMemorySink
) -> None:
    provider = instance(treatment=0.5)
    first = {c: evaluate(provider, c).value for c in CONVERSATIONS}
    assert set(first.values()) == {CONTROL, TREATMENT}
    move_rollout(provider, treatment=1.0, version=2)
    restart_empty(server)

    second = {c: evaluate(provider, c) for c in CONVERSATIONS}

    assert {c: d.value for c, d in second.items()} == first
    # Those FeatBit now gives another variation were put back from this instance's memory.
    assert {second[c].reason for c in CONVERSATIONS if first[c] == CONTROL} == {Reason.CACHED}
    assert all(len(exposures_of(sink, c)) == 1 for c in CONVERSATIONS)
    counts = provider.resolver.ledger.recovery.loss_counts()  # type: ignore[union-attr]
    shards = {shard_of("conversation", c) for c in CONVERSATIONS}
    assert counts == {"shardsLost": len(shards), "unitsRestored": len(CONVERSATIONS)}
    [reported, *_] = sink.guardrails("ledger_lost")
    assert reported["shardsLostTotal"] >= 1


def test_shutdown_records_the_losses_not_reported_yet(
    server: ThrowawayRedis, instance: InstanceFactory, sink: InMemorySink
) -> None:
    provider = instance(treatment=0.5)
    for conversation in CONVERSATIONS:
        evaluate(provider, conversation)
    restart_empty(server)
    for conversation in CONVERSATIONS:
        evaluate(provider, conversation)
    [first] = sink.guardrails("ledger_lost")  # the first at once, the rest within the interval
    assert first.get("unitsRestoredTotal", 0) < len(CONVERSATIONS)
    provider.shutdown()
    last = sink.guardrails("ledger_lost")[-1]
    assert last["unitsRestoredTotal"] == len(CONVERSATIONS)


def test_the_restored_variants_are_back_in_redis_for_every_instance(
    server: ThrowawayRedis, instance: InstanceFactory
) -> None:
    provider = instance(treatment=0.5)
    first = {c: evaluate(provider, c).value for c in CONVERSATIONS}
    restart_empty(server)
    for conversation in CONVERSATIONS:
        evaluate(provider, conversation)
    latecomer = instance(treatment=1.0)  # never served them, and its rollout moved
    assert {c: evaluate(latecomer, c).value for c in CONVERSATIONS} == first


def test_a_conversation_another_instance_claimed_first_after_the_loss_is_a_reported_switch(
    server: ThrowawayRedis, instance: InstanceFactory, sink: InMemorySink
) -> None:
    mine, other_sink = instance(treatment=0.0), InMemorySink()
    other = instance(treatment=1.0, sinks=[other_sink])
    conversation = "c-switched"
    assert evaluate(mine, conversation).value == CONTROL
    restart_empty(server)
    assert evaluate(other, conversation).value == TREATMENT  # the ledger is empty: FeatBit's
    details = evaluate(mine, conversation)

    assert details.value == TREATMENT  # the ledger's answer is the one every instance shares
    [switch] = sink.guardrails("variant_switched")
    assert (switch["fromVariationId"], switch["toVariationId"]) == (CONTROL_ID, TREATMENT_ID)
    assert exposures_of(sink, conversation) == [CONTROL, TREATMENT]
    counts = mine.resolver.ledger.recovery.loss_counts()  # type: ignore[union-attr]
    assert counts["unitsSwitched"] == 1


def test_a_unit_that_expired_in_redis_follows_the_new_rollout_without_a_loss(
    server: ThrowawayRedis, instance: InstanceFactory, sink: InMemorySink
) -> None:
    provider = instance(treatment=0.0)
    assert evaluate(provider, "c-idle").value == CONTROL
    move_rollout(provider, treatment=1.0, version=2)
    store = provider.store
    assert isinstance(store, RedisStore)
    store.end_unit("conversation", "c-idle")  # as Redis does when the idle TTL runs out
    assert evaluate(provider, "c-idle").value == TREATMENT
    assert sink.guardrails("ledger_lost") == [] and sink.guardrails("variant_switched") == []
    assert exposures_of(sink, "c-idle") == [CONTROL, TREATMENT]  # re-recorded: it moved


# -- the ledger: contain reports what the loss hid --------------------------------------------


def test_under_contain_a_move_hidden_by_the_loss_is_reported(
    server: ThrowawayRedis, instance: InstanceFactory, sink: InMemorySink
) -> None:
    provider = instance(treatment=0.0, rollback=RollbackMode.CONTAIN)
    assert evaluate(provider, "c-1").value == CONTROL
    move_rollout(provider, treatment=1.0, version=2)
    restart_empty(server)
    assert evaluate(provider, "c-1").value == TREATMENT
    [switch] = sink.guardrails("variant_switched")
    assert (switch["fromVariationId"], switch["toVariationId"]) == (CONTROL_ID, TREATMENT_ID)
    assert sink.guardrails("ledger_lost")


# -- an outage: this instance keeps serving what it served ------------------------------------


def test_while_redis_is_down_conversations_this_instance_served_keep_their_variant(
    server: ThrowawayRedis, instance: InstanceFactory, sink: InMemorySink
) -> None:
    provider = instance(treatment=0.5)
    first = {c: evaluate(provider, c).value for c in CONVERSATIONS}
    move_rollout(provider, treatment=1.0, version=2)
    server.stop()
    during = {c: evaluate(provider, c) for c in CONVERSATIONS}
    newcomer = evaluate(provider, "c-new")
    server.start()

    assert {c: d.value for c, d in during.items()} == first
    assert {d.error_code for d in during.values()} == {None}
    assert newcomer.value == TREATMENT  # never served here: FeatBit's variation
    assert sink.guardrails("store_unavailable")


# -- start-up: a Redis that can lose the ledger is reported -----------------------------------


def test_a_redis_without_persistence_is_reported_at_start_up(
    instance: InstanceFactory, sink: InMemorySink
) -> None:
    instance()
    deadline = time.monotonic() + 10
    while not sink.guardrails("ledger_at_risk") and time.monotonic() < deadline:
        time.sleep(0.01)
    [at_risk] = sink.guardrails("ledger_at_risk")
    assert "persistence is off" in at_risk["message"]
