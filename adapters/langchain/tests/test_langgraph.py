"""LangGraph as users build it: a ``StateGraph`` compiled with a checkpointer, whose
``thread_id`` is the conversation, and an agent from ``langchain.agents.create_agent`` with a
tool, routed by an experiment. Turns are named after the graph or agent, not the router."""

from __future__ import annotations

from typing import Any, TypedDict

from featbit_experiments_langchain import (
    INVOKE_AGENT,
    ExperimentCallbackHandler,
    experiment_branch,
    with_turn_context,
)
from langchain.agents import create_agent
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph
from openfeature.client import OpenFeatureClient
from openfeature.evaluation_context import EvaluationContext
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from adapters.langchain.tests.lc_support import (
    FLAG,
    ToolCallingFakeModel,
    answer,
    attrs,
    by_trace,
    named,
)
from featbit_experiments import telemetry_names as names


class Chat(TypedDict, total=False):
    question: str
    answers: list[str]


def variant_for(client: OpenFeatureClient, conversation_id: str) -> str:
    return client.get_string_value(
        FLAG, "control", EvaluationContext(attributes={"conversationId": conversation_id})
    )


def chat_graph(client: OpenFeatureClient) -> Any:
    """One node routed by the experiment; answers accumulate in the checkpointed state."""

    def reply(style: str) -> Any:
        def node(state: Chat) -> Chat:
            return {"answers": [*state.get("answers", []), f"{style}: {state['question']}"]}

        return node

    graph = StateGraph(Chat)
    graph.add_node(
        "answer",
        experiment_branch(
            FLAG,
            {"control": reply("concise"), "retrieval_profile_b": reply("detailed")},
            client=client,
        ),
    )
    graph.add_edge(START, "answer")
    graph.add_edge("answer", END)
    return graph.compile(checkpointer=InMemorySaver(), name="support_graph")


def test_a_checkpointed_graphs_thread_is_the_conversation_of_every_turn(
    client: OpenFeatureClient, handler: ExperimentCallbackHandler, exporter: InMemorySpanExporter
) -> None:
    graph = chat_graph(client)
    config: Any = {"configurable": {"thread_id": "thread-7"}, "callbacks": [handler]}

    graph.invoke({"question": "hi"}, config)
    state = graph.invoke({"question": "and now?"}, config)

    style = "concise" if variant_for(client, "thread-7") == "control" else "detailed"
    assert state["answers"] == [f"{style}: hi", f"{style}: and now?"]
    spans = exporter.get_finished_spans()
    turns = named(spans, "invoke_workflow")
    assert [t.name for t in turns] == ["invoke_workflow support_graph"] * 2
    assert {attrs(t)[names.GEN_AI_CONVERSATION_ID] for t in turns} == {"thread-7"}
    assert {attrs(t)[names.EXPERIMENT_VARIANT] for t in turns} == {variant_for(client, "thread-7")}
    assert len(by_trace(spans)) == 2
    assert handler.tracker.active_runs == 0


async def test_a_graph_wrapped_in_turn_context_names_the_turn_after_the_graph(
    client: OpenFeatureClient, handler: ExperimentCallbackHandler, exporter: InMemorySpanExporter
) -> None:
    turn = with_turn_context(chat_graph(client))

    await turn.ainvoke(
        {"question": "hi"}, {"configurable": {"thread_id": "thread-8"}, "callbacks": [handler]}
    )

    [span] = named(exporter.get_finished_spans(), "invoke_workflow")
    assert span.name == "invoke_workflow support_graph"
    assert attrs(span)[names.GEN_AI_CONVERSATION_ID] == "thread-8"


@tool
def lookup_order(order_id: str) -> str:
    """Look up an order's shipping status."""
    return f"order {order_id}: shipped yesterday"


def support_agent(name: str) -> Any:
    ask = AIMessage(
        "", tool_calls=[{"name": "lookup_order", "args": {"order_id": "42"}, "id": "call-1"}]
    )
    model = ToolCallingFakeModel(responses=[ask, answer(f"{name}: order 42 shipped yesterday")])
    return create_agent(model, tools=[lookup_order], name=name)


def test_create_agent_routed_by_an_experiment_is_the_turns_agent(
    client: OpenFeatureClient, tracer_provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    handler = ExperimentCallbackHandler(
        tracer_provider=tracer_provider, turn_operation=INVOKE_AGENT
    )
    router = experiment_branch(
        FLAG,
        {"control": support_agent("agent_a"), "retrieval_profile_b": support_agent("agent_b")},
        client=client,
    )
    conversation = "c-agent"

    state = router.invoke(
        {"messages": [HumanMessage("where is order 42?")]},
        {"callbacks": [handler], "metadata": {"conversation_id": conversation}},
    )

    agent = "agent_a" if variant_for(client, conversation) == "control" else "agent_b"
    assert state["messages"][-1].content == f"{agent}: order 42 shipped yesterday"
    spans = exporter.get_finished_spans()
    [turn] = named(spans, "invoke_agent")
    assert turn.name == f"invoke_agent {agent}"
    assert attrs(turn)[names.GEN_AI_AGENT_NAME] == agent
    [tool_span] = named(spans, "execute_tool")
    assert attrs(tool_span)[names.EXPERIMENT_VARIANT] == variant_for(client, conversation)
    assert len(named(spans, "chat")) == 2
    assert len(by_trace(spans)) == 1
