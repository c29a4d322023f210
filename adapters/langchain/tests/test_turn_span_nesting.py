"""The turn span is OpenTelemetry's current span while the runnable a router chose runs: spans
started inside (an instrumented HTTP client's inside a real model call, an application's own)
nest under it in the turn's trace, in invoke, ainvoke, stream and astream. The turn span
carries the feature-flag semantic-convention attributes of the turn's evaluation."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from featbit_experiments_langchain import ExperimentCallbackHandler, experiment_branch
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import Runnable, RunnableLambda
from openfeature.client import OpenFeatureClient
from openfeature.evaluation_context import EvaluationContext
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from adapters.langchain.tests.lc_support import FLAG, attrs, by_trace, named
from adapters.langchain.tests.loopback import LoopbackChatModel, LoopbackServer
from featbit_experiments import PROVIDER_NAME
from featbit_experiments import telemetry_names as names

QUESTION = {"question": "where is order 42?"}


@pytest.fixture
def server() -> Iterator[LoopbackServer]:
    with LoopbackServer() as running:
        yield running


def model_chain(server: LoopbackServer, tracer_provider: TracerProvider) -> Runnable[Any, str]:
    model = LoopbackChatModel(url=server.url, tracer_provider=tracer_provider)
    prompt = ChatPromptTemplate.from_messages([("human", "{question}")])
    return prompt | model | StrOutputParser()


def http_spans(spans: tuple[ReadableSpan, ...]) -> list[ReadableSpan]:
    return [s for s in spans if s.kind is SpanKind.CLIENT and s.name == "POST"]


def variant_for(client: OpenFeatureClient, conversation_id: str) -> str:
    return client.get_string_value(
        FLAG, "control", EvaluationContext(attributes={"conversationId": conversation_id})
    )


@pytest.mark.parametrize("style", ["invoke", "ainvoke", "stream", "astream"])
async def test_an_instrumented_http_client_span_inside_a_model_call_nests_under_the_turn(
    style: str,
    client: OpenFeatureClient,
    handler: ExperimentCallbackHandler,
    tracer_provider: TracerProvider,
    exporter: InMemorySpanExporter,
    server: LoopbackServer,
) -> None:
    chain = model_chain(server, tracer_provider)
    router = experiment_branch(
        FLAG, {"control": chain, "retrieval_profile_b": chain}, client=client
    )
    config: Any = {"callbacks": [handler], "metadata": {"conversation_id": f"c-{style}"}}

    if style == "invoke":
        output = router.invoke(QUESTION, config)
    elif style == "ainvoke":
        output = await router.ainvoke(QUESTION, config)
    elif style == "stream":
        output = "".join(router.stream(QUESTION, config))
    else:
        output = "".join([chunk async for chunk in router.astream(QUESTION, config)])

    assert output.strip() == "answer to where is order 42?"
    spans = exporter.get_finished_spans()
    [turn] = named(spans, "invoke_workflow")
    [http] = http_spans(spans)
    assert http.parent is not None and http.parent.span_id == turn.context.span_id
    assert len(by_trace(spans)) == 1


@pytest.mark.parametrize("style", ["invoke", "ainvoke"])
async def test_a_span_the_application_starts_inside_the_branch_is_a_child_of_the_turn(
    style: str,
    client: OpenFeatureClient,
    handler: ExperimentCallbackHandler,
    tracer_provider: TracerProvider,
    exporter: InMemorySpanExporter,
) -> None:
    tracer = tracer_provider.get_tracer("app")

    def retrieve(question: dict[str, str]) -> str:
        with tracer.start_as_current_span("vector_search"):
            return "docs"

    branch = RunnableLambda(retrieve)
    router = experiment_branch(
        FLAG, {"control": branch, "retrieval_profile_b": branch}, client=client
    )
    config: Any = {"callbacks": [handler], "metadata": {"conversation_id": "c-app-span"}}

    if style == "invoke":
        router.invoke(QUESTION, config)
    else:
        await router.ainvoke(QUESTION, config)

    spans = exporter.get_finished_spans()
    [turn] = named(spans, "invoke_workflow")
    [search] = named(spans, "vector_search")
    assert search.parent is not None and search.parent.span_id == turn.context.span_id
    assert search.context is not None and turn.context is not None
    assert search.context.trace_id == turn.context.trace_id


def test_the_turn_span_carries_the_feature_flag_attributes_of_its_evaluation(
    client: OpenFeatureClient, handler: ExperimentCallbackHandler, exporter: InMemorySpanExporter
) -> None:
    done = RunnableLambda(lambda _: "ok")
    router = experiment_branch(FLAG, {"control": done, "retrieval_profile_b": done}, client=client)

    router.invoke(QUESTION, {"callbacks": [handler], "metadata": {"conversation_id": "c-ff"}})

    [turn] = named(exporter.get_finished_spans(), "invoke_workflow")
    variant = variant_for(client, "c-ff")
    assert attrs(turn)[names.FEATURE_FLAG_KEY] == FLAG
    assert attrs(turn)[names.FEATURE_FLAG_RESULT_VARIANT] == variant
    assert attrs(turn)[names.FEATURE_FLAG_PROVIDER_NAME] == PROVIDER_NAME
    assert attrs(turn)[names.FEATURE_FLAG_CONTEXT_ID] == "conversation:c-ff"
    [evaluation] = [e for e in turn.events if e.name == names.FEATURE_FLAG_EVALUATION_EVENT]
    assert dict(evaluation.attributes or {})[names.FEATURE_FLAG_RESULT_VARIANT] == variant


def test_after_the_turn_the_callers_current_span_is_back(
    client: OpenFeatureClient, handler: ExperimentCallbackHandler, tracer_provider: TracerProvider
) -> None:
    done = RunnableLambda(lambda _: "ok")
    router = experiment_branch(FLAG, {"control": done, "retrieval_profile_b": done}, client=client)
    with tracer_provider.get_tracer("app").start_as_current_span("request") as request:
        router.invoke(QUESTION, {"callbacks": [handler], "metadata": {"conversation_id": "c-1"}})
        assert trace.get_current_span() is request
