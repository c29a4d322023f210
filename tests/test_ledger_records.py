"""What the ledger writes and says on an embedded store: the entry it claims for a new unit, and
the exact fallback it serves (and records) for a unit whose variation the flag no longer has."""

from __future__ import annotations

import time
from typing import Any

from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import ErrorCode

from featbit_experiments import Experiment, FeatBitProvider, InMemorySink, UnitPolicy
from featbit_experiments.continuity import InMemoryStore, LedgerEntry, LedgerKey
from tests.support import flags as fl
from tests.support.featbit_server import updated_at_ms

FLAG = "reply-style"
EXPERIMENT_KEY, RUN_ID = "reply-style-test", "run-7"
CONTROL, TREATMENT = "concise", "detailed"
CONTROL_ID, TREATMENT_ID = f"{FLAG}-v0", f"{FLAG}-v1"
POLICY = UnitPolicy(
    [Experiment(FLAG, "conversation", experiment_key=EXPERIMENT_KEY, run_id=RUN_ID)]
)


def turn(conversation_id: str) -> EvaluationContext:
    return EvaluationContext(attributes={"conversationId": conversation_id})


def test_a_new_unit_s_entry_records_its_variation_unit_time_and_flag_version(
    make_provider: Any,
) -> None:
    store = InMemoryStore(sweep_interval=None)
    flag = fl.flag(FLAG, [CONTROL, TREATMENT], weights=[0, 1], version=3)
    provider: FeatBitProvider = make_provider([flag], POLICY, store=store)
    before = time.time()
    assert provider.resolve_string_details(FLAG, "default", turn("c-1")).value == TREATMENT
    after = time.time()
    entry = store.touch(LedgerKey(EXPERIMENT_KEY, RUN_ID, "conversation", "c-1"))
    assert entry is not None
    assert (entry.variation_id, entry.unit, entry.flag_version) == (
        TREATMENT_ID,
        "conversation",
        updated_at_ms(flag),
    )
    assert before <= entry.assigned_at <= after


def test_a_new_unit_s_entry_says_it_was_last_seen_when_it_was_assigned(
    make_provider: Any,
) -> None:
    """The entry as the ledger claimed it, before a later turn marks it seen: ``replace`` hands
    back the previous entry as it stood (``touch`` would stamp ``last_seen`` with the store's
    clock and hide what the ledger wrote)."""
    store = InMemoryStore(sweep_interval=None)
    flag = fl.flag(FLAG, [CONTROL, TREATMENT], weights=[0, 1])
    provider: FeatBitProvider = make_provider([flag], POLICY, store=store)
    before = time.time()
    assert provider.resolve_string_details(FLAG, "default", turn("c-1")).value == TREATMENT
    after = time.time()
    key = LedgerKey(EXPERIMENT_KEY, RUN_ID, "conversation", "c-1")
    claimed = store.replace(key, LedgerEntry(CONTROL_ID, "conversation", after, after, 1))
    assert claimed is not None
    assert (claimed.variation_id, claimed.last_seen) == (TREATMENT_ID, claimed.assigned_at)
    assert before <= claimed.assigned_at <= after


def test_a_removed_variation_is_served_as_the_default_with_one_exact_message(
    make_provider: Any, sink: InMemorySink
) -> None:
    store = InMemoryStore(sweep_interval=None)
    first: FeatBitProvider = make_provider(
        [fl.flag(FLAG, [CONTROL, TREATMENT], weights=[0, 1])], POLICY, store=store
    )
    assert first.resolve_string_details(FLAG, "default", turn("c-1")).value == TREATMENT
    without_treatment = fl.flag(FLAG, [CONTROL], variation_ids=[f"{FLAG}-v0"], version=2)
    after: FeatBitProvider = make_provider([without_treatment], POLICY, store=store)
    details = after.resolve_string_details(FLAG, "default", turn("c-1"))
    message = (
        f"a conversation was assigned variation {TREATMENT_ID!r} of experiment "
        f"{EXPERIMENT_KEY!r}, which flag {FLAG!r} no longer has; serving the default rather "
        "than re-randomizing an active unit"
    )
    assert (details.value, details.error_code, details.error_message) == (
        "default",
        ErrorCode.GENERAL,
        message,
    )
    [fallback] = sink.guardrails("fallback_used")
    assert fallback["message"] == message
    assert (fallback["variationId"], fallback["flagKey"], fallback["unitId"]) == (
        TREATMENT_ID,
        FLAG,
        "c-1",
    )
