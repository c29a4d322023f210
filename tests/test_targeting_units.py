"""Targeting in an experiment whose unit is not the user: FeatBit's individual targeting
(``targetUsers``) matches the FeatBit user key, which is then the conversation ID, so user
overrides stop applying. That is reported once per flag version; a rule on ``userId`` is how to
target users in a conversation experiment (README)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from openfeature.evaluation_context import EvaluationContext

from featbit_experiments import Experiment, FeatBitProvider, InMemorySink, UnitPolicy
from tests.support import flags as fl

FLAG = "reply-style"
ARMS = ["concise", "detailed"]
VIP = "u-vip"
ProviderFactory = Callable[..., FeatBitProvider]


def with_individual_target(version: int = 1) -> dict[str, Any]:
    return fl.flag(
        FLAG,
        ARMS,
        targets=[{"keyIds": [VIP], "variationId": f"{FLAG}-v1"}],
        version=version,
    )


def with_user_rule() -> dict[str, Any]:
    """The README's recipe: a rule on the ``userId`` attribute the provider writes."""
    return fl.flag(
        FLAG,
        ARMS,
        rules=[fl.rule([fl.condition("userId", "IsOneOf", [VIP])], fl.serve(f"{FLAG}-v1"))],
    )


def policy(unit: str) -> UnitPolicy:
    return UnitPolicy([Experiment(FLAG, unit)])


def vip_turns(provider: FeatBitProvider, turns: int = 20) -> list[Any]:
    return [
        provider.resolve_string_details(
            FLAG, "default", EvaluationContext(VIP, {"conversationId": f"c-{n}"})
        ).value
        for n in range(turns)
    ]


def test_individual_targets_in_a_conversation_experiment_are_reported_once_per_version(
    make_provider: ProviderFactory, sink: InMemorySink
) -> None:
    provider = make_provider([with_individual_target()], policy("conversation"))

    served = vip_turns(provider)

    assert set(served) == set(ARMS)  # the override does not apply: the key is the conversation
    [guardrail] = sink.guardrails("targeting_unit_mismatch")
    assert guardrail["flagKey"] == FLAG and guardrail["assignmentUnit"] == "conversation"
    assert "userId" in guardrail["message"]

    assert provider.client.initialize_from_external_json(
        fl.bootstrap_json([with_individual_target(version=2)])
    )
    vip_turns(provider, 3)
    assert len(sink.guardrails("targeting_unit_mismatch")) == 2


def test_individual_targets_in_a_user_experiment_still_apply_silently(
    make_provider: ProviderFactory, sink: InMemorySink
) -> None:
    provider = make_provider([with_individual_target()], policy("user"))

    served = vip_turns(provider)

    assert served == ["detailed"] * 20
    assert sink.guardrails("targeting_unit_mismatch") == []


def test_a_rule_on_user_id_targets_a_user_in_every_conversation(
    make_provider: ProviderFactory, sink: InMemorySink
) -> None:
    provider = make_provider([with_user_rule()], policy("conversation"))

    assert vip_turns(provider) == ["detailed"] * 20
    others = {
        provider.resolve_string_details(
            FLAG, "default", EvaluationContext(f"u-{n}", {"conversationId": f"c-{n}"})
        ).value
        for n in range(40)
    }
    assert others == set(ARMS)  # everyone else is still randomized by conversation
    assert sink.guardrails() == []
