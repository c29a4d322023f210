"""Redis stalled, slowed, stopped and restarted while threads and asyncio tasks evaluate an
experiment through providers sharing a RedisStore: no evaluation fails, the outage is recorded
as ``store_unavailable``, an instance keeps serving each conversation what it served it before,
and after an empty restart each conversation is claimed again once, with the variation the
instances had served.
Each test runs its own throwaway ``redis-server``."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from openfeature.client import OpenFeatureClient
from openfeature.evaluation_context import EvaluationContext
from openfeature.flag_evaluation import Reason

from featbit_experiments import Experiment, FeatBitProvider, InMemorySink, UnitPolicy
from featbit_experiments.continuity import RedisStore
from tests.support import flags as fl
from tests.support.load import Load, Tally
from tests.support.redis_server import ThrowawayRedis

FLAG = "reply-style"
CONTROL, TREATMENT = "concise", "detailed"
POLICY = UnitPolicy([Experiment(FLAG, "conversation")])
CONVERSATIONS = [f"c-{n}" for n in range(120)]

ClientFactory = Callable[[FeatBitProvider], OpenFeatureClient]


@pytest.fixture
def server() -> Iterator[ThrowawayRedis]:
    with ThrowawayRedis() as running:
        yield running


@pytest.fixture
def instance(
    server: ThrowawayRedis, make_provider: Any
) -> Iterator[Callable[..., FeatBitProvider]]:
    """One service instance: an offline provider whose RedisStore shares a prefix with the
    other instances of the test."""
    prefix = f"reliability-{uuid.uuid4().hex[:8]}:"
    stores: list[RedisStore] = []

    def make(treatment: float, *, local_cache: bool = True) -> FeatBitProvider:
        store = RedisStore(
            server.url, key_prefix=prefix, retry_interval=0.05, local_cache=local_cache
        )
        stores.append(store)
        flag = fl.flag(FLAG, [CONTROL, TREATMENT], weights=[1 - treatment, treatment])
        return make_provider([flag], POLICY, store=store)

    yield make
    for store in stores:
        store.close()


def turn(conversation: str) -> EvaluationContext:
    return EvaluationContext(attributes={"conversationId": conversation})


def load_on(
    clients: list[OpenFeatureClient], tally: Tally, *, threads: int = 4, tasks: int = 30
) -> Load:
    """Threads and tasks evaluating every conversation round-robin, spread over ``clients``."""

    def call(worker: int, n: int) -> tuple[str, Any]:
        conversation = CONVERSATIONS[(worker * 7 + n) % len(CONVERSATIONS)]
        client = clients[(worker + n) % len(clients)]
        return conversation, client.get_string_details(FLAG, "default", turn(conversation))

    async def acall(worker: int, n: int) -> tuple[str, Any]:
        conversation = CONVERSATIONS[(worker * 11 + n) % len(CONVERSATIONS)]
        client = clients[(worker + n) % len(clients)]
        return conversation, await client.get_string_details_async(
            FLAG, "default", turn(conversation)
        )

    return Load(tally, call, acall, threads=threads, tasks=tasks)


def pause_redis(server: ThrowawayRedis, milliseconds: int, mode: str = "ALL") -> None:
    admin = redis.Redis.from_url(server.url)
    try:
        admin.execute_command("CLIENT", "PAUSE", str(milliseconds), mode)
    finally:
        admin.close()


def ledger_answers(provider: FeatBitProvider) -> bool:
    probe = turn(f"probe-{uuid.uuid4().hex[:8]}")
    provider.resolve_string_details(FLAG, "default", probe)
    return provider.resolve_string_details(FLAG, "default", probe).reason == Reason.CACHED


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def served_during(tally: Tally, seconds: float) -> int:
    before = tally.served
    time.sleep(seconds)
    return tally.served - before


def stored_variants(server: ThrowawayRedis, provider: FeatBitProvider) -> dict[str, str]:
    """What Redis holds for each conversation (the claimed winners), by value."""
    values = {f"{FLAG}-v0": CONTROL, f"{FLAG}-v1": TREATMENT}
    store = provider.store
    assert isinstance(store, RedisStore)
    raw = redis.Redis.from_url(server.url)
    try:
        held = {}
        for conversation in CONVERSATIONS:
            fields = raw.hgetall(store.unit_key("conversation", conversation))
            for name, packed in fields.items():
                if not name.startswith(b"s:"):
                    held[conversation] = values[packed.decode().split("|", 2)[2]]
        return held
    finally:
        raw.close()


def test_stalls_a_stop_and_a_restart_under_mixed_load_reach_no_caller(
    server: ThrowawayRedis,
    instance: Callable[..., FeatBitProvider],
    of_client: ClientFactory,
    sink: InMemorySink,
) -> None:
    provider = instance(treatment=0.5)
    tally = Tally()
    with load_on([of_client(provider)], tally) as load:
        assert wait_until(lambda: tally.served > 500)
        pause_redis(server, 60)  # slower than usual, within the store's 100 ms timeout
        pause_redis(server, 400)  # stalled past the timeout: every call fails
        served_in_stall = served_during(tally, 0.5)
        pause_redis(server, 400, "WRITE")  # reads answer, the ledger's scripts write
        time.sleep(0.5)
        server.stop()
        served_while_down = served_during(tally, 0.7)
        server.start()
        assert wait_until(lambda: ledger_answers(provider))
        served_after = served_during(tally, 0.3)
        assert load.stop(timeout=30)
    assert tally.exceptions == []
    assert tally.error_codes == {}
    assert served_in_stall > 0 and served_while_down > 0 and served_after > 0
    assert set(tally.values) == {CONTROL, TREATMENT}
    assert sink.guardrails("store_unavailable")


def test_during_a_stall_an_instance_keeps_serving_what_it_served_before(
    server: ThrowawayRedis,
    instance: Callable[..., FeatBitProvider],
    of_client: ClientFactory,
    sink: InMemorySink,
) -> None:
    # Without the store's local copy, which would answer these repeat turns through the stall
    # (test_ledger_cache.py): here the instance's memory of what it served must.
    rolled_out = instance(treatment=0.5)
    rolled_back = instance(treatment=0.0, local_cache=False)
    assigned = {
        c: rolled_out.resolve_string_details(FLAG, "default", turn(c)).value for c in CONVERSATIONS
    }
    assert TREATMENT in assigned.values()
    before = Tally()  # the rolled-back instance serves every conversation from the ledger once
    with load_on([of_client(rolled_back)], before, threads=2, tasks=10):
        assert wait_until(lambda: set(before.by_unit) == set(CONVERSATIONS))
    during = Tally()
    with load_on([of_client(rolled_back)], during) as load:
        assert wait_until(lambda: during.served > 200)
        pause_redis(server, 500)
        time.sleep(0.7)
        assert load.stop(timeout=30)
    # While stalled, FeatBit alone would give everyone control; the instance's memory of what
    # it served keeps every conversation on its variant.
    assert during.exceptions == [] and during.error_codes == {}
    assert sink.guardrails("store_unavailable")
    assert {c: values for c, values in during.by_unit.items()} == {
        c: {assigned[c]} for c in during.by_unit
    }
    assert wait_until(lambda: ledger_answers(rolled_back))
    after = Tally()
    load = load_on([of_client(rolled_back)], after, threads=2, tasks=10)
    with load:
        assert wait_until(lambda: after.served > 2000)
    assert after.exceptions == [] and after.error_codes == {}
    assert {c: values for c, values in after.by_unit.items()} == {
        c: {variant} for c, variant in assigned.items()
    }


def test_after_an_empty_restart_each_conversation_is_claimed_again_once(
    server: ThrowawayRedis,
    instance: Callable[..., FeatBitProvider],
    of_client: ClientFactory,
    sink: InMemorySink,
) -> None:
    rolled_out, all_in = instance(treatment=0.5), instance(treatment=1.0)
    clients = [of_client(rolled_out), of_client(all_in)]
    tally = Tally()
    with load_on(clients, tally) as load:
        assert wait_until(lambda: tally.served > 500)
        server.stop()
        assert wait_until(lambda: sink.guardrails("store_unavailable"))  # the outage is seen
        down = tally.served
        assert wait_until(lambda: tally.served > down + 200)  # and served through
        server.start()  # empty: the assignments are gone
        assert wait_until(lambda: ledger_answers(rolled_out) and ledger_answers(all_in))
        after_restart = Tally()
        load.tally = after_restart
        # Calls that began during the outage (on FeatBit alone) finish before the count starts.
        assert wait_until(lambda: tally.in_flight == 0)
        settled = Tally()
        load.tally = settled
        assert wait_until(lambda: settled.served > 3000)
        assert load.stop(timeout=30)
    for each in (tally, after_restart, settled):
        assert each.exceptions == [] and each.error_codes == {}
    # Both instances serve each conversation the one variant claimed after the restart.
    assert settled.units_with_several_values() == {}
    claimed = stored_variants(server, rolled_out)
    assert set(claimed.values()) == {CONTROL, TREATMENT}
    assert {c: values for c, values in settled.by_unit.items()} == {
        c: {claimed[c]} for c in settled.by_unit
    }
    assert sink.guardrails("ledger_lost")
