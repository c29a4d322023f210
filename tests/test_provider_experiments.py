"""Experiment flags through the real OpenFeature client: the FeatBit key is the declared
unit's ID, and a missing, malformed or mismatched unit gets the default plus a guardrail."""

from __future__ import annotations

import hashlib
import struct
from typing import Any

from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import Reason

from featbit_experiments import Experiment, InMemorySink, UnitPolicy
from featbit_experiments.units import DEFAULT_MAX_ID_LENGTH
from tests.support import flags as fl

SUPPORT = "support-retrieval-test"
ARMS = ["control", "retrieval_profile_b"]


def featbit_bucket(flag_key: str, key: str) -> float:
    """FeatBit's md5 bucketing (research §3), to check which key the SDK hashed."""
    digest = hashlib.md5((flag_key + key).encode()).digest()
    return abs(struct.unpack("<i", digest[:4])[0] / -2147483648)


def arm_for(flag_key: str, key: str) -> str:
    return ARMS[0] if featbit_bucket(flag_key, key) < 0.5 else ARMS[1]


def conversation_ctx(conversation: str, user: str = "u-1", **extra: Any) -> EvaluationContext:
    return EvaluationContext(user, {"conversationId": conversation, "userId": user, **extra})


def test_featbit_buckets_on_the_conversation_id_not_the_user(make_provider, of_client) -> None:
    client = of_client(make_provider([fl.flag(SUPPORT, ARMS, tags=["unit:conversation"])]))
    for i in range(40):
        conversation = f"conv-{i}"
        details = client.get_string_details(SUPPORT, "control", conversation_ctx(conversation))
        assert details.value == arm_for(SUPPORT, conversation)
        assert details.reason == Reason.SPLIT


def test_same_user_gets_different_arms_in_different_conversations(make_provider, of_client) -> None:
    client = of_client(make_provider([fl.flag(SUPPORT, ARMS, tags=["unit:conversation"])]))
    seen = {
        client.get_string_value(SUPPORT, "control", conversation_ctx(f"c-{i}", user="same-user"))
        for i in range(30)
    }
    assert seen == set(ARMS)


def test_experiment_metadata_names_experiment_unit_source_and_variation(
    make_provider, of_client
) -> None:
    policy = UnitPolicy([Experiment(SUPPORT, "conversation", run_id="r1")])
    client = of_client(make_provider([fl.flag(SUPPORT, ARMS, version=7)], policy))
    details = client.get_string_details(SUPPORT, "control", conversation_ctx("c-1"))
    index = ARMS.index(arm_for(SUPPORT, "c-1"))
    assert details.flag_metadata == {
        "experimentKey": SUPPORT,
        "assignmentUnit": "conversation",
        "unitKeySource": "conversationId",
        "variationId": f"{SUPPORT}-v{index}",
        "contextId": "conversation:c-1",
        "version": 1735689607123,  # updatedAt 00:00:07.123456, which fbclient keeps in ms
        "runId": "r1",
    }
    assert details.variant == ARMS[index]


def test_missing_unit_id_returns_default_with_guardrail_and_no_fallback_id(
    make_provider, of_client, sink: InMemorySink
) -> None:
    client = of_client(make_provider([fl.flag(SUPPORT, ARMS, tags=["unit:conversation"])]))
    details = client.get_string_details(
        SUPPORT, "fallback", EvaluationContext("user-1", {"userId": "user-1"})
    )
    assert details.value == "fallback"
    assert details.error_code == ErrorCode.TARGETING_KEY_MISSING
    assert details.reason == Reason.ERROR and details.variant is None
    [guardrail] = sink.guardrails("missing_unit_id")
    assert guardrail["experimentKey"] == SUPPORT and guardrail["assignmentUnit"] == "conversation"


def test_malformed_unit_id_is_invalid_context_and_never_echoed(
    make_provider, of_client, sink: InMemorySink
) -> None:
    client = of_client(make_provider([fl.flag(SUPPORT, ARMS, tags=["unit:conversation"])]))
    hostile = "c-1\r\nX-Admin: true"
    details = client.get_string_details(SUPPORT, "control", conversation_ctx(hostile))
    assert details.error_code == ErrorCode.INVALID_CONTEXT
    assert details.value == "control"
    assert sink.guardrails("invalid_unit_id")
    assert all(hostile not in str(event) for event in sink.events)


def test_a_unit_id_of_the_maximum_length_is_served_one_more_is_refused(
    make_provider, of_client, sink: InMemorySink
) -> None:
    client = of_client(make_provider([fl.flag(SUPPORT, ARMS, tags=["unit:conversation"])]))
    longest = "c" * DEFAULT_MAX_ID_LENGTH

    served = client.get_string_details(SUPPORT, "fallback", conversation_ctx(longest))
    refused = client.get_string_details(SUPPORT, "fallback", conversation_ctx(longest + "c"))

    assert (served.value, served.reason, served.error_code) == (
        arm_for(SUPPORT, longest),
        Reason.SPLIT,
        None,
    )
    assert (refused.value, refused.error_code) == ("fallback", ErrorCode.INVALID_CONTEXT)
    assert "longer than 128 characters" in (refused.error_message or "")
    [guardrail] = sink.guardrails("invalid_unit_id")
    assert guardrail["assignmentUnit"] == "conversation"
    assert [e["unitId"] for e in sink.of_kind("experiment_exposure")] == [longest]


def test_rollout_bucketing_on_another_attribute_is_refused(
    make_provider, of_client, sink: InMemorySink
) -> None:
    flag = fl.flag(SUPPORT, ARMS, tags=["unit:conversation"], dispatch_key="userId")
    client = of_client(make_provider([flag]))
    details = client.get_string_details(SUPPORT, "control", conversation_ctx("c-1"))
    assert details.error_code == ErrorCode.GENERAL
    assert "buckets on 'userId'" in (details.error_message or "")
    assert sink.guardrails("dispatch_key_mismatch")


def test_rollout_bucketing_on_the_units_own_attribute_is_accepted(make_provider, of_client) -> None:
    flag = fl.flag(SUPPORT, ARMS, tags=["unit:conversation"], dispatch_key="conversationId")
    client = of_client(make_provider([flag]))
    details = client.get_string_details(
        SUPPORT, "control", conversation_ctx("c-1", thread_id="c-1")
    )
    assert details.error_code is None
    assert details.value == arm_for(SUPPORT, "c-1")


def test_alias_id_is_copied_to_the_canonical_attribute_featbit_buckets_on(
    make_provider, of_client
) -> None:
    flag = fl.flag(SUPPORT, ARMS, tags=["unit:conversation"], dispatch_key="conversationId")
    client = of_client(make_provider([flag]))
    ctx = EvaluationContext("u-1", {"thread_id": "t-77"})
    assert client.get_string_value(SUPPORT, "x", ctx) == arm_for(SUPPORT, "t-77")


def test_tag_disagreeing_with_code_refuses_the_experiment(
    make_provider, of_client, sink: InMemorySink
) -> None:
    policy = UnitPolicy([Experiment(SUPPORT, "user")])
    client = of_client(make_provider([fl.flag(SUPPORT, ARMS, tags=["unit:conversation"])], policy))
    details = client.get_string_details(SUPPORT, "control", conversation_ctx("c-1"))
    assert details.error_code == ErrorCode.GENERAL and details.value == "control"
    assert sink.guardrails("unit_conflict")


def test_request_unit_tag_on_user_facing_flag_is_refused(
    make_provider, of_client, sink: InMemorySink
) -> None:
    client = of_client(make_provider([fl.flag(SUPPORT, ARMS, tags=["unit:request"])]))
    details = client.get_string_details(
        SUPPORT, "control", EvaluationContext(attributes={"requestId": "r-1"})
    )
    assert details.error_code == ErrorCode.GENERAL
    assert sink.guardrails("request_unit_refused")


def test_request_unit_allowed_when_declared_independent(make_provider, of_client) -> None:
    policy = UnitPolicy([Experiment("ranker", "request", user_facing=False)])
    client = of_client(make_provider([fl.flag("ranker", ARMS)], policy))
    details = client.get_string_details(
        "ranker", "control", EvaluationContext(attributes={"requestId": "r-1"})
    )
    assert details.error_code is None
    assert details.flag_metadata["assignmentUnit"] == "request"


def test_user_experiment_uses_targeting_key_as_user_id(make_provider, of_client) -> None:
    client = of_client(make_provider([fl.flag("style", ARMS, tags=["unit:user"])]))
    details = client.get_string_details("style", "control", EvaluationContext("user-42"))
    assert details.value == arm_for("style", "user-42")
    assert details.flag_metadata["unitKeySource"] == "targetingKey"


def test_configured_variant_names_are_used_for_non_string_flags(make_provider, of_client) -> None:
    policy = UnitPolicy(
        [Experiment("temp", "conversation", variant_names={"temp-v0": "cold", "temp-v1": "warm"})]
    )
    client = of_client(make_provider([fl.flag("temp", [0.2, 0.9])], policy))
    details = client.get_float_details("temp", 0.0, conversation_ctx("c-3"))
    expected = 0.2 if featbit_bucket("temp", "c-3") < 0.5 else 0.9
    assert details.value == expected
    assert details.variant == ("cold" if expected == 0.2 else "warm")


def test_flag_off_serves_the_disabled_variation_with_disabled_reason(
    make_provider, of_client
) -> None:
    flag = fl.flag(SUPPORT, ARMS, tags=["unit:conversation"], enabled=False, off_index=0)
    client = of_client(make_provider([flag]))
    details = client.get_string_details(SUPPORT, "fallback", conversation_ctx("c-1"))
    assert details.value == "control" and details.reason == Reason.DISABLED


async def test_async_resolution_matches_sync(make_provider, of_client) -> None:
    client = of_client(make_provider([fl.flag(SUPPORT, ARMS, tags=["unit:conversation"])]))
    for i in range(10):
        ctx = conversation_ctx(f"c-{i}")
        async_details = await client.get_string_details_async(SUPPORT, "control", ctx)
        assert async_details.value == client.get_string_value(SUPPORT, "control", ctx)
        assert async_details.flag_metadata["contextId"] == f"conversation:c-{i}"
