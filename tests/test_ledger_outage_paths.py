"""The ledger's outage paths, each pinned by what it serves and records: which variation a
unit gets while Redis is down, under ``finish_active`` and ``contain``, when FeatBit errors, and
what the ledger says (``store_unavailable``, ``fallback_used``, ``variant_switched``) with which
unit attributes; and what happens once Redis answers again.

Each test runs its own throwaway ``redis-server`` so it can stop it, and offline providers
whose rollouts move the way FeatBit's do (the client receives a newer version of the flag).
An experiment key and run id distinct from the flag key make each guardrail attribute
traceable to its source.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import Reason

from featbit_experiments import Experiment, FeatBitProvider, InMemorySink, RollbackMode, UnitPolicy
from featbit_experiments.continuity import InMemoryStore, LedgerKey, RedisStore, StoreUnavailable
from featbit_experiments.continuity.store import AssignmentStore
from tests.support import flags as fl
from tests.support.redis_server import ThrowawayRedis
from tests.test_events_featbit_experiments import PublicSurfaceOnly

FLAG = "reply-style"
EXPERIMENT_KEY, RUN_ID = "reply-style-test", "run-7"
CONTROL, TREATMENT = "concise", "detailed"
CONTROL_ID, TREATMENT_ID = f"{FLAG}-v0", f"{FLAG}-v1"
UNIT_FIELDS = ("flagKey", "experimentKey", "runId", "assignmentUnit", "unitId")

InstanceFactory = Callable[..., FeatBitProvider]


def experiment_flag(treatment: float, version: int = 1) -> dict[str, Any]:
    return fl.flag(FLAG, [CONTROL, TREATMENT], weights=[1 - treatment, treatment], version=version)


def broken_flag(version: int) -> dict[str, Any]:
    """The experiment flag with a fallthrough FeatBit cannot evaluate."""
    flag = experiment_flag(1.0, version)
    flag["fallthrough"]["variations"] = fl.serve("no-such-variation")
    return flag


def policy(rollback: RollbackMode) -> UnitPolicy:
    return UnitPolicy(
        [
            Experiment(
                FLAG,
                "conversation",
                experiment_key=EXPERIMENT_KEY,
                run_id=RUN_ID,
                rollback=rollback,
            )
        ]
    )


def evaluate(provider: FeatBitProvider, conversation_id: str) -> Any:
    context = EvaluationContext(attributes={"conversationId": conversation_id})
    return provider.resolve_string_details(FLAG, "default", context)


def move_rollout(client: Any, flag: dict[str, Any]) -> None:
    """The instance's FeatBit client receives a newer version of the flag."""
    assert client.initialize_from_external_json(fl.bootstrap_json([flag]))


def unit_of(guardrail: dict[str, Any]) -> dict[str, Any]:
    return {name: guardrail.get(name) for name in UNIT_FIELDS}


def expected_unit(conversation_id: str) -> dict[str, Any]:
    return {
        "flagKey": FLAG,
        "experimentKey": EXPERIMENT_KEY,
        "runId": RUN_ID,
        "assignmentUnit": "conversation",
        "unitId": conversation_id,
    }


def outage_error(store: AssignmentStore) -> str:
    """The StoreUnavailable message the store raises now (it is down)."""
    with pytest.raises(StoreUnavailable) as raised:
        store.touch(LedgerKey(EXPERIMENT_KEY, RUN_ID, "conversation", "probe"))
    return str(raised.value)


def wait_until_answering(store: RedisStore, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            store.touch(LedgerKey("probe", "", "conversation", "probe"))
            return
        except StoreUnavailable:
            assert time.monotonic() < deadline, "the store never answered again"
            time.sleep(0.02)


@pytest.fixture
def server() -> Iterator[ThrowawayRedis]:
    with ThrowawayRedis() as running:
        yield running


@pytest.fixture
def store(server: ThrowawayRedis) -> Iterator[RedisStore]:
    made = RedisStore(server.url, key_prefix=f"paths-{uuid.uuid4().hex[:8]}:", retry_interval=0.0)
    yield made
    made.close()


@pytest.fixture
def instance(make_provider: Any, store: RedisStore) -> InstanceFactory:
    def make(rollback: RollbackMode, treatment: float = 1.0) -> FeatBitProvider:
        provider: FeatBitProvider = make_provider(
            [experiment_flag(treatment)], policy(rollback), store=store
        )
        return provider

    return make


# -- contain ----------------------------------------------------------------------------------


def test_contain_with_the_store_down_serves_featbit_and_reports_the_outage_for_the_unit(
    server: ThrowawayRedis, store: RedisStore, instance: InstanceFactory, sink: InMemorySink
) -> None:
    provider = instance(RollbackMode.CONTAIN)
    assert evaluate(provider, "c-0").value == TREATMENT  # the run's unit is on record
    server.stop()
    error = outage_error(store)
    first = evaluate(provider, "c-1")
    again = evaluate(provider, "c-1")
    assert [(r.value, r.error_code) for r in (first, again)] == [(TREATMENT, None)] * 2
    [outage] = sink.guardrails("store_unavailable")
    assert unit_of(outage) == expected_unit("c-1")
    assert outage["message"].endswith(f": {error}")
    assert sink.guardrails("variant_switched") == []

    move_rollout(provider.client, experiment_flag(0.0, version=2))
    moved = evaluate(provider, "c-1")
    assert (moved.value, moved.error_code) == (CONTROL, None)
    [switch] = sink.guardrails("variant_switched")
    assert unit_of(switch) == expected_unit("c-1")
    assert (switch["fromVariationId"], switch["toVariationId"]) == (TREATMENT_ID, CONTROL_ID)
    assert "(rollback: contain)" in switch["message"]


def test_contain_reports_a_move_made_while_the_store_was_down_once_it_answers(
    server: ThrowawayRedis, store: RedisStore, instance: InstanceFactory, sink: InMemorySink
) -> None:
    provider = instance(RollbackMode.CONTAIN)
    server.stop()
    assert evaluate(provider, "c-1").value == TREATMENT
    server.start()
    wait_until_answering(store)
    move_rollout(provider.client, experiment_flag(0.0, version=2))
    back = evaluate(provider, "c-1")
    assert (back.value, back.error_code) == (CONTROL, None)
    [switch] = sink.guardrails("variant_switched")
    assert unit_of(switch) == expected_unit("c-1")
    assert (switch["fromVariationId"], switch["toVariationId"]) == (TREATMENT_ID, CONTROL_ID)
    assert "(rollback: contain)" in switch["message"]


def test_contain_after_a_featbit_error_serves_the_ledger_variation_from_redis(
    instance: InstanceFactory, sink: InMemorySink, caplog: pytest.LogCaptureFixture
) -> None:
    provider = instance(RollbackMode.CONTAIN)
    assert evaluate(provider, "c-1").value == TREATMENT
    move_rollout(provider.client, broken_flag(version=2))
    with caplog.at_level(logging.ERROR, logger="featbit_experiments"):
        held = evaluate(provider, "c-1")
    assert (held.value, held.reason, held.error_code) == (TREATMENT, Reason.CACHED, None)
    assert sink.guardrails("fallback_used") == []
    assert sink.guardrails("variant_switched") == []
    assert [r.getMessage() for r in caplog.records if r.exc_info] == [
        f"FeatBit evaluation of {FLAG!r} failed"
    ]


def test_contain_with_featbit_erroring_and_the_store_down_serves_what_this_instance_served(
    server: ThrowawayRedis, instance: InstanceFactory, sink: InMemorySink
) -> None:
    provider = instance(RollbackMode.CONTAIN)
    assert evaluate(provider, "c-1").value == TREATMENT
    server.stop()
    move_rollout(provider.client, broken_flag(version=2))
    held = evaluate(provider, "c-1")
    assert (held.value, held.reason, held.error_code) == (TREATMENT, Reason.CACHED, None)
    [outage] = sink.guardrails("store_unavailable")
    assert unit_of(outage) == expected_unit("c-1")
    assert sink.guardrails("fallback_used") == []


def test_contain_with_featbit_erroring_and_nothing_known_serves_the_default_with_fallback_used(
    server: ThrowawayRedis, store: RedisStore, instance: InstanceFactory, sink: InMemorySink
) -> None:
    provider = instance(RollbackMode.CONTAIN)
    assert evaluate(provider, "c-0").value == TREATMENT  # the run's unit is on record
    server.stop()
    error = outage_error(store)
    move_rollout(provider.client, broken_flag(version=2))
    result = evaluate(provider, "c-new")
    assert (result.value, result.error_code) == ("default", ErrorCode.GENERAL)
    [outage] = sink.guardrails("store_unavailable")
    assert unit_of(outage) == expected_unit("c-new")
    assert outage["message"].endswith(f": {error}")
    [fallback] = sink.guardrails("fallback_used")
    assert unit_of(fallback) == expected_unit("c-new")
    assert fallback["errorCode"] == result.error_code.value
    assert fallback["message"] == (
        f"no variation is known for this conversation in experiment {EXPERIMENT_KEY!r} "
        f"({result.error_message}); serving the default"
    )


# -- finish_active ------------------------------------------------------------------------------


def test_finish_active_keeps_a_unit_served_during_an_outage_once_the_store_is_back(
    server: ThrowawayRedis, store: RedisStore, instance: InstanceFactory, sink: InMemorySink
) -> None:
    provider = instance(RollbackMode.FINISH_ACTIVE)
    server.stop()
    assert evaluate(provider, "c-1").value == TREATMENT
    server.start()
    wait_until_answering(store)
    move_rollout(provider.client, experiment_flag(0.0, version=2))
    kept = [evaluate(provider, "c-1") for _ in range(2)]
    assert [(r.value, r.reason) for r in kept] == [(TREATMENT, Reason.CACHED)] * 2
    assert evaluate(provider, "c-2").value == CONTROL
    assert sink.guardrails("variant_switched") == []


def test_finish_active_with_featbit_erroring_and_the_store_down_serves_what_it_served(
    server: ThrowawayRedis, store: RedisStore, instance: InstanceFactory, sink: InMemorySink
) -> None:
    provider = instance(RollbackMode.FINISH_ACTIVE)
    assert evaluate(provider, "c-1").value == TREATMENT
    server.stop()
    error = outage_error(store)
    move_rollout(provider.client, broken_flag(version=2))
    held = evaluate(provider, "c-1")
    assert (held.value, held.reason, held.error_code) == (TREATMENT, Reason.CACHED, None)
    [outage] = sink.guardrails("store_unavailable")
    assert unit_of(outage) == expected_unit("c-1")
    assert outage["message"].endswith(f": {error}")

    unknown = evaluate(provider, "c-new")
    assert (unknown.value, unknown.error_code) == ("default", ErrorCode.GENERAL)
    [fallback] = sink.guardrails("fallback_used")
    assert unit_of(fallback) == expected_unit("c-new")
    assert fallback["errorCode"] == unknown.error_code.value
    assert fallback["message"] == (
        f"no variation is known for this conversation in experiment {EXPERIMENT_KEY!r} "
        f"({unknown.error_message}); serving the default"
    )


# -- an SDK without the evaluator internals (FeatBit asked through variation_detail) ------------


@pytest.fixture
def degraded(
    make_provider: Any, store: RedisStore, sink: InMemorySink
) -> Iterator[Callable[[RollbackMode], FeatBitProvider]]:
    made: list[FeatBitProvider] = []

    def make(rollback: RollbackMode) -> FeatBitProvider:
        owned = make_provider([experiment_flag(1.0)], policy(rollback))
        provider = FeatBitProvider(
            PublicSurfaceOnly(owned.client), policy=policy(rollback), sinks=[sink], store=store
        )
        made.append(provider)
        return provider

    yield make
    for provider in made:
        provider.shutdown()


def test_without_sdk_internals_finish_active_with_the_store_down_serves_featbit_and_keeps_it(
    server: ThrowawayRedis,
    store: RedisStore,
    degraded: Callable[[RollbackMode], FeatBitProvider],
    sink: InMemorySink,
) -> None:
    provider = degraded(RollbackMode.FINISH_ACTIVE)
    server.stop()
    error = outage_error(store)
    first = evaluate(provider, "c-1")
    assert (first.value, first.error_code) == (TREATMENT, None)
    [outage] = sink.guardrails("store_unavailable")
    assert unit_of(outage) == expected_unit("c-1")
    assert outage["message"].endswith(f": {error}")

    move_rollout(provider.client, experiment_flag(0.0, version=2))
    during = evaluate(provider, "c-1")
    assert (during.value, during.reason) == (TREATMENT, Reason.CACHED)
    server.start()
    wait_until_answering(store)
    after = evaluate(provider, "c-1")
    assert (after.value, after.reason) == (TREATMENT, Reason.CACHED)
    assert evaluate(provider, "c-2").value == CONTROL
    assert sink.guardrails("variant_switched") == []


def test_finish_active_serves_the_ledger_over_what_it_served_in_an_outage_and_reports_the_move(
    server: ThrowawayRedis,
    store: RedisStore,
    make_provider: Any,
    instance: InstanceFactory,
    sink: InMemorySink,
) -> None:
    provider = instance(RollbackMode.FINISH_ACTIVE)
    server.stop()
    assert evaluate(provider, "c-1").value == TREATMENT
    server.start()
    wait_until_answering(store)
    other = make_provider([experiment_flag(0.0)], policy(RollbackMode.FINISH_ACTIVE), store=store)
    assert evaluate(other, "c-1").value == CONTROL
    served = evaluate(provider, "c-1")
    assert (served.value, served.reason) == (CONTROL, Reason.CACHED)
    [switch] = sink.guardrails("variant_switched")
    assert unit_of(switch) == expected_unit("c-1")
    assert (switch["fromVariationId"], switch["toVariationId"]) == (TREATMENT_ID, CONTROL_ID)
    assert "(rollback: finish_active, after the ledger lost it or was down)" in switch["message"]


def test_end_unit_with_the_store_down_returns_false_reports_it_and_forgets_the_unit(
    server: ThrowawayRedis, store: RedisStore, instance: InstanceFactory, sink: InMemorySink
) -> None:
    provider = instance(RollbackMode.FINISH_ACTIVE)
    server.stop()
    error = outage_error(store)
    assert provider.end_unit("conversation", "c-0") is False
    [outage] = sink.guardrails("store_unavailable")
    assert (outage["operation"], outage["assignmentUnit"]) == ("end_unit", "conversation")
    assert outage["message"].endswith(f": {error}")

    assert evaluate(provider, "c-1").value == TREATMENT
    assert evaluate(provider, "c-2").value == TREATMENT
    assert provider.end_unit("conversation", "c-1") is False
    server.start()
    wait_until_answering(store)
    move_rollout(provider.client, experiment_flag(0.0, version=2))
    # c-1 ended: the current rollout; c-2 did not: what this instance served it, put back
    assert [evaluate(provider, c).value for c in ("c-1", "c-2")] == [CONTROL, TREATMENT]


class InterruptedClient(PublicSurfaceOnly):
    """The SDK without its internals, with something happening while FeatBit evaluates: what
    happens in the world between the ledger's read of a unit and its claim of it."""

    def __init__(self, client: Any, meanwhile: Callable[[], None]) -> None:
        super().__init__(client)
        self._meanwhile = meanwhile

    def then(self, meanwhile: Callable[[], None]) -> None:
        """Have ``meanwhile`` happen during the next evaluation."""
        self._meanwhile = meanwhile

    def variation_detail(self, *args: Any, **kwargs: Any) -> Any:
        meanwhile, self._meanwhile = self._meanwhile, lambda: None
        meanwhile()
        return self._client.variation_detail(*args, **kwargs)


@pytest.fixture
def interrupted(
    make_provider: Any, store: RedisStore, sink: InMemorySink
) -> Iterator[Callable[[Callable[[], None]], tuple[FeatBitProvider, Any]]]:
    made: list[FeatBitProvider] = []

    def make(meanwhile: Callable[[], None]) -> tuple[FeatBitProvider, Any]:
        owned = make_provider([experiment_flag(1.0)], policy(RollbackMode.FINISH_ACTIVE))
        provider = FeatBitProvider(
            InterruptedClient(owned.client, meanwhile),
            policy=policy(RollbackMode.FINISH_ACTIVE),
            sinks=[sink],
            store=store,
        )
        made.append(provider)
        return provider, owned.client

    yield make
    for provider in made:
        provider.shutdown()


def test_redis_stopping_between_the_ledger_read_and_its_claim_keeps_the_unit_on_its_variant(
    server: ThrowawayRedis,
    store: RedisStore,
    interrupted: Callable[[Callable[[], None]], tuple[FeatBitProvider, Any]],
    sink: InMemorySink,
) -> None:
    provider, client = interrupted(server.stop)
    served = evaluate(provider, "c-1")
    assert (served.value, served.error_code) == (TREATMENT, None)
    error = outage_error(store)
    [outage] = sink.guardrails("store_unavailable")
    assert unit_of(outage) == expected_unit("c-1")
    assert outage["message"].endswith(f": {error}")

    server.start()
    wait_until_answering(store)
    move_rollout(client, experiment_flag(0.0, version=2))
    kept = evaluate(provider, "c-1")
    assert (kept.value, kept.reason) == (TREATMENT, Reason.CACHED)
    assert evaluate(provider, "c-2").value == CONTROL


def test_another_instance_claiming_first_wins_and_its_variation_is_served(
    store: RedisStore,
    make_provider: Any,
    interrupted: Callable[[Callable[[], None]], tuple[FeatBitProvider, Any]],
    sink: InMemorySink,
) -> None:
    other = make_provider([experiment_flag(0.0)], policy(RollbackMode.FINISH_ACTIVE), store=store)
    provider, _ = interrupted(lambda: evaluate(other, "c-1"))
    served = evaluate(provider, "c-1")
    assert (served.value, served.reason, served.error_code) == (CONTROL, Reason.CACHED, None)
    assert sink.guardrails("variant_switched") == []


def test_what_an_instance_claimed_is_what_it_serves_when_the_store_goes_down(
    server: ThrowawayRedis,
    degraded: Callable[[RollbackMode], FeatBitProvider],
) -> None:
    provider = degraded(RollbackMode.FINISH_ACTIVE)
    assert evaluate(provider, "c-1").value == TREATMENT
    server.stop()
    move_rollout(provider.client, experiment_flag(0.0, version=2))
    kept = evaluate(provider, "c-1")
    assert (kept.value, kept.reason) == (TREATMENT, Reason.CACHED)
    assert evaluate(provider, "c-2").value == CONTROL


def test_finish_active_with_featbit_erroring_serves_the_variation_redis_holds(
    store: RedisStore,
    make_provider: Any,
    instance: InstanceFactory,
    sink: InMemorySink,
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert evaluate(instance(RollbackMode.FINISH_ACTIVE), "c-1").value == TREATMENT
    other = make_provider([experiment_flag(0.0)], policy(RollbackMode.FINISH_ACTIVE), store=store)
    move_rollout(other.client, broken_flag(2))
    with caplog.at_level(logging.ERROR, logger="featbit_experiments"):
        held = evaluate(other, "c-1")
    assert (held.value, held.reason, held.error_code) == (TREATMENT, Reason.CACHED, None)
    assert sink.guardrails("fallback_used") == []
    assert [r.getMessage() for r in caplog.records if r.exc_info] == [
        f"FeatBit evaluation of {FLAG!r} failed"
    ]


def test_a_claimed_entry_records_its_variation_unit_and_times(
    store: RedisStore, instance: InstanceFactory
) -> None:
    provider = instance(RollbackMode.FINISH_ACTIVE)
    before = time.time()
    assert evaluate(provider, "c-1").value == TREATMENT
    after = time.time()
    entry = store.touch(LedgerKey(EXPERIMENT_KEY, RUN_ID, "conversation", "c-1"))
    assert entry is not None
    assert (entry.variation_id, entry.unit) == (TREATMENT_ID, "conversation")
    assert before <= entry.assigned_at <= after
    assert entry.assigned_at <= entry.last_seen


def test_an_exception_escaping_the_sdk_serves_the_default_with_fallback_used_and_a_log_line(
    interrupted: Callable[[Callable[[], None]], tuple[FeatBitProvider, Any]],
    sink: InMemorySink,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def sdk_bug() -> None:
        raise RuntimeError("boom")

    provider, _ = interrupted(sdk_bug)
    with caplog.at_level(logging.ERROR, logger="featbit_experiments"):
        failed = evaluate(provider, "c-1")
    assert (failed.value, failed.error_code, failed.error_message) == (
        "default",
        ErrorCode.GENERAL,
        "FeatBit evaluation failed: boom",
    )
    [line] = [r for r in caplog.records if r.exc_info is not None]
    assert line.getMessage() == f"FeatBit evaluation of {FLAG!r} failed"
    [fallback] = sink.guardrails("fallback_used")
    assert unit_of(fallback) == expected_unit("c-1")
    assert fallback["errorCode"] == "GENERAL"
    assert fallback["message"] == (
        f"no variation is known for this conversation in experiment {EXPERIMENT_KEY!r} "
        "(FeatBit evaluation failed: boom); serving the default"
    )
    assert evaluate(provider, "c-1").value == TREATMENT  # the next turn asks FeatBit again


class RemoteWithoutLocalCopy:
    """A third-party remote store (the ``AssignmentStore`` protocol) that keeps no local copy
    of the ledger, so it has no ``cached``; backed here by an in-process map."""

    is_remote = True

    def __init__(self) -> None:
        self._map = InMemoryStore(sweep_interval=None)

    def touch(self, key: LedgerKey) -> Any:
        return self._map.touch(key)

    def claim(self, key: LedgerKey, entry: Any) -> Any:
        return self._map.claim(key, entry)

    def replace(self, key: LedgerKey, entry: Any) -> Any:
        return self._map.replace(key, entry)

    def end_unit(self, unit: str, unit_id: str) -> bool:
        return self._map.end_unit(unit, unit_id)

    def record_unit(self, experiment_key: str, run_id: str, unit: str) -> str:
        return self._map.record_unit(experiment_key, run_id, unit)

    def close(self) -> None:
        self._map.close()


def test_a_remote_store_without_a_local_copy_serves_a_known_unit_from_the_ledger(
    make_provider: Any,
) -> None:
    store = RemoteWithoutLocalCopy()
    provider = make_provider(
        [experiment_flag(1.0)], policy(RollbackMode.FINISH_ACTIVE), store=store
    )
    assert evaluate(provider, "c-1").value == TREATMENT
    move_rollout(provider.client, experiment_flag(0.0, version=2))
    kept = evaluate(provider, "c-1")
    assert (kept.value, kept.reason, kept.error_code) == (TREATMENT, Reason.CACHED, None)


def served_redis_after_featbit_error(
    mode: RollbackMode,
    server: ThrowawayRedis,
    store: RedisStore,
    make_provider: Any,
    instance: InstanceFactory,
    sink: InMemorySink,
) -> Any:
    """This instance serves c-1 TREATMENT while Redis is down; once Redis is back another
    instance claims it CONTROL; then FeatBit errors here, so the ledger's CONTROL is served."""
    provider = instance(mode)
    server.stop()
    assert evaluate(provider, "c-1").value == TREATMENT
    server.start()
    wait_until_answering(store)
    other = make_provider([experiment_flag(0.0)], policy(mode), store=store)
    assert evaluate(other, "c-1").value == CONTROL
    sink.clear()
    move_rollout(provider.client, broken_flag(version=2))
    return evaluate(provider, "c-1")


def test_contain_serving_the_ledger_after_a_featbit_error_names_contain_in_the_switch(
    server: ThrowawayRedis,
    store: RedisStore,
    make_provider: Any,
    instance: InstanceFactory,
    sink: InMemorySink,
) -> None:
    served = served_redis_after_featbit_error(
        RollbackMode.CONTAIN, server, store, make_provider, instance, sink
    )
    assert (served.value, served.reason, served.error_code) == (CONTROL, Reason.CACHED, None)
    [switch] = sink.guardrails("variant_switched")
    assert unit_of(switch) == expected_unit("c-1")
    assert (switch["fromVariationId"], switch["toVariationId"]) == (TREATMENT_ID, CONTROL_ID)
    assert "(rollback: contain)" in switch["message"]


def test_contain_reports_a_rollout_move_and_serves_the_new_variation_through_an_outage(
    server: ThrowawayRedis, instance: InstanceFactory, sink: InMemorySink
) -> None:
    provider = instance(RollbackMode.CONTAIN)
    assert evaluate(provider, "c-1").value == TREATMENT
    move_rollout(provider.client, experiment_flag(0.0, version=2))
    moved = evaluate(provider, "c-1")
    assert (moved.value, moved.error_code) == (CONTROL, None)
    [switch] = sink.guardrails("variant_switched")
    assert unit_of(switch) == expected_unit("c-1")
    assert (switch["fromVariationId"], switch["toVariationId"]) == (TREATMENT_ID, CONTROL_ID)
    assert "(rollback: contain)" in switch["message"]

    server.stop()
    move_rollout(provider.client, broken_flag(version=3))
    held = evaluate(provider, "c-1")
    assert (held.value, held.reason, held.error_code) == (CONTROL, Reason.CACHED, None)


class RolloutLandsMidEvaluation:
    """A real FeatBit client on which a newer flag version arrives the moment anything reads
    the flag from its store again during an evaluation (after the resolver's own read)."""

    def __init__(self, client: Any, newer: dict[str, Any]) -> None:
        self._client = client
        self._newer = newer

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def _get_flag_internal(self, key: str) -> Any:
        move_rollout(self._client, self._newer)
        return self._client._get_flag_internal(key)


@pytest.mark.parametrize("rollback", [RollbackMode.FINISH_ACTIVE, RollbackMode.CONTAIN])
def test_featbit_evaluates_the_flag_version_the_ledger_checked(
    rollback: RollbackMode, store: RedisStore, make_provider: Any, sink: InMemorySink
) -> None:
    owned = make_provider([experiment_flag(1.0)], policy(rollback))
    provider = FeatBitProvider(
        RolloutLandsMidEvaluation(owned.client, experiment_flag(0.0, version=2)),
        policy=policy(rollback),
        sinks=[sink],
        store=store,
    )
    try:
        served = evaluate(provider, "c-1")
    finally:
        provider.shutdown()
    assert (served.value, served.error_code) == (TREATMENT, None)


def test_finish_active_serving_redis_after_a_featbit_error_names_finish_active_in_the_switch(
    server: ThrowawayRedis,
    store: RedisStore,
    make_provider: Any,
    instance: InstanceFactory,
    sink: InMemorySink,
) -> None:
    served = served_redis_after_featbit_error(
        RollbackMode.FINISH_ACTIVE, server, store, make_provider, instance, sink
    )
    assert (served.value, served.reason, served.error_code) == (CONTROL, Reason.CACHED, None)
    [switch] = sink.guardrails("variant_switched")
    assert (switch["fromVariationId"], switch["toVariationId"]) == (TREATMENT_ID, CONTROL_ID)
    assert "(rollback: finish_active, after the ledger lost it or was down)" in switch["message"]


def test_a_claim_redis_timed_out_on_keeps_the_unit_in_doubt_until_it_is_claimed_again(
    server: ThrowawayRedis,
    store: RedisStore,
    interrupted: Callable[[Callable[[], None]], tuple[FeatBitProvider, Any]],
) -> None:
    admin = redis.Redis.from_url(server.url)

    def pause_redis() -> None:  # Redis stalls past the store's timeout, keeping its data
        admin.client_pause(1000)

    provider, client = interrupted(pause_redis)
    assert evaluate(provider, "c-1").value == TREATMENT
    admin.client_unpause()
    wait_until_answering(store)
    move_rollout(client, experiment_flag(0.0, version=2))
    kept = evaluate(provider, "c-1")
    assert (kept.value, kept.reason) == (TREATMENT, Reason.CACHED)
    admin.close()


def test_finish_active_losing_the_claim_after_an_outage_names_finish_active_in_the_switch(
    server: ThrowawayRedis,
    store: RedisStore,
    make_provider: Any,
    sink: InMemorySink,
) -> None:
    """This instance served the unit a third variation while Redis was down; the flag then
    dropped it, so there is nothing to put back, and FeatBit gives the unit another variation,
    which another instance beats to the claim. The unit moves to the winner's variation: a
    switch under finish_active, not contain."""
    brief = fl.flag(FLAG, [CONTROL, TREATMENT, "brief"], weights=[0, 0, 1])
    owned = make_provider([brief], policy(RollbackMode.FINISH_ACTIVE))
    client = InterruptedClient(owned.client, lambda: None)
    provider = FeatBitProvider(
        client, policy=policy(RollbackMode.FINISH_ACTIVE), sinks=[sink], store=store
    )
    try:
        server.stop()
        assert evaluate(provider, "c-1").value == "brief"
        server.start()
        wait_until_answering(store)
        move_rollout(owned.client, experiment_flag(1.0, version=2))
        other = make_provider(
            [experiment_flag(0.0)], policy(RollbackMode.FINISH_ACTIVE), store=store
        )
        client.then(lambda: evaluate(other, "c-1"))
        sink.clear()
        served = evaluate(provider, "c-1")
    finally:
        provider.shutdown()
    assert (served.value, served.reason, served.error_code) == (CONTROL, Reason.CACHED, None)
    [switch] = sink.guardrails("variant_switched")
    assert unit_of(switch) == expected_unit("c-1")
    assert (switch["fromVariationId"], switch["toVariationId"]) == (f"{FLAG}-v2", CONTROL_ID)
    assert "(rollback: finish_active, after the ledger lost it or was down)" in switch["message"]


class ClaimedFirstElsewhere:
    """A RedisStore on which another instance claims a unit the moment this instance goes to
    claim it (once ``then`` armed it): the race between the ledger's read and its claim."""

    is_remote = True

    def __init__(self, store: RedisStore) -> None:
        self._store = store
        self._meanwhile: Callable[[], None] = lambda: None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def then(self, meanwhile: Callable[[], None]) -> None:
        self._meanwhile = meanwhile

    def claim(self, key: LedgerKey, entry: Any) -> Any:
        meanwhile, self._meanwhile = self._meanwhile, lambda: None
        meanwhile()
        return self._store.claim(key, entry)


@pytest.mark.parametrize(
    ("elsewhere", "expected", "moved_to"),
    [
        (experiment_flag(0.0), CONTROL, CONTROL_ID),
        # the other instance's flag has a variation this one's lacks: the default, said so
        (fl.flag(FLAG, [CONTROL, TREATMENT, "brief"], weights=[0, 0, 1]), "default", f"{FLAG}-v2"),
    ],
)
def test_a_unit_served_in_an_outage_that_another_instance_claims_first_reports_its_switch(
    elsewhere: dict[str, Any],
    expected: str,
    moved_to: str,
    server: ThrowawayRedis,
    store: RedisStore,
    make_provider: Any,
    sink: InMemorySink,
) -> None:
    """Without the SDK internals the ledger reads the unit, finds nothing, and puts back what
    it served during the outage with a claim; another instance's claim lands first. The unit
    gets the ledger's variation (finish_active), and the move is a guardrail, not silent."""
    racing = ClaimedFirstElsewhere(store)
    owned = make_provider([experiment_flag(1.0)], policy(RollbackMode.FINISH_ACTIVE))
    provider = FeatBitProvider(
        PublicSurfaceOnly(owned.client),
        policy=policy(RollbackMode.FINISH_ACTIVE),
        sinks=[sink],
        store=racing,
    )
    try:
        server.stop()
        assert evaluate(provider, "c-1").value == TREATMENT
        server.start()
        wait_until_answering(store)
        other = make_provider([elsewhere], policy(RollbackMode.FINISH_ACTIVE), store=store)
        racing.then(lambda: evaluate(other, "c-1"))
        sink.clear()
        served = evaluate(provider, "c-1")
        again = evaluate(provider, "c-1")
    finally:
        provider.shutdown()
    assert [r.value for r in (served, again)] == [expected] * 2
    [switch] = sink.guardrails("variant_switched")
    assert unit_of(switch) == expected_unit("c-1")
    assert (switch["fromVariationId"], switch["toVariationId"]) == (TREATMENT_ID, moved_to)
    assert "(rollback: finish_active, after the ledger lost it or was down)" in switch["message"]
    fallbacks = [(g.get("variationId"), g["message"]) for g in sink.guardrails("fallback_used")]
    no_longer = f"which flag {FLAG!r} no longer has; serving the default"
    assert [(v, no_longer in message) for v, message in fallbacks] == (
        [] if expected == CONTROL else [(moved_to, True)] * 2
    )
