"""Provider behaviour the OpenFeature conformance suites (tests/conformance) exposed: FeatBit's
variation names as variants, and OpenFeature-strict disabled flags behind an option."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from openfeature.client import OpenFeatureClient
from openfeature.evaluation_context import EvaluationContext
from openfeature.flag_evaluation import Reason

from featbit_experiments import FeatBitProvider, InMemorySink
from featbit_experiments import event_schema as schema
from tests.support import flags as fl

GREETING = fl.flag("greeting", ["hi", "bye"], serve=0, names=["greeting", "parting"])
PROMPT = fl.flag("prompt", ["You are terse.", "You are chatty."], tags=["unit:conversation"])
PROMPT["variations"][0]["name"] = "terse"
PROMPT["variations"][1]["name"] = "chatty"
OFF = fl.flag("off-flag", [10, 20], serve=1, off_index=0, enabled=False)
OFF_EXPERIMENT = fl.flag(
    "off-experiment", ["a", "b"], tags=["unit:conversation"], off_index=1, enabled=False
)
CONVERSATION = EvaluationContext("u-1", {"conversationId": "c-1"})

MakeProvider = Callable[..., FeatBitProvider]
OfClient = Callable[[FeatBitProvider], OpenFeatureClient]


def test_a_featbit_variation_name_is_the_variant_of_a_string_flag(
    make_provider: MakeProvider, of_client: OfClient
) -> None:
    client = of_client(make_provider([GREETING]))
    details = client.get_string_details("greeting", "", EvaluationContext("u-1"))
    assert (details.value, details.variant) == ("hi", "greeting")


def test_an_experiment_string_variant_is_the_featbit_name_not_the_prompt_text(
    make_provider: MakeProvider, of_client: OfClient
) -> None:
    client = of_client(make_provider([PROMPT]))
    details = client.get_string_details("prompt", "", CONVERSATION)
    names = {"You are terse.": "terse", "You are chatty.": "chatty"}
    assert details.variant == names[details.value]


def test_a_disabled_flag_serves_featbit_disabled_variation_by_default(
    make_provider: MakeProvider, of_client: OfClient
) -> None:
    client = of_client(make_provider([OFF]))
    details = client.get_integer_details("off-flag", 99, EvaluationContext("u-1"))
    assert (details.value, details.reason) == (10, Reason.DISABLED)


def test_disabled_serves_default_returns_the_callers_default_and_no_variant(
    make_provider: MakeProvider, of_client: OfClient
) -> None:
    client = of_client(make_provider([OFF], disabled_serves_default=True))
    details = client.get_integer_details("off-flag", 99, EvaluationContext("u-1"))
    assert (details.value, details.reason, details.variant) == (99, Reason.DISABLED, None)
    assert details.error_code is None


def test_disabled_serves_default_assigns_nobody_to_an_experiment_that_is_off(
    make_provider: MakeProvider, of_client: OfClient, sink: InMemorySink
) -> None:
    provider = make_provider([OFF_EXPERIMENT], disabled_serves_default=True)
    assignments: list[Any] = []
    provider.resolver.assignment_listeners.append(assignments.append)
    client = of_client(provider)
    details = client.get_string_details("off-experiment", "fallback", CONVERSATION)
    assert (details.value, details.reason, details.flag_metadata) == (
        "fallback",
        Reason.DISABLED,
        {},
    )
    assert assignments == []
    assert [e for e in sink.events if e[schema.EVENT] == schema.EXPOSURE] == []


def test_disabled_serves_default_leaves_enabled_flags_alone(
    make_provider: MakeProvider, of_client: OfClient
) -> None:
    client = of_client(make_provider([GREETING], disabled_serves_default=True))
    details = client.get_string_details("greeting", "", EvaluationContext("u-1"))
    assert (details.value, details.reason) == ("hi", Reason.STATIC)
