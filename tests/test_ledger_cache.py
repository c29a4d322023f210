"""The Redis ledger's local copy: a unit's repeat turns cost no round trip, and the copy never
answers with something stale. What any instance changes (``end_unit``, a ``contain`` switch, a
TTL running out) leaves every instance's copy; a copy whose invalidation channel fails is
dropped, counted and reported as ``ledger_cache_dropped``.

Each test runs its own throwaway ``redis-server``, so it can cut connections; two instances
are two stores (each with its own invalidation channel) sharing one key prefix.
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

from featbit_experiments import Experiment, InMemorySink, UnitPolicy
from featbit_experiments.continuity import LedgerEntry, LedgerKey, RedisStore
from featbit_experiments.continuity._ledger_cache import CLIENT_NAME
from tests.support import flags as fl
from tests.support.redis_server import ThrowawayRedis

FLAG = "reply-style"
POLICY = UnitPolicy([Experiment(FLAG, "conversation")])
KEY = LedgerKey(FLAG, "", "conversation", "c-1")


def wait_for(condition: Callable[[], Any], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)


def entry(variation_id: str) -> LedgerEntry:
    now = time.time()
    return LedgerEntry(variation_id, "conversation", now, now, 1)


@pytest.fixture
def server() -> Iterator[ThrowawayRedis]:
    with ThrowawayRedis() as running:
        yield running


@pytest.fixture
def store_factory(server: ThrowawayRedis) -> Iterator[Callable[..., RedisStore]]:
    """Stores sharing one key prefix on ``server``, each with its copy live."""
    prefix = f"test-cache-{uuid.uuid4().hex[:8]}:"
    stores: list[RedisStore] = []

    def make(**options: Any) -> RedisStore:
        store = RedisStore(server.url, key_prefix=prefix, **options)
        stores.append(store)
        copy = store.local_cache
        assert copy is not None
        wait_for(lambda: copy.live)
        return store

    yield make
    for store in stores:
        store.close()


def cached_after_reads(store: RedisStore, key: LedgerKey = KEY) -> LedgerEntry:
    """Read until the store keeps the entry (a read that follows a write is not kept)."""
    wait_for(lambda: store.touch(key) is not None and store.cached(key) is not None)
    held = store.cached(key)
    assert held is not None
    return held


def test_repeat_turns_are_answered_without_a_round_trip(
    store_factory: Callable[..., RedisStore], make_provider: Any
) -> None:
    store = store_factory()
    provider = make_provider([fl.flag(FLAG, ["concise", "detailed"])], POLICY, store=store)
    context = EvaluationContext(attributes={"conversationId": "c-1"})

    def turn() -> Any:
        return provider.resolve_string_details(FLAG, "default", context)

    first = turn()
    wait_for(lambda: turn() is not None and store.cached(KEY) is not None)
    trips = store.round_trips
    later = [turn() for _ in range(50)]
    assert store.round_trips == trips
    assert {d.value for d in later} == {first.value}
    assert {d.reason for d in later} == {Reason.CACHED}


def test_end_unit_on_another_instance_leaves_this_instances_copy(
    store_factory: Callable[..., RedisStore],
) -> None:
    mine, theirs = store_factory(), store_factory()
    mine.claim(KEY, entry("v-a"))
    cached_after_reads(mine)
    assert theirs.end_unit("conversation", "c-1")
    wait_for(lambda: mine.cached(KEY) is None)
    assert mine.touch(KEY) is None


def test_a_contain_switch_on_another_instance_reaches_this_instances_copy(
    store_factory: Callable[..., RedisStore],
) -> None:
    mine, theirs = store_factory(), store_factory()
    mine.claim(KEY, entry("v-a"))
    assert cached_after_reads(mine).variation_id == "v-a"
    previous = theirs.replace(KEY, entry("v-b"))
    assert previous is not None and previous.variation_id == "v-a"
    wait_for(lambda: mine.cached(KEY) is None)
    now = mine.touch(KEY)
    assert now is not None and now.variation_id == "v-b"


def test_a_unit_whose_ttl_runs_out_in_redis_leaves_every_copy(
    store_factory: Callable[..., RedisStore], server: ThrowawayRedis
) -> None:
    mine = store_factory()
    mine.claim(KEY, entry("v-a"))
    cached_after_reads(mine)
    admin = redis.Redis.from_url(server.url)
    admin.pexpire(mine.unit_key("conversation", "c-1"), 50)
    wait_for(lambda: not admin.exists(mine.unit_key("conversation", "c-1")))
    admin.close()
    wait_for(lambda: mine.cached(KEY) is None)
    assert mine.touch(KEY) is None


def test_a_read_that_refreshes_the_ttl_is_not_kept(
    store_factory: Callable[..., RedisStore],
) -> None:
    store = store_factory()
    _, was_new = store.claim(KEY, entry("v-a"))
    assert was_new
    assert store.cached(KEY) is None  # the claim wrote: its own invalidation is on its way
    assert cached_after_reads(store).variation_id == "v-a"


def test_a_lost_invalidation_channel_drops_the_copy_and_is_reported(
    store_factory: Callable[..., RedisStore],
    server: ThrowawayRedis,
    make_provider: Any,
    sink: InMemorySink,
) -> None:
    mine, theirs = store_factory(), store_factory()
    provider = make_provider([fl.flag(FLAG, ["concise", "detailed"])], POLICY, store=mine)
    mine.claim(KEY, entry("v-a"))
    cached_after_reads(mine)
    admin = redis.Redis.from_url(server.url)
    channels = [c for c in admin.client_list() if c.get("name") == CLIENT_NAME]
    assert len(channels) == 2  # one per store
    admin.client_kill_filter(_type="pubsub")  # both channels drop
    admin.close()
    wait_for(lambda: mine.cache_drops >= 1)
    assert mine.cached(KEY) is None
    theirs.replace(KEY, entry("v-b"))  # a change this copy was not told about
    provider.resolve_string_details(
        FLAG, "default", EvaluationContext(attributes={"conversationId": "c-2"})
    )
    dropped = sink.guardrails("ledger_cache_dropped")
    assert dropped and dropped[0]["cacheDrops"] >= 1
    now = mine.touch(KEY)
    assert now is not None and now.variation_id == "v-b"
    copy = mine.local_cache
    assert copy is not None
    wait_for(lambda: copy.live)  # the channel comes back by itself
    assert cached_after_reads(mine).variation_id == "v-b"


def test_without_the_copy_every_turn_asks_redis(server: ThrowawayRedis) -> None:
    prefix = f"test-nocache-{uuid.uuid4().hex[:8]}:"
    store = RedisStore(server.url, key_prefix=prefix, local_cache=False)
    try:
        assert store.local_cache is None
        store.claim(KEY, entry("v-a"))
        store.touch(KEY)  # loads the script
        trips = store.round_trips
        for _ in range(5):
            assert store.touch(KEY) is not None
        assert store.round_trips == trips + 5
    finally:
        store.close()


def test_a_unit_in_several_experiments_leaves_the_copy_whole(
    store_factory: Callable[..., RedisStore],
) -> None:
    mine, theirs = store_factory(), store_factory()
    other_run = LedgerKey("another-experiment", "run-2", "conversation", "c-1")
    for key in (KEY, other_run):
        mine.claim(key, entry("v-a"))
        cached_after_reads(mine, key)
    assert theirs.end_unit("conversation", "c-1")
    wait_for(lambda: mine.cached(KEY) is None and mine.cached(other_run) is None)


def test_a_redis_that_refuses_client_tracking_leaves_the_copy_off(
    server: ThrowawayRedis,
) -> None:
    admin = redis.Redis.from_url(server.url)
    admin.acl_setuser(
        "no-tracking",
        enabled=True,
        passwords=["+pw"],
        keys=["*"],
        commands=["+@all", "-client|tracking"],
    )
    admin.close()
    host_port = server.url.split("//", 1)[1]
    store = RedisStore(f"redis://no-tracking:pw@{host_port}", key_prefix="test-refused:")
    try:
        copy = store.local_cache
        assert copy is not None
        wait_for(lambda: copy.refused is not None)
        assert "NOPERM" in str(copy.refused) or "permission" in str(copy.refused).lower()
        store.claim(KEY, entry("v-a"))
        store.touch(KEY)  # loads the script
        trips = store.round_trips
        assert store.touch(KEY) is not None and store.touch(KEY) is not None
        assert store.round_trips == trips + 2 and store.cached(KEY) is None
    finally:
        store.close()
