"""What the resolver answers, word for word, when it cannot serve a flag: the caller's default
with an error code and a message that names the flag, and the guardrail beside it."""

from __future__ import annotations

from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import ErrorCode

from featbit_experiments import Experiment, InMemorySink, UnitPolicy
from tests.support import flags as fl

CTX = EvaluationContext("u-1", {"conversationId": "c-1"})


def test_a_declared_flag_featbit_lacks_is_reported_with_what_to_check(
    make_provider, of_client, sink: InMemorySink
) -> None:
    policy = UnitPolicy([Experiment("gone", "conversation", experiment_key="gone-test")])
    client = of_client(make_provider([fl.flag("real", ["a", "b"])], policy))
    details = client.get_string_details("gone", "control", CTX)
    assert (details.value, details.error_code) == ("control", ErrorCode.FLAG_NOT_FOUND)
    assert details.error_message == "flag 'gone' not found"
    [guardrail] = sink.guardrails("experiment_flag_missing")
    assert guardrail["message"] == (
        "experiment flag 'gone' is declared in the policy but FeatBit has no such flag; every "
        "caller gets its default (check the key, or the environment the secret belongs to)"
    )
    assert (guardrail["flagKey"], guardrail["experimentKey"]) == ("gone", "gone-test")


def test_a_caller_asking_for_another_type_gets_its_default_and_both_types_named(
    make_provider, of_client
) -> None:
    client = of_client(make_provider([fl.flag("real", ["a", "b"])], UnitPolicy()))
    details = client.get_boolean_details("real", True, CTX)
    assert (details.value, details.error_code) == (True, ErrorCode.TYPE_MISMATCH)
    assert details.error_message == "flag 'real' is a string flag, asked for BOOLEAN"


def test_a_refused_flag_serves_the_default_with_the_refusal_and_its_guardrail(
    make_provider, of_client, sink: InMemorySink
) -> None:
    tagged = fl.flag("tagged", ["a", "b"], tags=["unit:user", "unit:conversation"])
    client = of_client(make_provider([tagged], UnitPolicy()))
    details = client.get_string_details("tagged", "control", CTX)
    message = "flag 'tagged' has conflicting unit tags: conversation, user"
    assert (details.value, details.error_code) == ("control", ErrorCode.GENERAL)
    assert details.error_message == message
    [guardrail] = sink.guardrails("unit_conflict")
    assert (guardrail["message"], guardrail["flagKey"]) == (message, "tagged")
