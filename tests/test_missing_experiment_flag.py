"""A declared experiment whose flag FeatBit does not have (a typo in the key, a flag deleted or
in another environment) is a guardrail, once per flag key and interval with a count, besides
the FLAG_NOT_FOUND result: never control served to everyone without a word."""

from __future__ import annotations

from types import SimpleNamespace

from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import ErrorCode

from featbit_experiments import Experiment, Guardrail, InMemorySink, UnitPolicy
from tests.support import flags as fl

MISSING = Guardrail.EXPERIMENT_FLAG_MISSING.value
CTX = EvaluationContext("u-1", {"conversationId": "c-1"})


def policy() -> UnitPolicy:
    return UnitPolicy(
        [Experiment("support-retrieval-tset", "conversation"), Experiment("real", "conversation")]
    )


def test_a_declared_flag_featbit_lacks_serves_the_default_with_flag_not_found(
    make_provider, of_client
) -> None:
    client = of_client(make_provider([fl.flag("real", ["a", "b"])], policy()))
    details = client.get_string_details("support-retrieval-tset", "control", CTX)
    assert details.value == "control" and details.error_code == ErrorCode.FLAG_NOT_FOUND


def test_a_declared_flag_featbit_lacks_is_one_guardrail_for_many_evaluations(
    make_provider, of_client, sink: InMemorySink
) -> None:
    client = of_client(make_provider([fl.flag("real", ["a", "b"])], policy()))
    for _ in range(20):
        client.get_string_value("support-retrieval-tset", "control", CTX)
    [guardrail] = sink.guardrails(MISSING)
    assert guardrail["flagKey"] == "support-retrieval-tset"
    assert guardrail["experimentKey"] == "support-retrieval-tset"
    assert guardrail["suppressed"] == 0
    assert "support-retrieval-tset" in guardrail["message"]


def test_each_missing_flag_key_has_its_own_guardrail(
    make_provider, of_client, sink: InMemorySink
) -> None:
    both = UnitPolicy([Experiment("gone-1", "conversation"), Experiment("gone-2", "conversation")])
    client = of_client(make_provider([fl.flag("real", ["a", "b"])], both))
    for key in ("gone-1", "gone-2", "gone-1"):
        client.get_string_value(key, "control", CTX)
    assert sorted(g["flagKey"] for g in sink.guardrails(MISSING)) == ["gone-1", "gone-2"]


def test_an_undeclared_unknown_flag_is_no_guardrail(
    make_provider, of_client, sink: InMemorySink
) -> None:
    client = of_client(make_provider([fl.flag("real", ["a", "b"])], policy()))
    details = client.get_string_details("nobody-declared-this", "x", CTX)
    assert details.error_code == ErrorCode.FLAG_NOT_FOUND
    assert sink.guardrails() == []


def test_the_next_report_after_the_interval_counts_the_evaluations_in_between(
    make_provider, of_client, sink: InMemorySink, monkeypatch
) -> None:
    import featbit_experiments.guardrail_throttles as guardrails_module
    from featbit_experiments.resolver import MISSING_FLAG_REPORT_INTERVAL

    now = [1000.0]  # the guardrail module's clock only; fbclient's threads keep the real one
    monkeypatch.setattr(guardrails_module, "time", SimpleNamespace(monotonic=lambda: now[0]))
    client = of_client(make_provider([fl.flag("real", ["a", "b"])], policy()))
    for _ in range(5):
        client.get_string_value("support-retrieval-tset", "control", CTX)
    now[0] += MISSING_FLAG_REPORT_INTERVAL + 1
    client.get_string_value("support-retrieval-tset", "control", CTX)
    assert [g["suppressed"] for g in sink.guardrails(MISSING)] == [0, 4]
