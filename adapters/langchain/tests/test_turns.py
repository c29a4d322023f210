"""Turns as the callback sees them: one per root run, with spans per model and tool call
tagged with the conversation and every experiment evaluated in the turn."""

from __future__ import annotations

import contextlib
import itertools
from typing import Any

import pytest
from featbit_experiments_langchain import (
    INVOKE_AGENT,
    AsyncExperimentCallbackHandler,
    ExperimentCallbackHandler,
    TurnContextReader,
    experiment_branch,
    with_turn_context,
)
from langchain_core.language_models import FakeMessagesListChatModel, GenericFakeChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import (
    Runnable,
    RunnableConfig,
    RunnableLambda,
    RunnableParallel,
)
from langchain_core.tools import BaseTool, tool
from langchain_core.utils.function_calling import convert_to_openai_tool
from openfeature import api
from openfeature.client import OpenFeatureClient
from openfeature.evaluation_context import EvaluationContext
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from adapters.langchain.tests.lc_support import (
    FLAG,
    answer,
    answering_chain,
    attrs,
    by_trace,
    experiment_flag,
    named,
)
from featbit_experiments import telemetry_names as names
from featbit_experiments.privacy import Privacy
from tests.support import flags as fl

QUESTION = {"question": "where is order 42?"}


def variant_for(client: OpenFeatureClient, conversation_id: str) -> str:
    return client.get_string_value(
        FLAG, "control", EvaluationContext(attributes={"conversationId": conversation_id})
    )


def router(client: OpenFeatureClient, control: Any, treatment: Any) -> Runnable[Any, Any]:
    return experiment_branch(
        FLAG, {"control": control, "retrieval_profile_b": treatment}, client=client
    )


@tool
def lookup_order(order_id: str) -> str:
    """Look up an order's shipping status."""
    return f"order {order_id}: shipped yesterday"


def support_agent(model: FakeMessagesListChatModel, tools: list[BaseTool]) -> Runnable[Any, str]:
    """An agent-style loop: call the model with the tools bound; run each tool call it asks
    for; stop at the first answer without tool calls."""
    by_name = {t.name: t for t in tools}
    bound = model.bind(tools=[convert_to_openai_tool(t) for t in tools])

    def loop(question: dict[str, str], config: RunnableConfig) -> str:
        messages: list[BaseMessage] = [HumanMessage(question["question"])]
        for _ in range(4):
            reply = bound.invoke(messages, config)
            messages.append(reply)
            if not reply.tool_calls:
                return str(reply.content)
            for call in reply.tool_calls:
                messages.append(by_name[call["name"]].invoke(call, config))
        raise RuntimeError("agent did not finish")

    return RunnableLambda(loop, name="support_agent")


def tool_calling_model() -> FakeMessagesListChatModel:
    ask = AIMessage(
        "",
        tool_calls=[{"name": "lookup_order", "args": {"order_id": "42"}, "id": "call-1"}],
        usage_metadata={"input_tokens": 20, "output_tokens": 5, "total_tokens": 25},
    )
    return FakeMessagesListChatModel(responses=[ask, answer("Order 42 shipped yesterday.")])


# -- turn boundaries -------------------------------------------------------------------------


def test_nested_runs_belong_to_one_turn(
    handler: ExperimentCallbackHandler, exporter: InMemorySpanExporter
) -> None:
    inner = answering_chain("inner") | RunnableLambda(str.upper)
    chain = RunnableParallel(first=inner, second=answering_chain("second")) | RunnableLambda(
        lambda parts: f"{parts['first']} {parts['second']}"
    )

    output = chain.invoke(
        QUESTION, {"callbacks": [handler], "metadata": {"conversation_id": "c-1"}}
    )

    assert output == "INNER second"
    spans = exporter.get_finished_spans()
    [turn] = named(spans, "invoke_workflow")
    assert len(named(spans, "chat")) == 2
    assert len(by_trace(spans)) == 1
    assert {s.parent.span_id for s in spans if s is not turn and s.parent} == {turn.context.span_id}
    assert handler.tracker.active_runs == 0


def test_each_root_run_is_its_own_turn(
    handler: ExperimentCallbackHandler, exporter: InMemorySpanExporter
) -> None:
    chain = answering_chain("hi")
    for conversation in ("c-1", "c-2"):
        chain.invoke(
            QUESTION, {"callbacks": [handler], "metadata": {"conversation_id": conversation}}
        )

    turns = named(exporter.get_finished_spans(), "invoke_workflow")
    assert [attrs(t)[names.GEN_AI_CONVERSATION_ID] for t in turns] == ["c-1", "c-2"]


def test_handler_attached_below_the_root_starts_the_turn_at_its_first_run(
    handler: ExperimentCallbackHandler, exporter: InMemorySpanExporter
) -> None:
    model = FakeMessagesListChatModel(responses=[answer("hi")]).with_config(callbacks=[handler])
    chain = ChatPromptTemplate.from_messages([("human", "{question}")]) | model | StrOutputParser()

    chain.invoke(QUESTION, {"metadata": {"conversation_id": "c-9"}})

    spans = exporter.get_finished_spans()
    [turn] = named(spans, "invoke_workflow")
    [chat] = named(spans, "chat")
    assert chat.parent is not None and chat.parent.span_id == turn.context.span_id
    assert attrs(turn)[names.GEN_AI_CONVERSATION_ID] == "c-9"


def test_turn_span_is_a_child_of_the_span_current_when_the_turn_starts(
    handler: ExperimentCallbackHandler,
    exporter: InMemorySpanExporter,
    tracer_provider: TracerProvider,
) -> None:
    tracer = tracer_provider.get_tracer("app")
    with tracer.start_as_current_span("POST /chat") as request:
        answering_chain("hi").invoke(QUESTION, {"callbacks": [handler]})

    [turn] = named(exporter.get_finished_spans(), "invoke_workflow")
    assert turn.parent is not None
    assert turn.parent.span_id == request.get_span_context().span_id


# -- model and tool spans --------------------------------------------------------------------


def test_chat_span_carries_operation_model_provider_and_token_usage(
    handler: ExperimentCallbackHandler, exporter: InMemorySpanExporter
) -> None:
    model = FakeMessagesListChatModel(responses=[answer("hi", 11, 4)]).bind(model="fake-gpt-1")

    model.invoke("hello", {"callbacks": [handler]})

    [chat] = named(exporter.get_finished_spans(), "chat")
    assert chat.name == "chat fake-gpt-1"
    assert chat.kind is SpanKind.CLIENT
    assert attrs(chat) == {
        names.GEN_AI_OPERATION_NAME: "chat",
        names.GEN_AI_PROVIDER_NAME: "fakemessageslistchatmodel",
        names.GEN_AI_REQUEST_MODEL: "fake-gpt-1",
        names.GEN_AI_USAGE_INPUT_TOKENS: 11,
        names.GEN_AI_USAGE_OUTPUT_TOKENS: 4,
    }


def test_agent_loop_with_a_tool_call_gets_model_and_tool_spans_tagged_with_the_variant(
    client: OpenFeatureClient,
    tracer_provider: TracerProvider,
    exporter: InMemorySpanExporter,
) -> None:
    handler = ExperimentCallbackHandler(
        tracer_provider=tracer_provider, turn_operation=INVOKE_AGENT
    )
    agent = support_agent(tool_calling_model(), [lookup_order])
    conversation = "c-agent"

    output = router(client, agent, agent).invoke(
        QUESTION, {"callbacks": [handler], "metadata": {"conversation_id": conversation}}
    )

    assert output == "Order 42 shipped yesterday."
    spans = exporter.get_finished_spans()
    [turn] = named(spans, "invoke_agent")
    [tool_span] = named(spans, "execute_tool")
    assert [s.name for s in named(spans, "chat")] == ["chat", "chat"]
    assert tool_span.name == "execute_tool lookup_order"
    assert attrs(tool_span)[names.GEN_AI_TOOL_CALL_ID] == "call-1"
    assert attrs(tool_span)[names.GEN_AI_TOOL_NAME] == "lookup_order"
    assert attrs(turn)[names.GEN_AI_AGENT_NAME] == "support_agent"  # the agent, not the router
    variant = variant_for(client, conversation)
    for span in spans:
        assert attrs(span)[names.EXPERIMENT_VARIANT] == variant, span.name
        assert attrs(span)[names.EXPERIMENT_KEY] == FLAG
        assert attrs(span)[names.EXPERIMENT_UNIT] == "conversation"
        assert attrs(span)[names.GEN_AI_CONVERSATION_ID] == conversation


def test_a_model_call_after_a_second_experiment_carries_both_and_one_before_only_the_first(
    make_provider: Any,
    of_client: Any,
    handler: ExperimentCallbackHandler,
    exporter: InMemorySpanExporter,
) -> None:
    second_flag = "answer-tone-test"
    provider = make_provider(
        [experiment_flag(), fl.flag(second_flag, ["plain", "warm"], tags=["unit:conversation"])]
    )
    client = of_client(provider)
    model = FakeMessagesListChatModel(responses=[answer("first"), answer("second")])
    second = experiment_branch(second_flag, {"plain": model, "warm": model}, client=client)
    turn = model | RunnableLambda(lambda reply: reply.content) | second
    chain = router(client, turn, turn)

    chain.invoke("hello", {"callbacks": [handler], "metadata": {"conversation_id": "c-two"}})

    spans = exporter.get_finished_spans()
    before, after = named(spans, "chat")
    [turn_span] = named(spans, "invoke_workflow")
    assert attrs(before)[names.EXPERIMENT_KEYS] == (FLAG,)
    assert attrs(after)[names.EXPERIMENT_KEYS] == (FLAG, second_flag)
    assert attrs(turn_span)[names.EXPERIMENT_KEYS] == (FLAG, second_flag)


def test_streamed_response_is_one_turn_tagged_with_the_variant(
    client: OpenFeatureClient, handler: ExperimentCallbackHandler, exporter: InMemorySpanExporter
) -> None:
    def streaming_chain(text: str) -> Runnable[Any, str]:
        model = GenericFakeChatModel(messages=itertools.cycle([AIMessage(text)]))
        prompt = ChatPromptTemplate.from_messages([("human", "{question}")])
        return prompt | model | StrOutputParser()

    chain = router(client, streaming_chain("A is on its way"), streaming_chain("B is on its way"))
    conversation = "c-stream"

    chunks = list(
        chain.stream(
            QUESTION, {"callbacks": [handler], "metadata": {"conversation_id": conversation}}
        )
    )

    variant = variant_for(client, conversation)
    assert len(chunks) > 1
    assert "".join(chunks) == ("A" if variant == "control" else "B") + " is on its way"
    spans = exporter.get_finished_spans()
    assert len(named(spans, "invoke_workflow")) == 1
    assert len(named(spans, "chat")) == 1
    assert {attrs(s)[names.EXPERIMENT_VARIANT] for s in spans} == {variant}
    assert handler.tracker.active_runs == 0


def test_stream_its_consumer_stops_reading_still_ends_the_turn_without_error(
    client: OpenFeatureClient, handler: ExperimentCallbackHandler, exporter: InMemorySpanExporter
) -> None:
    model = GenericFakeChatModel(messages=itertools.cycle([AIMessage("one two three four")]))
    chain = router(client, model, model)

    for _ in chain.stream("hi", {"callbacks": [handler]}):
        break

    [turn] = named(exporter.get_finished_spans(), "invoke_workflow")
    assert turn.status.status_code is not StatusCode.ERROR
    assert handler.tracker.active_runs == 0


async def test_async_stream_closed_midway_still_ends_the_turn(
    client: OpenFeatureClient, handler: ExperimentCallbackHandler, exporter: InMemorySpanExporter
) -> None:
    model = GenericFakeChatModel(messages=itertools.cycle([AIMessage("one two three four")]))
    chain = router(client, model, model)

    async with contextlib.aclosing(chain.astream("hi", {"callbacks": [handler]})) as stream:
        async for _ in stream:
            break

    [turn] = named(exporter.get_finished_spans(), "invoke_workflow")
    assert turn.status.status_code is not StatusCode.ERROR
    assert handler.tracker.active_runs == 0


# -- the async handler -----------------------------------------------------------------------


@pytest.mark.parametrize("style", ["ainvoke", "invoke"])
async def test_async_handler_follows_turns_like_the_sync_one(
    style: str,
    client: OpenFeatureClient,
    tracer_provider: TracerProvider,
    exporter: InMemorySpanExporter,
) -> None:
    handler = AsyncExperimentCallbackHandler(tracer_provider=tracer_provider)
    agent = support_agent(tool_calling_model(), [lookup_order])
    config: RunnableConfig = {"callbacks": [handler], "metadata": {"conversation_id": "c-async"}}

    chain = router(client, agent, agent)
    if style == "ainvoke":
        await chain.ainvoke(QUESTION, config)
    else:
        chain.invoke(QUESTION, config)

    spans = exporter.get_finished_spans()
    assert len(named(spans, "invoke_workflow")) == 1
    assert len(named(spans, "chat")) == 2
    assert len(named(spans, "execute_tool")) == 1
    assert {attrs(s)[names.EXPERIMENT_VARIANT] for s in spans} == {variant_for(client, "c-async")}
    assert handler.tracker.active_runs == 0


# -- where the conversation ID comes from ----------------------------------------------------


def test_langgraph_style_thread_id_in_metadata_is_the_conversation_id(
    handler: ExperimentCallbackHandler, exporter: InMemorySpanExporter
) -> None:
    # LangGraph copies configurable.thread_id into run metadata; simulate that copy.
    answering_chain("hi").invoke(
        QUESTION,
        {
            "callbacks": [handler],
            "configurable": {"thread_id": "t-42"},
            "metadata": {"thread_id": "t-42"},
        },
    )

    [turn] = named(exporter.get_finished_spans(), "invoke_workflow")
    assert attrs(turn)[names.GEN_AI_CONVERSATION_ID] == "t-42"
    assert attrs(turn)[names.UNIT_ID_PREFIX + "conversation"] == "t-42"


def test_ids_only_in_configurable_reach_the_turn_through_the_router(
    client: OpenFeatureClient, handler: ExperimentCallbackHandler, exporter: InMemorySpanExporter
) -> None:
    chain = router(client, answering_chain("A"), answering_chain("B"))

    chain.invoke(
        QUESTION,
        {"callbacks": [handler], "configurable": {"thread_id": "t-7", "user_id": "u-1"}},
    )

    [turn] = named(exporter.get_finished_spans(), "invoke_workflow")
    assert attrs(turn)[names.GEN_AI_CONVERSATION_ID] == "t-7"
    assert attrs(turn)[names.UNIT_ID_PREFIX + "user"] == "u-1"
    assert attrs(turn)[names.EXPERIMENT_VARIANT] == variant_for(client, "t-7")


def test_custom_key_names_are_read_for_their_unit(
    tracer_provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    handler = ExperimentCallbackHandler(
        tracer_provider=tracer_provider, reader=TurnContextReader({"chat_id": "conversation"})
    )

    answering_chain("hi").invoke(
        QUESTION, {"callbacks": [handler], "metadata": {"chat_id": "chat-5", "thread_id": "x"}}
    )

    [turn] = named(exporter.get_finished_spans(), "invoke_workflow")
    assert attrs(turn)[names.GEN_AI_CONVERSATION_ID] == "chat-5"


# -- errors, privacy, nested evaluations ------------------------------------------------------


def test_failed_turn_span_records_the_error(
    handler: ExperimentCallbackHandler, exporter: InMemorySpanExporter
) -> None:
    def fail(_: Any) -> str:
        raise TimeoutError("model timed out")

    with pytest.raises(TimeoutError):
        (answering_chain("hi") | RunnableLambda(fail)).invoke(QUESTION, {"callbacks": [handler]})

    [turn] = named(exporter.get_finished_spans(), "invoke_workflow")
    assert turn.status.status_code is StatusCode.ERROR
    assert attrs(turn)[names.ERROR_TYPE] == "TimeoutError"
    assert handler.tracker.active_runs == 0


def test_privacy_protects_unit_ids_written_to_spans(
    tracer_provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    privacy = Privacy.hashed("a-test-key-of-32-bytes-exactly!!")
    handler = ExperimentCallbackHandler(tracer_provider=tracer_provider, privacy=privacy)

    answering_chain("hi").invoke(
        QUESTION, {"callbacks": [handler], "metadata": {"conversation_id": "c-secret"}}
    )

    spans = exporter.get_finished_spans()
    pseudonym = privacy.protect("c-secret")
    assert {attrs(s)[names.GEN_AI_CONVERSATION_ID] for s in spans} == {pseudonym}
    assert all("c-secret" not in str(attrs(s)) for s in spans)


def test_evaluation_inside_with_turn_context_is_tagged_on_the_turn(
    client: OpenFeatureClient, handler: ExperimentCallbackHandler, exporter: InMemorySpanExporter
) -> None:
    reader = TurnContextReader()

    def pick_prompt(question: dict[str, str], config: RunnableConfig) -> str:
        context = reader.from_config(config).evaluation_context
        return client.get_string_value(FLAG, "control", context)

    chain = with_turn_context(RunnableLambda(pick_prompt))

    served = chain.invoke(
        QUESTION, {"callbacks": [handler], "configurable": {"conversation_id": "c-3"}}
    )

    [turn] = named(exporter.get_finished_spans(), "invoke_workflow")
    assert served == variant_for(client, "c-3")
    assert attrs(turn)[names.EXPERIMENT_KEYS] == (FLAG,)
    assert attrs(turn)[names.EXPERIMENT_VARIANTS] == (served,)


def test_the_handler_takes_the_providers_hashed_privacy_by_default(
    make_provider: Any, tracer_provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    privacy = Privacy.hashed("a-test-key-of-32-bytes-exactly!!")
    api.set_provider_and_wait(make_provider([experiment_flag()], privacy=privacy))
    try:
        handler = ExperimentCallbackHandler(tracer_provider=tracer_provider)
        router(api.get_client(), answering_chain("A"), answering_chain("B")).invoke(
            QUESTION,
            {"callbacks": [handler], "metadata": {"conversation_id": "c-raw", "user_id": "u-raw"}},
        )
    finally:
        api.clear_providers()

    spans = exporter.get_finished_spans()
    assert spans
    assert all("c-raw" not in str(attrs(s)) and "u-raw" not in str(attrs(s)) for s in spans)
    [turn] = named(spans, "invoke_workflow")
    assert attrs(turn)[names.UNIT_ID_PREFIX + "user"] == privacy.protect("u-raw")


def test_a_handler_without_a_provider_takes_the_privacy_of_the_routers_provider(
    make_provider: Any, of_client: Any, tracer_provider: TracerProvider, exporter: Any
) -> None:
    privacy = Privacy.hashed("a-test-key-of-32-bytes-exactly!!")
    client = of_client(make_provider([experiment_flag()], privacy=privacy))
    handler = ExperimentCallbackHandler(tracer_provider=tracer_provider)

    router(client, answering_chain("A"), answering_chain("B")).invoke(
        QUESTION, {"callbacks": [handler], "metadata": {"conversation_id": "c-raw"}}
    )

    spans = exporter.get_finished_spans()
    assert {attrs(s)[names.GEN_AI_CONVERSATION_ID] for s in spans} == {privacy.protect("c-raw")}
