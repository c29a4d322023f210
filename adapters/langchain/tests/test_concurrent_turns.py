"""200 concurrent async turns across 50 conversations through one handler and one router:
every turn's spans carry its own conversation and that conversation's variant."""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict

import pytest
from featbit_experiments_langchain import (
    AsyncExperimentCallbackHandler,
    ExperimentCallbackHandler,
    experiment_branch,
)
from openfeature.client import OpenFeatureClient
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from adapters.langchain.tests.lc_support import FLAG, answering_chain, attrs, by_trace, named
from featbit_experiments import telemetry_names as names

CONVERSATIONS = 50
TURNS_EACH = 4
LETTER = {"control": "A", "retrieval_profile_b": "B"}


@pytest.mark.parametrize(
    "handler_class", [ExperimentCallbackHandler, AsyncExperimentCallbackHandler]
)
async def test_concurrent_turns_each_carry_their_own_conversations_variant(
    handler_class: type[ExperimentCallbackHandler | AsyncExperimentCallbackHandler],
    client: OpenFeatureClient,
    tracer_provider: TracerProvider,
    exporter: InMemorySpanExporter,
) -> None:
    handler = handler_class(tracer_provider=tracer_provider)
    chain = experiment_branch(
        FLAG,
        {"control": answering_chain("A"), "retrieval_profile_b": answering_chain("B")},
        client=client,
    )
    turns = [f"conv-{c}" for _ in range(TURNS_EACH) for c in range(CONVERSATIONS)]

    outputs = await asyncio.gather(
        *(
            chain.ainvoke(
                {"question": f"turn of {conversation}"},
                {"callbacks": [handler], "metadata": {"conversation_id": conversation}},
            )
            for conversation in turns
        )
    )

    traces = by_trace(exporter.get_finished_spans())
    assert len(traces) == len(turns)
    variants_of: dict[str, set[str]] = defaultdict(set)
    for spans in traces.values():
        assert len(named(spans, "invoke_workflow")) == 1
        assert len(named(spans, "chat")) == 1
        [conversation] = {attrs(s)[names.GEN_AI_CONVERSATION_ID] for s in spans}
        [variant] = {attrs(s)[names.EXPERIMENT_VARIANT] for s in spans}
        assert {attrs(s)[names.EXPERIMENT_UNIT_ID] for s in spans} == {conversation}
        variants_of[conversation].add(variant)
    assert Counter(
        attrs(s)[names.GEN_AI_CONVERSATION_ID]
        for s in named(exporter.get_finished_spans(), "invoke_workflow")
    ) == dict.fromkeys(set(turns), TURNS_EACH)
    assert all(len(variants) == 1 for variants in variants_of.values()), variants_of
    chosen = {conversation: next(iter(v)) for conversation, v in variants_of.items()}
    assert set(chosen.values()) == set(LETTER)
    assert outputs == [LETTER[chosen[conversation]] for conversation in turns]
    assert handler.tracker.active_runs == 0
