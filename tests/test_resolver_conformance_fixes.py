"""Provider behaviour the OpenFeature conformance suites (tests/conformance) exposed: FeatBit's
variation names as variants."""

from __future__ import annotations

from collections.abc import Callable

from openfeature.client import OpenFeatureClient
from openfeature.evaluation_context import EvaluationContext

from featbit_experiments import FeatBitProvider
from tests.support import flags as fl

GREETING = fl.flag("greeting", ["hi", "bye"], serve=0, names=["greeting", "parting"])
PROMPT = fl.flag("prompt", ["You are terse.", "You are chatty."], tags=["unit:conversation"])
PROMPT["variations"][0]["name"] = "terse"
PROMPT["variations"][1]["name"] = "chatty"
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

