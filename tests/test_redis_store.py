"""The shared assignment store on a real Redis (the machine's, or the run's own): atomic
set-if-absent across instances, TTLs kept by Redis, end of unit, one round trip per operation,
and failures that surface only as StoreUnavailable. Every test uses its own key prefix."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator

import pytest
import redis

from featbit_experiments.continuity import LedgerEntry, LedgerKey, RedisStore, StoreUnavailable
from featbit_experiments.continuity.redis_store import shard_of
from tests.support.redis_server import ThrowawayRedis, delete_prefix, free_port

StoreFactory = Callable[..., RedisStore]


@pytest.fixture
def prefix(main_redis: str) -> Iterator[str]:
    name = f"test-continuity:{uuid.uuid4().hex[:12]}:"
    yield name
    delete_prefix(main_redis, name)


@pytest.fixture
def make_store(prefix: str, main_redis: str) -> Iterator[StoreFactory]:
    made: list[RedisStore] = []

    def make(**options: object) -> RedisStore:
        options.setdefault("key_prefix", prefix)
        store = RedisStore(main_redis, **options)  # type: ignore[arg-type]
        made.append(store)
        return store

    yield make
    for store in made:
        store.close()


@pytest.fixture
def raw(main_redis: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(main_redis)
    yield client
    client.close()


def key(unit_id: str, experiment: str = "exp", unit: str = "conversation") -> LedgerKey:
    return LedgerKey(experiment, "run-1", unit, unit_id)


def entry(variation_id: str, at: float = 1_700_000_000.25) -> LedgerEntry:
    return LedgerEntry(variation_id, "conversation", at, at, 42)


def unit_hash(prefix: str, unit_id: str, unit: str = "conversation") -> str:
    return f"{prefix}{{{shard_of(unit, unit_id)}}}{unit}:{unit_id}"


def test_first_claim_wins_and_later_claims_get_the_first_entry(make_store: StoreFactory) -> None:
    store = make_store()
    first, created = store.claim(key("c-1"), entry("treatment"))
    second, created_again = store.claim(key("c-1"), entry("control"))
    assert (first.variation_id, created) == ("treatment", True)
    assert (second.variation_id, created_again) == ("treatment", False)
    assert (second.assigned_at, second.flag_version) == (1_700_000_000.25, 42)


def test_two_instances_racing_on_new_units_agree_on_every_winner(make_store: StoreFactory) -> None:
    instances = [make_store(), make_store()]
    results: dict[int, list[str]] = {t: [] for t in range(6)}
    barrier = threading.Barrier(6)

    def race(thread: int) -> None:
        store = instances[thread % 2]
        barrier.wait()
        for n in range(300):
            won, _ = store.claim(key(f"c-{n}"), entry(f"from-thread-{thread}"))
            results[thread].append(won.variation_id)

    threads = [threading.Thread(target=race, args=(t,)) for t in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(results[t] == results[0] for t in results)


def test_touch_returns_the_entry_and_marks_it_seen_now(make_store: StoreFactory) -> None:
    now = [1_700_000_500.0]
    store = make_store(clock=lambda: now[0])
    store.claim(key("c-1"), entry("treatment", at=1_700_000_000.0))
    seen = store.touch(key("c-1"))
    assert seen is not None
    assert (seen.variation_id, seen.assigned_at, seen.last_seen) == (
        "treatment",
        1_700_000_000.0,
        1_700_000_500.0,
    )


def test_touch_of_an_unknown_unit_is_none(make_store: StoreFactory) -> None:
    assert make_store().touch(key("nobody")) is None


def test_redis_holds_the_unit_ttl(make_store: StoreFactory, raw: redis.Redis, prefix: str) -> None:
    store = make_store(ttl_seconds={"conversation": 600})
    store.claim(key("c-1"), entry("treatment"))
    assert 0 < raw.pttl(unit_hash(prefix, "c-1")) <= 600_000


def test_activity_refreshes_the_unit_ttl(
    make_store: StoreFactory, raw: redis.Redis, prefix: str
) -> None:
    store = make_store(ttl_seconds={"conversation": 600})
    store.claim(key("c-1"), entry("treatment"))
    raw.pexpire(unit_hash(prefix, "c-1"), 5_000)
    store.touch(key("c-1"))
    assert raw.pttl(unit_hash(prefix, "c-1")) > 5_000


def test_a_unit_expired_by_redis_is_forgotten(
    make_store: StoreFactory, raw: redis.Redis, prefix: str
) -> None:
    store = make_store()
    store.claim(key("c-1"), entry("treatment"))
    raw.pexpire(unit_hash(prefix, "c-1"), 1)
    while raw.exists(unit_hash(prefix, "c-1")):
        pass
    assert store.touch(key("c-1")) is None


def test_end_unit_releases_every_experiment_of_that_unit(make_store: StoreFactory) -> None:
    store = make_store()
    store.claim(key("c-1", experiment="prompt"), entry("a"))
    store.claim(key("c-1", experiment="model"), entry("b"))
    store.claim(key("c-2", experiment="prompt"), entry("a"))
    assert store.end_unit("conversation", "c-1") is True
    assert store.touch(key("c-1", experiment="prompt")) is None
    assert store.touch(key("c-1", experiment="model")) is None
    assert store.touch(key("c-2", experiment="prompt")) is not None
    assert store.end_unit("conversation", "c-1") is False


def test_replace_returns_the_previous_entry_and_keeps_an_unchanged_one(
    make_store: StoreFactory,
) -> None:
    store = make_store()
    store.claim(key("c-1"), entry("treatment", at=5.0))
    unchanged = store.replace(key("c-1"), entry("treatment", at=9.0))
    after_unchanged = store.touch(key("c-1"))
    switched = store.replace(key("c-1"), entry("control", at=11.0))
    after_switch = store.touch(key("c-1"))
    assert unchanged is not None and unchanged.variation_id == "treatment"
    assert after_unchanged is not None and after_unchanged.assigned_at == 5.0
    assert switched is not None and switched.variation_id == "treatment"
    assert after_switch is not None and after_switch.variation_id == "control"


def test_replace_of_a_new_unit_stores_it_and_returns_none(make_store: StoreFactory) -> None:
    store = make_store()
    assert store.replace(key("c-1"), entry("control")) is None
    stored = store.touch(key("c-1"))
    assert stored is not None and stored.variation_id == "control"


def test_record_unit_keeps_the_first_unit_of_an_experiment_run(make_store: StoreFactory) -> None:
    store, other_instance = make_store(), make_store()
    assert store.record_unit("exp", "run-1", "conversation") == "conversation"
    assert other_instance.record_unit("exp", "run-1", "user") == "conversation"
    assert other_instance.record_unit("exp", "run-2", "user") == "user"


def test_ids_with_separators_do_not_collide(make_store: StoreFactory) -> None:
    store = make_store()
    store.claim(LedgerKey("a:b", "c", "conversation", "x"), entry("first"))
    other, created = store.claim(LedgerKey("a", "b:c", "conversation", "x"), entry("second"))
    assert (other.variation_id, created) == ("second", True)


def test_every_operation_is_one_round_trip(make_store: StoreFactory) -> None:
    store = make_store(local_cache=False)  # with it, a unit's repeat reads cost none
    store.claim(key("warm-up"), entry("a"))  # connection handshake and script loading
    operations: list[Callable[[], object]] = [
        lambda: store.claim(key("c-1"), entry("a")),
        lambda: store.claim(key("c-1"), entry("b")),
        lambda: store.touch(key("c-1")),
        lambda: store.replace(key("c-1"), entry("b")),
        lambda: store.record_unit("exp", "run-1", "conversation"),
        lambda: store.end_unit("conversation", "c-1"),
    ]
    for operation in operations:
        before = store.round_trips
        operation()
        assert store.round_trips - before == 1


def test_keys_live_under_the_prefix(
    make_store: StoreFactory, raw: redis.Redis, prefix: str
) -> None:
    store = make_store()
    store.claim(key("c-1"), entry("a"))
    store.record_unit("exp", "run-1", "conversation")
    keys = sorted(k.decode() for k in raw.scan_iter(match=f"{prefix}*"))
    shard = shard_of("conversation", "c-1")
    assert keys == sorted(
        [f"{prefix}unit-of:exp:run-1", unit_hash(prefix, "c-1"), f"{prefix}{{{shard}}}ledger"]
    )


def test_an_unreachable_redis_raises_only_store_unavailable() -> None:
    store = RedisStore(f"redis://127.0.0.1:{free_port()}/0", retry_interval=0.0)
    for operation in (
        lambda: store.touch(key("c-1")),
        lambda: store.claim(key("c-1"), entry("a")),
        lambda: store.replace(key("c-1"), entry("a")),
        lambda: store.end_unit("conversation", "c-1"),
        lambda: store.record_unit("exp", "run-1", "conversation"),
    ):
        with pytest.raises(StoreUnavailable):
            operation()


def test_failures_in_a_row_make_calls_fail_at_once_until_the_retry_interval() -> None:
    with ThrowawayRedis() as server:
        store = RedisStore(server.url, failure_threshold=2, retry_interval=3600)
        store.claim(key("c-1"), entry("a"))
        server.stop()
        for _ in range(2):
            with pytest.raises(StoreUnavailable, match="Redis unavailable: "):
                store.touch(key("c-1"))
        server.start()
        sent = store.round_trips
        with pytest.raises(StoreUnavailable, match="retrying shortly"):
            store.touch(key("c-1"))
        assert store.round_trips == sent


def test_a_single_failure_does_not_stop_the_next_call() -> None:
    with ThrowawayRedis() as server:
        store = RedisStore(server.url, failure_threshold=2, retry_interval=3600)
        store.claim(key("c-1"), entry("a"))
        server.stop()
        with pytest.raises(StoreUnavailable):
            store.touch(key("c-1"))
        server.start()
        assert store.touch(key("c-1")) is None  # a fresh, empty server answered


def test_the_store_works_again_by_itself_after_a_restart() -> None:
    with ThrowawayRedis() as server:
        store = RedisStore(server.url, retry_interval=0.0)
        store.claim(key("c-1"), entry("a"))
        server.stop()
        server.start()  # empty: nothing is persisted, and the Lua scripts must be loaded again
        assert store.touch(key("c-1")) is None
        won, created = store.claim(key("c-1"), entry("b"))
        assert (won.variation_id, created) == ("b", True)
