"""Memory follows the work: ending a unit releases everything held for it, idle units are
purged by the upkeep thread without any traffic, and the per-unit memory (two generations)
forgets idle units and stays within its bound. Time is an injected clock; the upkeep thread is
waited for on a condition, never a bare sleep."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from openfeature.evaluation_context import EvaluationContext

from featbit_experiments import (
    Assignment,
    Experiment,
    ExposureRecorder,
    FeatBitProvider,
    UnitKey,
    UnitPolicy,
)
from featbit_experiments.continuity import InMemoryStore, LedgerEntry, LedgerKey
from featbit_experiments.guardrails import EventFanout
from featbit_experiments.unit_memory import UnitMemory
from featbit_experiments.upkeep import Upkeep
from tests.support import flags as fl

FLAG = "reply-style"


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def eventually(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def assignment(unit_id: str, variation_id: str = "v-a") -> Assignment:
    return Assignment(
        experiment=Experiment(FLAG, "conversation"),
        unit_key=UnitKey("conversation", unit_id, "conversationId"),
        variation_id=variation_id,
        variant=variation_id,
        value=variation_id,
        reason="SPLIT",
        flag_version=1,
    )


# -- end_unit ------------------------------------------------------------------------------


def test_end_unit_releases_the_ledger_entry_and_the_exposure_memory(make_provider: Any) -> None:
    provider: FeatBitProvider = make_provider(
        [fl.flag(FLAG, ["concise", "detailed"])], UnitPolicy([Experiment(FLAG, "conversation")])
    )
    for n in range(50):
        context = EvaluationContext(attributes={"conversationId": f"c-{n}"})
        provider.resolve_string_details(FLAG, "concise", context)
    assert (len(provider.store), len(provider.exposures)) == (50, 50)  # type: ignore[arg-type]
    for n in range(50):
        assert provider.end_unit("conversation", f"c-{n}")
    assert (len(provider.store), len(provider.exposures)) == (0, 0)  # type: ignore[arg-type]


# -- purged without traffic ----------------------------------------------------------------


def test_idle_units_are_purged_by_the_upkeep_thread_without_traffic() -> None:
    clock = Clock()
    store = InMemoryStore(clock=clock, ttl_seconds={"conversation": 60}, sweep_interval=0.02)
    now = clock.now
    for n in range(3_000):
        store.claim(
            LedgerKey(FLAG, "", "conversation", f"c-{n}"),
            LedgerEntry("v-a", "conversation", now, now, 1),
        )
    clock.now += 61
    assert eventually(lambda: len(store) == 0)
    store.close()


def test_idle_exposure_memory_is_purged_by_the_upkeep_thread_without_traffic() -> None:
    clock = Clock()
    recorder = ExposureRecorder(
        EventFanout([]), ttl_seconds={"conversation": 60}, sweep_interval=0.02, clock=clock
    )
    for n in range(100):
        recorder.record(assignment(f"c-{n}"))

    def a_minute_later_all_are_gone() -> bool:
        clock.now += 61  # idle units go after one to two TTLs, as the sweeps come round
        return len(recorder) == 0

    assert eventually(a_minute_later_all_are_gone)


def test_the_upkeep_thread_ends_when_its_tasks_are_gone() -> None:
    upkeep = Upkeep()

    class Owner:
        calls = 0

        def tick(self) -> None:
            self.calls += 1

    owner = Owner()
    task = upkeep.every(0.01, owner.tick)
    assert eventually(lambda: owner.calls >= 3)
    task.cancel()
    assert eventually(lambda: not upkeep.running)


def test_removing_a_task_while_it_runs_returns_once_that_run_has_ended() -> None:
    """A provider cancels its tasks and then closes what they use (its store): a run under way
    must end first, else it fails on a closed connection (seen: a durability check logging a
    traceback after shutdown)."""
    upkeep = Upkeep()
    started, release = threading.Event(), threading.Event()

    class Owner:
        finished = False

        def check(self) -> None:
            started.set()
            release.wait(5)
            self.finished = True

    owner = Owner()
    task = upkeep.soon(owner.check)
    assert started.wait(5)
    threading.Timer(0.2, release.set).start()  # the run takes a while
    task.cancel()
    assert owner.finished
    assert eventually(lambda: not upkeep.running)


def test_a_task_does_not_keep_its_owner_alive() -> None:
    upkeep = Upkeep()

    class Owner:
        def tick(self) -> None:
            pass

    owner = Owner()
    upkeep.every(0.01, owner.tick)
    del owner
    assert eventually(lambda: not upkeep.running)


# -- the two-generation memory -------------------------------------------------------------


def test_a_unit_seen_within_its_ttl_is_kept_across_a_rotation() -> None:
    memory: UnitMemory[int] = UnitMemory(100, ttl=60, now=0)
    memory.put("c-1", 1)
    memory.put("c-2", 2)
    assert memory.expire(now=61) == 0
    assert memory.get("c-1") == 1  # seen: back in the current generation
    assert memory.expire(now=122) == 1  # c-2 was idle for two periods
    assert (memory.get("c-1"), memory.get("c-2")) == (1, None)


def test_the_bound_rotates_early_and_forgets_the_least_recent_units() -> None:
    memory: UnitMemory[int] = UnitMemory(4, ttl=3600, now=0)
    for n in range(20):
        memory.put(f"c-{n}", n)
        assert len(memory) <= 5
    assert memory.get("c-19") == 19 and memory.get("c-0") is None


def test_pop_releases_a_unit_from_either_generation() -> None:
    memory: UnitMemory[int] = UnitMemory(100, ttl=60, now=0)
    memory.put("c-1", 1)
    memory.expire(now=61)
    assert memory.pop("c-1") == 1
    assert len(memory) == 0
