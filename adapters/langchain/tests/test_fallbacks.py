"""Fallbacks inside a turn: the turn keeps its variant and records ``fallback_used`` naming the
runnable that failed, the one that ran instead and the variant kept; a ``with_fallbacks`` at
the root of a turn is still one turn, with one evaluation and one set of outcomes."""

from __future__ import annotations

from typing import Any

import pytest
from featbit_experiments_langchain import (
    ExperimentCallbackHandler,
    TurnOutcomes,
    experiment_branch,
)
from langchain_core.language_models import FakeMessagesListChatModel
from langchain_core.runnables import RunnableLambda, RunnablePassthrough
from openfeature.client import OpenFeatureClient
from openfeature.evaluation_context import EvaluationContext
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from adapters.langchain.tests.lc_support import FLAG, answer, answering_chain, named
from featbit_experiments import Assignment, FeatBitProvider, Guardrail, InMemorySink
from featbit_experiments.tracking import Outcome

QUESTION = {"question": "where is my parcel?"}


def variant_for(client: OpenFeatureClient, conversation_id: str) -> str:
    return client.get_string_value(
        FLAG, "control", EvaluationContext(attributes={"conversationId": conversation_id})
    )


def broken(_: Any) -> str:
    raise TimeoutError("primary model timed out")


def routers(client: OpenFeatureClient) -> tuple[Any, Any]:
    primary = experiment_branch(
        FLAG,
        {"control": RunnableLambda(broken, name="primary_a"), "retrieval_profile_b": broken},
        client=client,
        name="primary_router",
    )
    backup = experiment_branch(
        FLAG,
        {"control": answering_chain("A-backup"), "retrieval_profile_b": answering_chain("B")},
        client=client,
        name="backup_router",
    )
    return primary, backup


@pytest.fixture
def assignments(provider: FeatBitProvider) -> list[Assignment]:
    made: list[Assignment] = []
    provider.resolver.assignment_listeners.append(made.append)
    return made


@pytest.fixture
def outcomes(provider: FeatBitProvider) -> list[Outcome]:
    sent: list[Outcome] = []
    provider.tracker.outcome_listeners.append(sent.append)
    return sent


def test_a_fallback_inside_a_turn_records_fallback_used_with_the_kept_variant(
    client: OpenFeatureClient, handler: ExperimentCallbackHandler, sink: InMemorySink
) -> None:
    primary, backup = routers(client)
    turn = RunnablePassthrough() | primary.with_fallbacks([backup])
    conversation = "conv-fallback"

    turn.invoke(QUESTION, {"callbacks": [handler], "metadata": {"conversation_id": conversation}})

    [event] = sink.guardrails(Guardrail.FALLBACK_USED.value)
    assert (event["failedRunnable"], event["fallbackRunnable"]) == (
        "primary_router",
        "backup_router",
    )
    assert event["errorType"] == "TimeoutError"
    assert (event["flagKey"], event["variation"]) == (FLAG, variant_for(client, conversation))
    assert event["unitId"] == conversation


async def test_a_model_fallback_inside_a_branch_is_recorded_with_the_branchs_variant(
    client: OpenFeatureClient, handler: ExperimentCallbackHandler, sink: InMemorySink
) -> None:
    def fail(_: Any) -> str:
        raise ConnectionError("model endpoint reset")

    model = RunnableLambda(fail, name="gpt_primary").with_fallbacks(
        [FakeMessagesListChatModel(responses=[answer("from backup")], name="backup_model")]
    )
    router = experiment_branch(
        FLAG, {"control": model, "retrieval_profile_b": model}, client=client
    )

    await router.ainvoke("hi", {"callbacks": [handler], "metadata": {"conversation_id": "c-m"}})

    [event] = sink.guardrails(Guardrail.FALLBACK_USED.value)
    assert (event["failedRunnable"], event["fallbackRunnable"]) == ("gpt_primary", "backup_model")
    assert event["variation"] == variant_for(client, "c-m")


@pytest.mark.parametrize("style", ["invoke", "ainvoke"])
async def test_a_root_level_with_fallbacks_is_one_turn_with_one_evaluation_and_one_outcome_set(
    style: str,
    client: OpenFeatureClient,
    tracer_provider: TracerProvider,
    exporter: InMemorySpanExporter,
    assignments: list[Assignment],
    outcomes: list[Outcome],
    sink: InMemorySink,
) -> None:
    handler = ExperimentCallbackHandler(
        tracer_provider=tracer_provider, outcomes=TurnOutcomes(client)
    )
    primary, backup = routers(client)
    turn = primary.with_fallbacks([backup])
    config: Any = {"callbacks": [handler], "metadata": {"conversation_id": "conv-root"}}
    variant = variant_for(client, "conv-root")
    assignments.clear()

    if style == "invoke":
        output = turn.invoke(QUESTION, config)
    else:
        output = await turn.ainvoke(QUESTION, config)

    assert output == ("A-backup" if variant == "control" else "B")
    assert len(named(exporter.get_finished_spans(), "invoke_workflow")) == 1
    assert [a.variant for a in assignments] == [variant]
    errors = [o.value for o in outcomes if o.name == "turn_error"]
    assert errors == [0.0]
    assert len(sink.guardrails(Guardrail.FALLBACK_USED.value)) == 1
    assert handler.tracker.active_runs == 0


def test_a_retry_is_not_a_fallback(
    client: OpenFeatureClient, handler: ExperimentCallbackHandler, sink: InMemorySink
) -> None:
    attempts: list[int] = []

    def flaky(text: str) -> str:
        attempts.append(1)
        if len(attempts) == 1:
            raise ConnectionError("reset")
        return text

    chain = answering_chain("A") | RunnableLambda(flaky)
    router = experiment_branch(
        FLAG, {"control": chain, "retrieval_profile_b": chain}, client=client
    ).with_retry(stop_after_attempt=2, wait_exponential_jitter=False)

    router.invoke(QUESTION, {"callbacks": [handler], "metadata": {"conversation_id": "c-r"}})

    assert len(attempts) == 2
    assert sink.guardrails(Guardrail.FALLBACK_USED.value) == []
