"""Dispatch keys checked as fbclient resolves them: ``keyId``/``key``/``name`` in any case,
custom attributes exactly (a missing one hashes as ``""``, one bucket for everybody). For an
experiment, a rollout bucketing on any spelling of the unit's attribute gets the unit ID under
that exact name; any other attribute is refused. Never one bucket."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import pytest
from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import Reason

from featbit_experiments import Experiment, FeatBitProvider, InMemorySink, UnitPolicy
from featbit_experiments.flag_view import FlagView
from tests.support import flags as fl
from tests.support.capture import CapturedInsights

FLAG = "support-retrieval-test"
ARMS = ["control", "treatment"]
POLICY = UnitPolicy([Experiment(FLAG, "conversation")])
SPELLINGS = ["conversationId", "thread_id", "conversation_id", "ConversationId", "conversationid"]
CONVERSATIONS = [f"conv-{i}" for i in range(400)]

ProviderFactory = Callable[..., FeatBitProvider]


def featbit_arm(conversation_id: str) -> str:
    """Where FeatBit's md5 bucketing puts ``flagKey + conversationId`` on a 50/50 split."""
    digest = hashlib.md5((FLAG + conversation_id).encode("utf-8")).digest()
    bucket = abs(int.from_bytes(digest[:4], "little", signed=True) / -2147483648)
    return ARMS[0] if bucket < 0.5 else ARMS[1]


def split_on_fallthrough(dispatch_key: str) -> dict[str, Any]:
    return fl.flag(FLAG, ARMS, dispatch_key=dispatch_key)


def split_on_rule(dispatch_key: str) -> dict[str, Any]:
    """Everyone matches the rule (``assignmentUnit`` is always written); the fallthrough
    serves one arm, so only the rule splits."""
    return fl.flag(
        FLAG,
        ARMS,
        serve=0,
        rules=[
            fl.rule(
                [fl.condition("assignmentUnit", "Equal", "conversation")],
                fl.rollout({f"{FLAG}-v0": 0.5, f"{FLAG}-v1": 0.5}),
                dispatch_key=dispatch_key,
            )
        ],
    )


def split_everywhere(rule_keys: list[str | None]) -> dict[str, Any]:
    """The fallthrough splits on the conversation; one split rule per entry of ``rule_keys``,
    each matching only the plan named after its position, so a turn reaches one rule or the
    fallthrough."""
    return fl.flag(
        FLAG,
        ARMS,
        dispatch_key="conversationId",
        rules=[
            fl.rule(
                [fl.condition("plan", "Equal", f"plan-{i}")],
                fl.rollout({f"{FLAG}-v0": 0.5, f"{FLAG}-v1": 0.5}),
                dispatch_key=key,
                rule_id=f"rule-{i}",
            )
            for i, key in enumerate(rule_keys)
        ],
    )


BUILDS = [split_on_fallthrough, split_on_rule]


def serve_all(provider: FeatBitProvider, attribute: str = "conversationId") -> dict[str, Any]:
    served = {}
    for conversation_id in CONVERSATIONS:
        context = EvaluationContext("user-1", {attribute: conversation_id})
        served[conversation_id] = provider.resolve_string_details(FLAG, "default", context)
    return served


@pytest.mark.parametrize("build", BUILDS, ids=["fallthrough", "rule"])
@pytest.mark.parametrize("spelling", SPELLINGS)
def test_each_spelling_of_the_unit_attribute_buckets_on_the_conversation(
    make_provider: ProviderFactory,
    sink: InMemorySink,
    build: Callable[[str], dict[str, Any]],
    spelling: str,
) -> None:
    provider = make_provider([build(spelling)], POLICY)

    served = serve_all(provider)

    assert all(d.error_code is None and d.reason == Reason.SPLIT for d in served.values())
    assert {c: d.value for c, d in served.items()} == {c: featbit_arm(c) for c in CONVERSATIONS}
    assert sink.guardrails() == []


@pytest.mark.parametrize("spelling", ["ConversationId", "thread_id"])
def test_featbit_user_carries_the_id_under_the_exact_spelling_the_rollout_uses(
    make_provider: ProviderFactory, spelling: str
) -> None:
    insights = CapturedInsights()
    provider = make_provider(
        [split_on_fallthrough(spelling)], POLICY, event_processor=insights.processor
    )

    provider.resolve_string_details(
        FLAG, "default", EvaluationContext("user-1", {"thread_id": "conv-7"})
    )

    [item] = insights.flag_events()
    properties = {p["name"]: p["value"] for p in item["user"]["customizedProperties"]}
    assert properties[spelling] == properties["conversationId"] == "conv-7"
    assert item["user"]["keyId"] == "conv-7"


@pytest.mark.parametrize("build", BUILDS, ids=["fallthrough", "rule"])
@pytest.mark.parametrize("dispatch_key", ["userId", "name", "Name", "accountId", "plan"])
def test_a_rollout_on_another_attribute_is_refused_not_bucketed_together(
    make_provider: ProviderFactory,
    sink: InMemorySink,
    build: Callable[[str], dict[str, Any]],
    dispatch_key: str,
) -> None:
    provider = make_provider([build(dispatch_key)], POLICY)

    served = serve_all(provider)

    assert {(d.value, d.error_code) for d in served.values()} == {("default", ErrorCode.GENERAL)}
    assert len(sink.guardrails("dispatch_key_mismatch")) == len(CONVERSATIONS)


@pytest.mark.parametrize("dispatch_key", ["keyId", "KEYID", "key", "Key"])
def test_the_featbit_key_in_any_case_is_the_unit_id(
    make_provider: ProviderFactory, dispatch_key: str
) -> None:
    provider = make_provider([split_on_fallthrough(dispatch_key)], POLICY)

    served = serve_all(provider)

    assert {c: d.value for c, d in served.items()} == {c: featbit_arm(c) for c in CONVERSATIONS}


def test_an_ordinary_split_on_a_custom_attribute_in_another_case_is_refused(
    make_provider: ProviderFactory, sink: InMemorySink
) -> None:
    provider = make_provider([fl.flag("by-team", ["a", "b"], dispatch_key="Team")])

    details = provider.resolve_string_details(
        "by-team", "default", EvaluationContext("user-1", {"team": "core"})
    )

    assert (details.value, details.error_code) == ("default", ErrorCode.TARGETING_KEY_MISSING)
    [guardrail] = sink.guardrails("missing_unit_id")
    assert "'Team'" in guardrail["message"]


def test_an_ordinary_split_on_the_name_built_in_buckets_on_the_name_in_any_case(
    make_provider: ProviderFactory, sink: InMemorySink
) -> None:
    provider = make_provider([fl.flag("by-name", ["a", "b"], dispatch_key="NAME")])

    details = provider.resolve_string_details(
        "by-name", "default", EvaluationContext("user-1", {"name": "Ada"})
    )

    assert details.error_code is None and details.value in ("a", "b")
    assert sink.guardrails() == []


@pytest.mark.parametrize("plan", [None, "plan-0", "plan-1"], ids=["fallthrough", "rule0", "rule1"])
def test_a_rule_on_user_id_behind_a_fallthrough_on_the_unit_refuses_every_turn(
    make_provider: ProviderFactory, sink: InMemorySink, plan: str | None
) -> None:
    """The fallthrough buckets on the conversation, so checking it alone would pass: the
    second rule buckets on ``userId`` (all of a user's conversations in one arm). Every turn is
    refused with the guardrail, whichever rollout it would have reached."""
    provider = make_provider([split_everywhere(["conversationId", "userId"])], POLICY)
    attributes = {"conversationId": "conv-1", "userId": "user-1"}
    if plan is not None:
        attributes["plan"] = plan

    details = provider.resolve_string_details(
        FLAG, "default", EvaluationContext("user-1", attributes)
    )

    assert (details.value, details.error_code) == ("default", ErrorCode.GENERAL)
    [guardrail] = sink.guardrails("dispatch_key_mismatch")
    assert "rule 'rule-1' buckets on 'userId'" in guardrail["message"]
    assert "fallthrough buckets" not in guardrail["message"]
    assert "rule-0" not in guardrail["message"]


@pytest.mark.parametrize("position", range(4))
def test_the_view_reports_a_foreign_dispatch_key_wherever_it_splits(position: int) -> None:
    keys: list[str | None] = ["conversationId", "thread_id", None, "keyId"]
    keys[position] = "userId"
    flag = split_everywhere(keys[1:])
    flag["fallthrough"]["dispatchKey"] = keys[0]
    view = FlagView.of(flag)

    [mismatch] = view.dispatch_mismatches(["conversationId", "thread_id"])

    where = "fallthrough" if position == 0 else f"rule 'rule-{position - 1}'"
    assert (mismatch.where, mismatch.dispatch_key) == (where, "userId")


def test_the_view_reports_every_foreign_rollout_and_ignores_ones_that_do_not_split() -> None:
    flag = split_everywhere(["userId", "conversationId", "accountId"])
    flag["rules"].append(
        fl.rule([], fl.serve(f"{FLAG}-v1"), dispatch_key="plan", rule_id="rule-fixed")
    )
    view = FlagView.of(flag)

    mismatches = view.dispatch_mismatches(["conversationId"])

    assert [(r.where, r.dispatch_key) for r in mismatches] == [
        ("rule 'rule-0'", "userId"),
        ("rule 'rule-2'", "accountId"),
    ]
    assert view.dispatch_mismatches(["conversationId", "userId", "accountId"]) == []
