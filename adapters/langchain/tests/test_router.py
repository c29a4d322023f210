"""The variant router: which branch runs, with which unit ID, and what a turn keeps."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from featbit_experiments_langchain import (
    BRANCHES_METADATA_KEY,
    ExperimentCallbackHandler,
    experiment_branch,
)
from featbit_experiments_langchain.turn_context import TurnContextReader
from langchain_core.runnables import RunnableConfig, RunnableLambda, RunnablePassthrough
from openfeature import api
from openfeature.client import OpenFeatureClient
from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import ErrorCode
from openfeature.provider.in_memory_provider import InMemoryFlag, InMemoryProvider
from openfeature.transaction_context import ContextVarsTransactionContextPropagator
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from adapters.langchain.tests.lc_support import FLAG, answering_chain, experiment_flag
from featbit_experiments import Assignment, FeatBitProvider, Guardrail, InMemorySink
from tests.support import flags as fl

QUESTION = {"question": "where is my parcel?"}


def router(client: OpenFeatureClient, **options: Any) -> Any:
    return experiment_branch(
        FLAG,
        {"control": answering_chain("A"), "retrieval_profile_b": answering_chain("B")},
        client=client,
        **options,
    )


def variant_for(client: OpenFeatureClient, conversation_id: str) -> str:
    return client.get_string_value(
        FLAG, "control", EvaluationContext(attributes={"conversationId": conversation_id})
    )


@pytest.fixture
def assignments(provider: FeatBitProvider) -> list[Assignment]:
    """Every assignment the provider makes (one per experiment evaluation that served)."""
    made: list[Assignment] = []
    provider.resolver.assignment_listeners.append(made.append)
    return made


def test_each_conversation_runs_the_branch_its_variant_names(client: OpenFeatureClient) -> None:
    chain = router(client)
    expected = {f"conv-{i}": variant_for(client, f"conv-{i}") for i in range(20)}
    assert set(expected.values()) == {"control", "retrieval_profile_b"}

    outputs = {
        conversation: chain.invoke(QUESTION, {"metadata": {"conversation_id": conversation}})
        for conversation in expected
    }

    assert outputs == {
        conversation: "A" if variant == "control" else "B"
        for conversation, variant in expected.items()
    }


def test_turn_without_unit_id_runs_default_branch_and_records_guardrail(
    client: OpenFeatureClient, sink: InMemorySink, handler: ExperimentCallbackHandler
) -> None:
    output = router(client, default="retrieval_profile_b").invoke(
        QUESTION, {"callbacks": [handler]}
    )

    assert output == "B"
    missing = sink.guardrails(Guardrail.MISSING_UNIT_ID.value)
    assert [event["flagKey"] for event in missing] == [FLAG]
    assert missing[0]["errorCode"] == ErrorCode.TARGETING_KEY_MISSING.value


def test_thread_id_in_configurable_is_the_conversation_id(
    client: OpenFeatureClient, assignments: list[Assignment]
) -> None:
    router(client).invoke(QUESTION, {"configurable": {"thread_id": "t-42"}})

    [assignment] = assignments
    assert (assignment.unit, assignment.unit_key.value) == ("conversation", "t-42")
    assert assignment.unit_key.source == "thread_id"
    assert assignment.variant == variant_for(client, "t-42")


def test_retry_inside_a_turn_keeps_the_variant_without_evaluating_again(
    client: OpenFeatureClient,
    handler: ExperimentCallbackHandler,
    assignments: list[Assignment],
) -> None:
    attempts: list[str] = []

    def flaky(answer: str) -> str:
        attempts.append(answer)
        if len(attempts) == 1:
            raise ConnectionError("model endpoint reset")
        return answer

    turn = (router(client) | RunnableLambda(flaky)).with_retry(
        stop_after_attempt=2, wait_exponential_jitter=False
    )
    conversation = "conv-retry"
    expected = "A" if variant_for(client, conversation) == "control" else "B"
    assignments.clear()

    output = turn.invoke(
        QUESTION, {"callbacks": [handler], "metadata": {"conversation_id": conversation}}
    )

    assert attempts == [expected, expected]
    assert output == expected
    assert len(assignments) == 1


def test_fallback_inside_a_turn_keeps_the_variant(
    client: OpenFeatureClient,
    handler: ExperimentCallbackHandler,
    assignments: list[Assignment],
) -> None:
    def broken(_: Any) -> str:
        raise TimeoutError("primary model timed out")

    primary = experiment_branch(
        FLAG, {"control": broken, "retrieval_profile_b": broken}, client=client
    )
    backup = experiment_branch(
        FLAG,
        {
            "control": answering_chain("A-backup"),
            "retrieval_profile_b": answering_chain("B-backup"),
        },
        client=client,
    )
    conversation = "conv-fallback"
    variant = variant_for(client, conversation)
    assignments.clear()

    # Nested in the turn, not at its root: at the root, langchain-core 1.8 starts the
    # fallbacks' children as parentless runs (langchain-ai/langchain#36072).
    turn = RunnablePassthrough() | primary.with_fallbacks([backup])

    output = turn.invoke(
        QUESTION, {"callbacks": [handler], "metadata": {"conversation_id": conversation}}
    )

    assert output == ("A-backup" if variant == "control" else "B-backup")
    assert [a.variant for a in assignments] == [variant]


def test_served_value_naming_no_branch_runs_default_and_records_fallback_guardrail(
    make_provider: Callable[..., FeatBitProvider],
    of_client: Callable[[FeatBitProvider], OpenFeatureClient],
    sink: InMemorySink,
) -> None:
    client = of_client(
        make_provider(
            [fl.flag(FLAG, ["control", "retired_profile"], serve=1, tags=["unit:conversation"])]
        )
    )

    output = router(client).invoke(QUESTION, {"metadata": {"conversation_id": "conv-1"}})

    assert output == "A"
    [event] = sink.guardrails(Guardrail.FALLBACK_USED.value)
    assert "retired_profile" in event["message"]


def test_metadata_and_configurable_disagreeing_leave_the_id_out_and_record_guardrail(
    client: OpenFeatureClient, sink: InMemorySink, assignments: list[Assignment]
) -> None:
    output = router(client).invoke(
        QUESTION,
        {"metadata": {"thread_id": "t-1"}, "configurable": {"thread_id": "t-2"}},
    )

    assert output == "A"
    assert assignments == []
    assert [e["guardrail"] for e in sink.guardrails()] == [
        Guardrail.INVALID_UNIT_ID.value,
        Guardrail.MISSING_UNIT_ID.value,
    ]


@pytest.fixture
def contextvars_propagator() -> Iterator[None]:
    api.set_transaction_context_propagator(ContextVarsTransactionContextPropagator())
    yield
    # The propagator's ContextVar is class-level and outlives the test: empty it.
    api.set_transaction_context(EvaluationContext())
    api.clear_transaction_context_propagator()


@pytest.mark.usefixtures("contextvars_propagator")
def test_branch_sees_the_turn_ids_in_the_transaction_context_and_the_caller_does_not(
    client: OpenFeatureClient,
) -> None:
    api.set_transaction_context(EvaluationContext(attributes={"requestId": "req-1"}))
    seen: list[dict[str, Any]] = []

    def look(_: Any) -> str:
        seen.append(dict(api.get_transaction_context().attributes))
        return "ok"

    chain = experiment_branch(FLAG, {"control": look, "retrieval_profile_b": look}, client=client)
    chain.invoke(QUESTION, {"metadata": {"conversation_id": "conv-7", "user_id": "u-1"}})

    assert seen == [{"requestId": "req-1", "conversation_id": "conv-7", "user_id": "u-1"}]
    assert dict(api.get_transaction_context().attributes) == {"requestId": "req-1"}


def test_branch_runs_see_the_chosen_branch_in_their_metadata(client: OpenFeatureClient) -> None:
    seen: list[Any] = []

    def look(_: Any, config: RunnableConfig) -> str:
        seen.append((config.get("metadata") or {}).get(BRANCHES_METADATA_KEY))
        return "ok"

    chain = experiment_branch(FLAG, {"control": look, "retrieval_profile_b": look}, client=client)
    chain.invoke(QUESTION, {"metadata": {"conversation_id": "conv-8"}})

    assert seen == [{FLAG: variant_for(client, "conv-8")}]


def test_unknown_default_branch_is_refused_at_construction(client: OpenFeatureClient) -> None:
    with pytest.raises(ValueError, match="default branch"):
        router(client, default="treatment")


def test_flag_served_to_everyone_sends_every_conversation_to_one_branch(
    make_provider: Callable[..., FeatBitProvider],
    of_client: Callable[[FeatBitProvider], OpenFeatureClient],
) -> None:
    client = of_client(make_provider([experiment_flag(serve=1)]))
    chain = router(client)

    outputs = {
        chain.invoke(QUESTION, {"metadata": {"conversation_id": f"c-{i}"}}) for i in range(5)
    }

    assert outputs == {"B"}


def test_routers_on_one_flag_with_other_arm_names_use_their_default_and_say_so(
    client: OpenFeatureClient,
    handler: ExperimentCallbackHandler,
    sink: InMemorySink,
    assignments: list[Assignment],
) -> None:
    conversation = "conv-two-routers"
    variant = variant_for(client, conversation)
    assignments.clear()
    by_variant = experiment_branch(
        FLAG, {"control": lambda _: "A", "retrieval_profile_b": lambda _: "B"}, client=client
    )
    by_other_names = experiment_branch(
        FLAG, {"plain": lambda _: "plain", "fancy": lambda _: "fancy"}, client=client
    )
    turn = by_variant | by_other_names

    output = turn.invoke(
        QUESTION, {"callbacks": [handler], "metadata": {"conversation_id": conversation}}
    )

    assert output == "plain"  # the second router's default branch
    assert len(assignments) == 1  # the flag is evaluated once per turn
    [fallback] = sink.guardrails(Guardrail.FALLBACK_USED.value)
    assert (fallback["flagKey"], fallback["variation"]) == (FLAG, variant)
    assert "plain" in fallback["message"]


def test_routers_on_one_flag_that_share_arm_names_follow_the_same_variant(
    client: OpenFeatureClient, handler: ExperimentCallbackHandler, sink: InMemorySink
) -> None:
    first = experiment_branch(
        FLAG, {"control": lambda q: "a", "retrieval_profile_b": lambda q: "b"}, client=client
    )
    second = experiment_branch(
        FLAG,
        {"retrieval_profile_b": lambda p: p + "B", "control": lambda p: p + "A"},
        client=client,
    )

    output = (first | second).invoke(
        QUESTION, {"callbacks": [handler], "metadata": {"conversation_id": "conv-same"}}
    )

    assert output in ("aA", "bB")
    assert sink.guardrails(Guardrail.FALLBACK_USED.value) == []


def test_a_router_without_an_openfeature_provider_warns_once_naming_the_fix(
    caplog: pytest.LogCaptureFixture, handler: ExperimentCallbackHandler
) -> None:
    chain = experiment_branch(
        FLAG,
        {"control": lambda _: "A", "retrieval_profile_b": lambda _: "B"},
        client=api.get_client("a-domain-nobody-set"),
    )

    with caplog.at_level(logging.WARNING, logger="featbit_experiments.langchain"):
        outputs = [
            chain.invoke(QUESTION, {"callbacks": [handler], "metadata": {"conversation_id": c}})
            for c in ("c-1", "c-2", "c-3")
        ]

    assert outputs == ["A", "A", "A"]
    warnings = [r for r in caplog.records if "no OpenFeature provider" in r.getMessage()]
    assert len(warnings) == 1
    assert "set_provider_and_wait" in warnings[0].getMessage()


def test_a_router_without_a_provider_records_a_guardrail_where_the_handler_reports(
    provider: FeatBitProvider, sink: InMemorySink, tracer_provider: Any
) -> None:
    handler = ExperimentCallbackHandler(tracer_provider=tracer_provider, provider=provider)
    chain = experiment_branch(
        FLAG,
        {"control": lambda _: "A", "retrieval_profile_b": lambda _: "B"},
        client=api.get_client("a-domain-nobody-set"),
    )

    for conversation in ("c-1", "c-2"):
        chain.invoke(
            QUESTION, {"callbacks": [handler], "metadata": {"conversation_id": conversation}}
        )

    events = sink.guardrails(Guardrail.PROVIDER_NOT_READY.value)
    assert [e["flagKey"] for e in events] == [FLAG, FLAG]


# -- nested routers and the async path --------------------------------------------------------

STYLE = "reply-style"


def two_flag_client(make_provider: Any, of_client: Any) -> OpenFeatureClient:
    """Everyone in control on the router's flag, and on the "fancy" style."""
    style = fl.flag(STYLE, ["plain", "fancy"], serve=1, tags=["unit:conversation"])
    return of_client(make_provider([experiment_flag(serve=0), style]))


def nested(client: OpenFeatureClient, seen: list[Any]) -> Any:
    def look(_: Any, config: RunnableConfig) -> str:
        seen.append((config.get("metadata") or {}).get(BRANCHES_METADATA_KEY))
        return "ok"

    inner = experiment_branch(STYLE, {"plain": look, "fancy": look}, client=client)
    return experiment_branch(FLAG, {"control": inner, "retrieval_profile_b": inner}, client=client)


def test_nested_routers_on_two_flags_pass_both_choices_down(
    make_provider: Callable[..., FeatBitProvider],
    of_client: Callable[[FeatBitProvider], OpenFeatureClient],
) -> None:
    seen: list[Any] = []

    nested(two_flag_client(make_provider, of_client), seen).invoke(
        QUESTION, {"metadata": {"conversation_id": "conv-nested"}}
    )

    assert seen == [{FLAG: "control", STYLE: "fancy"}]


async def test_nested_routers_pass_both_choices_down_when_awaited(
    make_provider: Callable[..., FeatBitProvider],
    of_client: Callable[[FeatBitProvider], OpenFeatureClient],
) -> None:
    seen: list[Any] = []

    await nested(two_flag_client(make_provider, of_client), seen).ainvoke(
        QUESTION, {"metadata": {"conversation_id": "conv-nested"}}
    )

    assert seen == [{FLAG: "control", STYLE: "fancy"}]


async def test_an_awaited_router_runs_each_conversations_branch_with_its_unit_id(
    client: OpenFeatureClient, assignments: list[Assignment]
) -> None:
    chain = router(client)
    expected = {f"conv-{i}": variant_for(client, f"conv-{i}") for i in range(12)}
    assert set(expected.values()) == {"control", "retrieval_profile_b"}
    assignments.clear()

    outputs = {
        conversation: await chain.ainvoke(QUESTION, {"metadata": {"conversation_id": conversation}})
        for conversation in expected
    }

    assert outputs == {c: "A" if v == "control" else "B" for c, v in expected.items()}
    assert [(a.unit_key.value, a.variant) for a in assignments] == list(expected.items())


async def test_an_awaited_turn_without_unit_id_runs_the_default_branch(
    client: OpenFeatureClient, sink: InMemorySink
) -> None:
    output = await router(client, default="retrieval_profile_b").ainvoke(QUESTION)

    assert output == "B"
    assert [e["flagKey"] for e in sink.guardrails(Guardrail.MISSING_UNIT_ID.value)] == [FLAG]


# -- which branch a served value names, and how a router is built ------------------------------


@pytest.mark.parametrize(
    ("values", "names"),
    [
        (["control", "retrieval_profile_b"], ["arm-a", "arm-b"]),  # branches keyed by value
        (["profile-a.json", "profile-b.json"], ["control", "retrieval_profile_b"]),  # by variant
    ],
    ids=["by-value", "by-variant"],
)
def test_the_branch_is_keyed_by_the_served_value_else_by_the_variant(
    make_provider: Callable[..., FeatBitProvider],
    of_client: Callable[[FeatBitProvider], OpenFeatureClient],
    sink: InMemorySink,
    values: list[str],
    names: list[str],
) -> None:
    flag = fl.flag(FLAG, values, names=names, serve=1, tags=["unit:conversation"])
    client = of_client(make_provider([flag]))

    output = router(client).invoke(QUESTION, {"metadata": {"conversation_id": "conv-1"}})

    assert output == "B"
    assert sink.guardrails(Guardrail.FALLBACK_USED.value) == []


def test_a_router_needs_a_branch_and_defaults_to_control_wherever_it_is_listed(
    client: OpenFeatureClient,
) -> None:
    with pytest.raises(ValueError, match=rf"^experiment_branch\('{FLAG}'\) needs at least one"):
        experiment_branch(FLAG, {}, client=client)
    chain = experiment_branch(
        FLAG, {"retrieval_profile_b": lambda _: "B", "control": lambda _: "A"}, client=client
    )
    assert chain.default == "control" and chain.name == f"experiment_branch:{FLAG}"
    assert (
        experiment_branch(FLAG, {"x": lambda _: 1, "y": lambda _: 2}, client=client).default == "x"
    )


def test_experiment_branch_passes_domain_reader_name_and_default_on(
    provider: FeatBitProvider,
) -> None:
    domain = f"router-domain-{id(provider)}"
    api.set_provider(provider, domain)
    try:
        chain = experiment_branch(
            FLAG,
            {"control": lambda _: "A", "retrieval_profile_b": lambda _: "B"},
            domain=domain,
            reader=TurnContextReader({"ticket": "conversation"}),
            name="support-router",
            default="retrieval_profile_b",
        )
        client = api.get_client(domain)
        expected = {f"t-{i}": variant_for(client, f"t-{i}") for i in range(8)}

        outputs = {t: chain.invoke(QUESTION, {"metadata": {"ticket": t}}) for t in expected}

        assert chain.name == "support-router" and chain.default == "retrieval_profile_b"
        assert outputs == {t: "A" if v == "control" else "B" for t, v in expected.items()}
    finally:
        api.clear_providers()


def test_disagreeing_ids_and_a_missing_provider_are_explained_in_their_guardrails(
    provider: FeatBitProvider, sink: InMemorySink, tracer_provider: Any
) -> None:
    handler = ExperimentCallbackHandler(tracer_provider=tracer_provider, provider=provider)
    chain = experiment_branch(
        FLAG,
        {"control": lambda _: "A", "retrieval_profile_b": lambda _: "B"},
        client=api.get_client("a-domain-nobody-set"),
    )

    chain.invoke(
        QUESTION,
        {
            "callbacks": [handler],
            "metadata": {"thread_id": "t-1", "user_id": "u-1"},
            "configurable": {"thread_id": "t-2", "user_id": "u-2"},
        },
    )

    [conflict] = sink.guardrails(Guardrail.INVALID_UNIT_ID.value)
    assert conflict["message"] == (
        "run metadata and configurable disagree on thread_id, user_id; those IDs are left out "
        "of the turn's context"
    )
    [unset] = sink.guardrails(Guardrail.PROVIDER_NOT_READY.value)
    assert unset["message"] == (
        f"experiment_branch('{FLAG}') has no OpenFeature provider, so every turn runs the "
        "default branch 'control'; call api.set_provider_and_wait(FeatBitProvider...) at "
        "start-up, or pass a client= bound to a domain that has one"
    )


@pytest.mark.parametrize("awaited", [False, True], ids=["invoke", "ainvoke"])
async def test_a_value_naming_no_branch_from_another_provider_is_reported_by_the_handler(
    provider: FeatBitProvider, sink: InMemorySink, tracer_provider: Any, awaited: bool
) -> None:
    """A client whose provider is not ours (here OpenFeature's in-memory provider) has no
    event fanout: the fallback is recorded through the callback handler's provider."""
    domain = f"in-memory-{awaited}"
    api.set_provider(
        InMemoryProvider({FLAG: InMemoryFlag("retired", {"retired": "retired_profile"})}), domain
    )
    try:
        handler = ExperimentCallbackHandler(tracer_provider=tracer_provider, provider=provider)
        chain = router(api.get_client(domain))
        config: RunnableConfig = {
            "callbacks": [handler],
            "metadata": {"conversation_id": "conv-1"},
        }

        output = (
            await chain.ainvoke(QUESTION, config) if awaited else chain.invoke(QUESTION, config)
        )

        assert output == "A"
        [fallback] = sink.guardrails(Guardrail.FALLBACK_USED.value)
        assert (fallback["flagKey"], fallback["variation"]) == (FLAG, "retired")
    finally:
        api.clear_providers()


@pytest.mark.parametrize("awaited", [False, True], ids=["invoke", "ainvoke"])
async def test_a_failed_evaluation_is_recorded_with_the_default_branch_as_its_value(
    client: OpenFeatureClient,
    handler: ExperimentCallbackHandler,
    exporter: InMemorySpanExporter,
    awaited: bool,
) -> None:
    """The router evaluates with its default branch as OpenFeature's default, so the turn's
    ``feature_flag.evaluation`` event says which value a failed evaluation served."""
    chain = router(client, default="retrieval_profile_b")
    config: RunnableConfig = {"callbacks": [handler]}

    output = await chain.ainvoke(QUESTION, config) if awaited else chain.invoke(QUESTION, config)

    assert output == "B"
    [event] = [
        e
        for span in exporter.get_finished_spans()
        for e in span.events
        if e.name == "feature_flag.evaluation"
    ]
    attributes = dict(event.attributes or {})
    assert attributes["feature_flag.key"] == FLAG
    assert attributes["feature_flag.result.value"] == "retrieval_profile_b"


class ChainBlindHandler(ExperimentCallbackHandler):
    """A handler subclass that opts out of chain callbacks (LangChain's ``ignore_chain``): it
    stays among the run's handlers but never sees the router's run start, so it tracks no turn
    for it."""

    @property
    def ignore_chain(self) -> bool:
        return True


def test_a_handler_that_tracks_no_turn_for_the_run_leaves_the_router_choosing(
    client: OpenFeatureClient, provider: FeatBitProvider
) -> None:
    handler = ChainBlindHandler()
    chain = router(client)
    expected = variant_for(client, "conv-blind")

    output = chain.invoke(
        QUESTION, {"callbacks": [handler], "metadata": {"conversation_id": "conv-blind"}}
    )

    assert output == ("A" if expected == "control" else "B")
    assert handler.tracker.active_runs == 0
