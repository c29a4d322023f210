"""End-of-turn outcomes: latency, tokens and error sent through OpenFeature's track(),
keyed by the unit of the experiment evaluated in the turn."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from featbit_experiments_langchain import (
    ExperimentCallbackHandler,
    TurnOutcomes,
    experiment_branch,
)
from langchain_core.runnables import RunnableLambda
from openfeature.client import OpenFeatureClient
from opentelemetry.sdk.trace import TracerProvider

from adapters.langchain.tests.lc_support import FLAG, answering_chain, experiment_flag
from featbit_experiments import FeatBitProvider, Guardrail, InMemorySink, Metric, UnitPolicy
from featbit_experiments import event_schema as schema
from featbit_experiments.tracking import Outcome

QUESTION = {"question": "where is my parcel?"}


@pytest.fixture
def outcomes(provider: FeatBitProvider) -> list[Outcome]:
    """Every outcome the provider sends to FeatBit."""
    sent: list[Outcome] = []
    provider.tracker.outcome_listeners.append(sent.append)
    return sent


def turn_handler(
    client: OpenFeatureClient, tracer_provider: TracerProvider
) -> ExperimentCallbackHandler:
    return ExperimentCallbackHandler(tracer_provider=tracer_provider, outcomes=TurnOutcomes(client))


def router(client: OpenFeatureClient, after: Any = None) -> Any:
    chain = experiment_branch(
        FLAG,
        {"control": answering_chain("A"), "retrieval_profile_b": answering_chain("B")},
        client=client,
    )
    return chain | after if after is not None else chain


def test_turn_outcomes_are_keyed_by_the_experiments_unit(
    client: OpenFeatureClient, tracer_provider: TracerProvider, outcomes: list[Outcome]
) -> None:
    handler = turn_handler(client, tracer_provider)

    router(client).invoke(
        QUESTION,
        {"callbacks": [handler], "metadata": {"conversation_id": "conv-1", "user_id": "u-1"}},
    )

    by_name = {o.name: o for o in outcomes}
    assert sorted(by_name) == [
        "turn_error",
        "turn_input_tokens",
        "turn_latency_ms",
        "turn_output_tokens",
    ]
    for outcome in outcomes:
        assert (outcome.unit_key.unit, outcome.unit_key.value) == ("conversation", "conv-1")
        assert [e.experiment_key for e in outcome.experiments] == [FLAG]
    assert by_name["turn_input_tokens"].value == 7.0
    assert by_name["turn_output_tokens"].value == 3.0
    assert by_name["turn_error"].value == 0.0
    assert by_name["turn_latency_ms"].value > 0.0


def test_failed_turn_records_error_outcome(
    client: OpenFeatureClient, tracer_provider: TracerProvider, outcomes: list[Outcome]
) -> None:
    def fail(_: Any) -> str:
        raise RuntimeError("guardrail model rejected the answer")

    with pytest.raises(RuntimeError):
        router(client, RunnableLambda(fail)).invoke(
            QUESTION,
            {
                "callbacks": [turn_handler(client, tracer_provider)],
                "metadata": {"conversation_id": "c"},
            },
        )

    [error] = [o for o in outcomes if o.name == "turn_error"]
    assert error.value == 1.0


def test_turn_without_an_experiment_records_no_outcome(
    client: OpenFeatureClient, tracer_provider: TracerProvider, outcomes: list[Outcome]
) -> None:
    answering_chain("hi").invoke(
        QUESTION,
        {
            "callbacks": [turn_handler(client, tracer_provider)],
            "metadata": {"conversation_id": "c"},
        },
    )

    assert outcomes == []


def test_metric_declared_at_another_unit_is_keyed_by_that_unit_and_flagged(
    make_provider: Callable[..., FeatBitProvider],
    of_client: Callable[[FeatBitProvider], OpenFeatureClient],
    tracer_provider: TracerProvider,
    sink: InMemorySink,
) -> None:
    policy = UnitPolicy(metrics=[Metric("turn_latency_ms", "user")])
    provider = make_provider([experiment_flag()], policy)
    sent: list[Outcome] = []
    provider.tracker.outcome_listeners.append(sent.append)
    client = of_client(provider)
    outcomes = TurnOutcomes(client, input_tokens=None, output_tokens=None, error=None)
    handler = ExperimentCallbackHandler(tracer_provider=tracer_provider, outcomes=outcomes)

    router(client).invoke(
        QUESTION,
        {"callbacks": [handler], "metadata": {"conversation_id": "conv-2", "user_id": "u-2"}},
    )

    [latency] = sent
    assert (latency.unit_key.unit, latency.unit_key.value) == ("user", "u-2")
    [mismatch] = sink.guardrails(Guardrail.METRIC_UNIT_MISMATCH.value)
    assert mismatch["metric"] == "turn_latency_ms"


def test_every_turn_outcome_tells_the_audit_that_lower_is_better(
    client: OpenFeatureClient, tracer_provider: TracerProvider, outcomes: list[Outcome]
) -> None:
    router(client).invoke(
        QUESTION,
        {
            "callbacks": [turn_handler(client, tracer_provider)],
            "metadata": {"conversation_id": "conv-dir"},
        },
    )

    directions = {o.name: o.attributes.get(schema.METRIC_DIRECTION) for o in outcomes}
    assert directions == {
        "turn_latency_ms": schema.LOWER_IS_BETTER,
        "turn_error": schema.LOWER_IS_BETTER,
        "turn_input_tokens": schema.LOWER_IS_BETTER,
        "turn_output_tokens": schema.LOWER_IS_BETTER,
    }
