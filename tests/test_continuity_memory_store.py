"""The embedded assignment store: set-if-absent, idle TTL per unit, end of unit, the bound, and
thread safety. Time is an injected clock, never a sleep."""

from __future__ import annotations

import threading

import pytest

from featbit_experiments.continuity import InMemoryStore, LedgerEntry, LedgerKey
from featbit_experiments.errors import ConfigurationError


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def key(unit_id: str, experiment: str = "exp", unit: str = "conversation") -> LedgerKey:
    return LedgerKey(experiment, "run-1", unit, unit_id)


def entry(variation_id: str, unit: str = "conversation", at: float = 0.0) -> LedgerEntry:
    return LedgerEntry(variation_id, unit, at, at, 7)


def test_first_claim_wins_and_later_claims_get_the_first_entry() -> None:
    store = InMemoryStore()
    first, created = store.claim(key("c-1"), entry("treatment"))
    second, created_again = store.claim(key("c-1"), entry("control"))
    assert (first.variation_id, created) == ("treatment", True)
    assert (second.variation_id, created_again) == ("treatment", False)


def test_touch_returns_the_entry_and_marks_it_seen_now() -> None:
    clock = Clock()
    store = InMemoryStore(clock=clock)
    store.claim(key("c-1"), entry("treatment", at=clock.now))
    clock.now += 60
    seen = store.touch(key("c-1"))
    assert seen is not None
    assert seen.variation_id == "treatment"
    assert seen.assigned_at == clock.now - 60
    assert seen.last_seen == clock.now


def test_touch_of_an_unknown_unit_is_none() -> None:
    assert InMemoryStore().touch(key("nobody")) is None


def test_a_unit_idle_past_its_ttl_is_forgotten() -> None:
    clock = Clock()
    store = InMemoryStore(clock=clock, ttl_seconds={"conversation": 3600})
    store.claim(key("c-1"), entry("treatment"))
    clock.now += 3601
    assert store.touch(key("c-1")) is None
    assert len(store) == 0


def test_activity_keeps_a_unit_alive_beyond_its_ttl() -> None:
    clock = Clock()
    store = InMemoryStore(clock=clock, ttl_seconds={"conversation": 3600})
    store.claim(key("c-1"), entry("treatment"))
    for _ in range(5):
        clock.now += 3000
        assert store.touch(key("c-1")) is not None


def test_ttl_is_per_unit_name() -> None:
    clock = Clock()
    store = InMemoryStore(clock=clock, ttl_seconds={"conversation": 3600, "user": 86400})
    store.claim(key("c-1"), entry("treatment"))
    store.claim(key("u-1", unit="user"), entry("treatment", unit="user"))
    clock.now += 7200
    assert store.touch(key("c-1")) is None
    assert store.touch(key("u-1", unit="user")) is not None


def test_purge_expired_drops_idle_units_only() -> None:
    clock = Clock()
    store = InMemoryStore(clock=clock, ttl_seconds={"conversation": 100})
    store.claim(key("old"), entry("a"))
    clock.now += 90
    store.claim(key("new"), entry("a"))
    clock.now += 20
    assert store.purge_expired() == 1
    assert store.touch(key("new")) is not None


def test_a_unit_in_several_experiments_keeps_one_entry_per_experiment() -> None:
    store = InMemoryStore()
    for experiment, variation in (("prompt", "a"), ("model", "b"), ("tools", "c")):
        store.claim(key("c-1", experiment=experiment), entry(variation))
    seen = [store.touch(key("c-1", experiment=e)) for e in ("prompt", "model", "tools")]
    assert [s.variation_id if s else None for s in seen] == ["a", "b", "c"]
    assert len(store) == 3


def test_end_unit_releases_every_experiment_of_that_unit() -> None:
    store = InMemoryStore()
    store.claim(key("c-1", experiment="prompt"), entry("a"))
    store.claim(key("c-1", experiment="model"), entry("b"))
    store.claim(key("c-2", experiment="prompt"), entry("a"))
    assert store.end_unit("conversation", "c-1") is True
    assert store.touch(key("c-1", experiment="prompt")) is None
    assert store.touch(key("c-1", experiment="model")) is None
    assert store.touch(key("c-2", experiment="prompt")) is not None
    assert len(store) == 1


def test_end_unit_of_an_unknown_unit_is_false() -> None:
    assert InMemoryStore().end_unit("conversation", "nobody") is False


def test_replace_keeps_the_entry_when_the_variation_is_unchanged() -> None:
    store = InMemoryStore()
    store.claim(key("c-1"), entry("treatment", at=5.0))
    previous = store.replace(key("c-1"), entry("treatment", at=9.0))
    current = store.touch(key("c-1"))
    assert previous is not None and previous.variation_id == "treatment"
    assert current is not None and current.assigned_at == 5.0


def test_replace_with_another_variation_returns_the_previous_one() -> None:
    store = InMemoryStore()
    store.claim(key("c-1"), entry("treatment"))
    previous = store.replace(key("c-1"), entry("control"))
    current = store.touch(key("c-1"))
    assert previous is not None and previous.variation_id == "treatment"
    assert current is not None and current.variation_id == "control"


def test_record_unit_keeps_the_first_unit_of_an_experiment_run() -> None:
    store = InMemoryStore()
    assert store.record_unit("exp", "run-1", "conversation") == "conversation"
    assert store.record_unit("exp", "run-1", "user") == "conversation"
    assert store.record_unit("exp", "run-2", "user") == "user"


def test_the_least_recently_seen_units_are_evicted_beyond_the_bound() -> None:
    store = InMemoryStore(max_entries=3)
    for unit_id in ("c-1", "c-2", "c-3"):
        store.claim(key(unit_id), entry("a"))
    store.touch(key("c-1"))  # c-2 is now the least recently seen
    store.claim(key("c-4"), entry("a"))
    assert len(store) == 3
    assert store.touch(key("c-2")) is None
    assert store.touch(key("c-1")) is not None


def test_a_million_distinct_units_stay_within_the_bound() -> None:
    store = InMemoryStore(max_entries=10_000)
    assignment = entry("treatment")
    for n in range(1_000_000):
        store.claim(LedgerKey("exp", "", "conversation", f"c-{n}"), assignment)
        assert len(store) <= 10_000 or pytest.fail(f"{len(store)} entries after {n + 1} units")
    assert len(store) == 10_000
    assert store.touch(LedgerKey("exp", "", "conversation", "c-999999")) is not None
    assert store.touch(LedgerKey("exp", "", "conversation", "c-0")) is None


def test_threads_racing_on_the_same_units_agree_on_one_winner_each() -> None:
    store = InMemoryStore()
    winners: dict[int, list[str]] = {t: [] for t in range(8)}
    barrier = threading.Barrier(8)

    def race(thread: int) -> None:
        barrier.wait()
        for n in range(2_000):
            won, _ = store.claim(key(f"c-{n}"), entry(f"variation-from-thread-{thread}"))
            winners[thread].append(won.variation_id)

    threads = [threading.Thread(target=race, args=(t,)) for t in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(winners[t] == winners[0] for t in winners)
    assert len(store) == 2_000


def test_a_bound_below_one_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError):
        InMemoryStore(max_entries=0)


def test_a_non_positive_ttl_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError):
        InMemoryStore(ttl_seconds={"conversation": 0})
