"""Soak: 48,000 mixed sync and async evaluations from 8 threads and 200 asyncio tasks over
2,000 conversations through the real OpenFeature client (the benchmark runs 100,000).

No cross-talk (every result and every assignment scope belongs to the conversation that asked,
and each conversation keeps one variant), no deadlock (everything finishes well within a
generous timeout) and flat memory (what the second half leaves allocated is bounded, however
many evaluations it ran)."""

from __future__ import annotations

import gc
import threading
import tracemalloc
from typing import Any

from openfeature.client import OpenFeatureClient
from openfeature.evaluation_context import EvaluationContext

from featbit_experiments import Experiment, FeatBitProvider, UnitPolicy
from featbit_experiments.scope import collect_assignments
from tests.support import flags as fl
from tests.support.load import Load, Tally

EXPERIMENT = "reply-style"
ACCOUNT_EXPERIMENT = "tool-policy"
PLAIN = "answer-cache"
POLICY = UnitPolicy(
    [Experiment(EXPERIMENT, "conversation"), Experiment(ACCOUNT_EXPERIMENT, "account")]
)
FLAGS = [
    fl.flag(EXPERIMENT, ["concise", "detailed", "bulleted"]),
    fl.flag(ACCOUNT_EXPERIMENT, [True, False]),
    fl.flag(PLAIN, [True, False], serve=0),
]
CONVERSATIONS = 2_000
THREADS, TASKS = 8, 200
#: Per worker and per half: 8 x 750 + 200 x 30 = 12,000 calls of two evaluations each.
THREAD_CALLS, TASK_CALLS = 750, 30
#: Bytes the second half may leave allocated: caches settle in the first half, so what is
#: left is noise (thread and task start-up, interned strings), not a per-evaluation cost.
SECOND_HALF_GROWTH = 512 * 1024


def context_of(conversation: int) -> tuple[str, EvaluationContext]:
    conversation_id = f"conv-{conversation}"
    return conversation_id, EvaluationContext(
        f"user-{conversation % 500}",
        {"conversationId": conversation_id, "accountId": f"acct-{conversation % 40}"},
    )


class Soak:
    """The workers of one half; a scope that records another conversation's assignment (or
    the wrong number of them) is counted as cross-talk."""

    def __init__(self, client: OpenFeatureClient) -> None:
        self.client = client
        self.tally = Tally()
        self.crossed: list[tuple[str, list[str]]] = []
        self._lock = threading.Lock()

    def _check_scope(self, conversation_id: str, units: list[str]) -> None:
        if units != [conversation_id]:
            with self._lock:
                self.crossed.append((conversation_id, units))

    def call(self, worker: int, n: int) -> tuple[str, Any]:
        conversation_id, context = context_of((worker * 7_919 + n * 13) % CONVERSATIONS)
        with collect_assignments() as scope:
            details = self.client.get_string_details(EXPERIMENT, "default", context)
            self.client.get_boolean_value(PLAIN, False, context)
        self._check_scope(conversation_id, [a.unit_key.value for a in scope])
        return conversation_id, details

    async def acall(self, worker: int, n: int) -> tuple[str, Any]:
        conversation_id, context = context_of((worker * 104_729 + n * 17) % CONVERSATIONS)
        with collect_assignments() as scope:
            details = await self.client.get_string_details_async(EXPERIMENT, "default", context)
            await self.client.get_boolean_value_async(ACCOUNT_EXPERIMENT, False, context)
        units = [a.unit_key.value for a in scope if a.unit == "conversation"]
        self._check_scope(conversation_id, units)
        return conversation_id, details

    def run(self) -> None:
        """Run one half to the end; fails if it has not finished within a generous timeout."""
        threads = Load(self.tally, self.call, threads=THREADS, calls=THREAD_CALLS)
        tasks = Load(self.tally, async_call=self.acall, threads=0, tasks=TASKS, calls=TASK_CALLS)
        threads.start()
        tasks.start()
        assert threads.join(timeout=120) and tasks.join(timeout=120), "deadlock or hang"


def test_soak_of_mixed_sync_and_async_evaluations_has_no_cross_talk_deadlock_or_growth(
    make_provider: Any, of_client: Any
) -> None:
    provider: FeatBitProvider = make_provider(FLAGS, POLICY)
    client = of_client(provider)

    first = Soak(client)
    first.run()
    gc.collect()
    tracemalloc.start()
    try:
        second = Soak(client)
        second.run()
        del second.tally.by_unit, second.tally.values  # the test's own bookkeeping
        gc.collect()
        growth = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    for half in (first, second):
        assert half.tally.served == THREADS * THREAD_CALLS + TASKS * TASK_CALLS
        assert half.tally.exceptions == []
        assert half.tally.error_codes == {}
        assert half.tally.foreign == 0
        assert half.crossed == []
    assert first.tally.units_with_several_values() == {}
    assert len(first.tally.by_unit) == CONVERSATIONS
    assert growth < SECOND_HALF_GROWTH
