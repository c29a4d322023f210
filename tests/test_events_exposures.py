"""Exposure events: one per experiment run, unit ID and variant, with every field the audit
joins on; deduplicated in a bounded memory, and across instances through a shared store."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import redis
from openfeature.evaluation_context import EvaluationContext
from redis.backoff import NoBackoff
from redis.retry import Retry

from featbit_experiments import (
    Assignment,
    EventSink,
    Experiment,
    ExposureRecorder,
    Guardrail,
    InMemorySink,
    Privacy,
    RedisSeenKeys,
    UnitKey,
    UnitPolicy,
)
from featbit_experiments import event_schema as schema
from featbit_experiments.guardrails import EventFanout
from tests.support import flags as fl

SUPPORT = "support-retrieval-test"
ARMS = ["control", "retrieval_profile_b"]
KEY = "0123456789abcdef-exposure-key"
IDS = {"conversationId": "c-1", "userId": "u-1", "accountId": "a-1", "workflowId": "w-1"}


def ctx(conversation: str = "c-1", **ids: str) -> EvaluationContext:
    return EvaluationContext("u-1", {**IDS, "conversationId": conversation, **ids})


def experiment_provider(make_provider, **options: Any):
    flag = fl.flag(SUPPORT, ARMS, tags=["unit:conversation"], version=7)
    return make_provider([flag], UnitPolicy(), **options)


def assignment(
    unit_id: str = "c-1", variation_id: str = "v-a", run_id: str = "", variant: str = ""
) -> Assignment:
    return Assignment(
        experiment=Experiment(SUPPORT, "conversation", run_id=run_id),
        unit_key=UnitKey("conversation", unit_id, "conversationId"),
        variation_id=variation_id,
        variant=variant or variation_id,
        value=variant or variation_id,
        reason="SPLIT",
        flag_version=1,
        other_ids={"conversationId": unit_id},
    )


def exposures(sink: InMemorySink) -> list[dict[str, Any]]:
    return sink.of_kind(schema.EXPOSURE)


def test_exposure_carries_experiment_unit_ids_variant_and_flag_version(
    make_provider, of_client, sink: InMemorySink
) -> None:
    client = of_client(experiment_provider(make_provider))
    details = client.get_string_details(SUPPORT, "control", ctx())
    [exposure] = exposures(sink)
    assert exposure[schema.EVENT] == "experiment_exposure"
    assert exposure[schema.EXPERIMENT_KEY] == SUPPORT
    assert exposure[schema.RUN_ID] == ""
    assert exposure[schema.FLAG_KEY] == SUPPORT
    assert exposure[schema.FLAG_VERSION] == details.flag_metadata["version"]
    assert exposure[schema.ASSIGNMENT_UNIT] == "conversation"
    assert exposure[schema.UNIT_ID] == "c-1"
    assert {k: exposure[k] for k in IDS} == IDS
    assert exposure[schema.VARIATION] == details.variant == details.value
    assert exposure[schema.VARIATION_ID] == details.flag_metadata["variationId"]
    assert exposure[schema.REASON] == "SPLIT"
    assert exposure[schema.TIMESTAMP].endswith("Z")


def test_later_turns_of_a_conversation_add_no_exposure(
    make_provider, of_client, sink: InMemorySink
) -> None:
    client = of_client(experiment_provider(make_provider))
    for _ in range(5):
        client.get_string_value(SUPPORT, "control", ctx("c-1"))
    client.get_string_value(SUPPORT, "control", ctx("c-2"))
    assert [e[schema.UNIT_ID] for e in exposures(sink)] == ["c-1", "c-2"]


def test_a_refused_evaluation_sends_no_exposure(
    make_provider, of_client, sink: InMemorySink
) -> None:
    client = of_client(experiment_provider(make_provider))
    client.get_string_value(SUPPORT, "control", EvaluationContext("u-1", {"userId": "u-1"}))
    assert exposures(sink) == []
    assert sink.guardrails(Guardrail.MISSING_UNIT_ID)


def test_an_ordinary_flag_sends_no_exposure(make_provider, of_client, sink: InMemorySink) -> None:
    client = of_client(make_provider([fl.flag("banner", ["on", "off"])]))
    client.get_string_value("banner", "off", ctx())
    assert exposures(sink) == []


def test_a_changed_variant_is_a_second_exposure_so_mixed_units_are_visible() -> None:
    sink = InMemorySink()
    recorder = ExposureRecorder(EventFanout([sink]))
    recorder.record(assignment(variation_id="v-a"))
    recorder.record(assignment(variation_id="v-b"))
    recorder.record(assignment(variation_id="v-a"))
    recorder.record(assignment(variation_id="v-b"))
    assert [e[schema.VARIATION_ID] for e in exposures(sink)] == ["v-a", "v-b"]


def test_the_latest_variant_is_remembered_for_outcomes() -> None:
    recorder = ExposureRecorder(EventFanout([]))
    recorder.record(assignment(variation_id="v-a", variant="control"))
    recorder.record(assignment(variation_id="v-b", variant="treatment"))
    recorder.record(assignment(variation_id="v-a", variant="control"))
    served = recorder.variant_for(SUPPORT, "", "c-1")
    assert served is not None and (served.variant, served.variation_id) == ("control", "v-a")


def test_a_new_run_of_the_experiment_exposes_the_unit_again() -> None:
    sink = InMemorySink()
    recorder = ExposureRecorder(EventFanout([sink]))
    recorder.record(assignment(run_id="run-1"))
    recorder.record(assignment(run_id="run-2"))
    assert [e[schema.RUN_ID] for e in exposures(sink)] == ["run-1", "run-2"]


def test_exposed_says_whether_a_turn_repeats_the_units_recorded_exposure() -> None:
    """The resolver's lock-free check before building an assignment: True only for the unit's
    latest exposure in that run, to that variation under that variant name."""
    recorder = ExposureRecorder(EventFanout([]), sweep_interval=None)
    assert not recorder.exposed(SUPPORT, "", "c-1", "v-a", "control")

    recorder.record(assignment(variation_id="v-a", variant="control"))

    assert recorder.exposed(SUPPORT, "", "c-1", "v-a", "control")
    assert not recorder.exposed(SUPPORT, "", "c-1", "v-b", "control")  # another variation
    assert not recorder.exposed(SUPPORT, "", "c-1", "v-a", "renamed")  # the run renamed it
    assert not recorder.exposed(SUPPORT, "", "c-2", "v-a", "control")  # another unit
    assert not recorder.exposed(SUPPORT, "run-2", "c-1", "v-a", "control")  # another run
    assert not recorder.exposed("other-experiment", "", "c-1", "v-a", "control")


@pytest.mark.parametrize(
    ("privacy", "unit_id"),
    [
        (Privacy(), "c-1"),
        (Privacy.hashed(KEY), Privacy.hashed(KEY).protect("c-1")),
        (Privacy.omitted(), "c-1"),  # the store needs a key; it is the application's own
    ],
    ids=["raw", "hash", "omit"],
)
def test_the_shared_key_names_kind_experiment_run_unit_id_and_variation(
    privacy: Privacy, unit_id: str
) -> None:
    """Instances of different versions share the store during a rolling deploy: the key's
    layout is a contract, not a detail."""
    recorder = ExposureRecorder(EventFanout([]), privacy=privacy, sweep_interval=None)

    key = recorder.shared_key(assignment(run_id="run-1", variation_id="v-a"))

    assert key.split("\x1f") == ["exposure", SUPPORT, "run-1", "conversation", unit_id, "v-a"]


def test_memory_is_bounded_by_forgetting_the_least_recent_unit() -> None:
    recorder = ExposureRecorder(EventFanout([]), max_units=2)
    recorder.record(assignment("c-1"))
    recorder.record(assignment("c-2"))
    recorder.record(assignment("c-1"))  # c-1 is now the most recent
    recorder.record(assignment("c-3"))
    assert recorder.variant_for(SUPPORT, "", "c-2") is None
    assert recorder.variant_for(SUPPORT, "", "c-1") is not None
    assert recorder.variant_for(SUPPORT, "", "c-3") is not None


# -- across instances: a shared set-if-absent store (a real Redis on loopback) ---------------


@pytest.fixture
def redis_client(main_redis: str):
    client = redis.Redis.from_url(main_redis, socket_timeout=2)
    prefix = f"test-exposures-{uuid.uuid4().hex[:8]}:"
    yield client, prefix
    for key in client.scan_iter(f"{prefix}*"):
        client.delete(key)
    client.close()


def test_two_instances_sharing_a_store_send_one_exposure(
    make_provider, of_client, sink: InMemorySink, redis_client
) -> None:
    client, prefix = redis_client
    shared = RedisSeenKeys(client, key_prefix=prefix)
    first = of_client(experiment_provider(make_provider, exposure_keys=shared))
    second = of_client(experiment_provider(make_provider, exposure_keys=shared))
    first.get_string_value(SUPPORT, "control", ctx("c-1"))
    second.get_string_value(SUPPORT, "control", ctx("c-1"))
    second.get_string_value(SUPPORT, "control", ctx("c-2"))
    assert [e[schema.UNIT_ID] for e in exposures(sink)] == ["c-1", "c-2"]


def test_shared_keys_expire_and_carry_no_raw_id_when_hashing(
    make_provider, of_client, redis_client
) -> None:
    client, prefix = redis_client
    privacy = Privacy.hashed("exposure-key-test-0123456789abcdef")
    shared = RedisSeenKeys(client, key_prefix=prefix, ttl_seconds=120)
    provider_client = of_client(
        experiment_provider(make_provider, exposure_keys=shared, privacy=privacy)
    )
    provider_client.get_string_value(SUPPORT, "control", ctx("c-secret-1"))
    [key] = list(client.scan_iter(f"{prefix}*"))
    assert b"c-secret-1" not in key
    assert 0 < client.pttl(key) <= 120_000


def test_an_unreachable_store_still_sends_the_exposure_and_flags_it(
    make_provider, of_client, sink: InMemorySink
) -> None:
    down = redis.Redis(
        host="127.0.0.1", port=1, socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0)
    )
    client = of_client(experiment_provider(make_provider, exposure_keys=RedisSeenKeys(down)))
    details = client.get_string_details(SUPPORT, "control", ctx("c-1"))
    assert details.error_code is None
    assert [e[schema.UNIT_ID] for e in exposures(sink)] == ["c-1"]
    [guardrail] = sink.guardrails(Guardrail.STORE_UNAVAILABLE)
    assert guardrail["message"] == (
        "exposure deduplication store failed (ConnectionError); "
        "sending the exposure, which may repeat one from another instance"
    )
    assert guardrail[schema.FLAG_KEY] == guardrail[schema.EXPERIMENT_KEY] == SUPPORT
    assert guardrail[schema.ASSIGNMENT_UNIT] == "conversation"
    assert guardrail[schema.UNIT_ID] == "c-1"


def test_a_failing_sink_does_not_stop_exposures_reaching_the_others(
    make_provider, of_client, sink: InMemorySink
) -> None:
    class Broken:
        def emit(self, event: Any) -> None:
            raise OSError("disk full")

    broken: EventSink = Broken()
    client = of_client(experiment_provider(make_provider, sinks=[broken, sink]))
    assert client.get_string_details(SUPPORT, "control", ctx()).error_code is None
    assert len(exposures(sink)) == 1
