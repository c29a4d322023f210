"""LangChain adapter overhead: one turn of a zero-latency fake-model chain (prompt | fake chat
model | parser) run bare, under LangChain's own parts (a no-op callback handler and a
``RunnableLambda`` router), and under ours (``ExperimentCallbackHandler`` and
``experiment_branch``), all in the same run.

The goal compares our own cost with LangChain's own: (turn with our handler + router - bare
turn) / (turn with the no-op handler + ``RunnableLambda`` router - bare turn), at most 1.25x.
Ours includes the flag evaluation through OpenFeature and our provider (default
configuration, offline FeatBit client) and real OpenTelemetry SDK spans (a turn span and a
chat span per turn, exported to an exporter that drops them, so span creation and processing
count but no I/O does); a row without the SDK shows the adapter without span costs.

Keys are realistic: turns rotate over 1,000 conversations (each with its own user), so the
warm rows are repeat turns of conversations the provider has seen (a ledger hit each); the
first-turn row gives every turn a conversation never seen before (FeatBit's evaluation, a
ledger claim and an exposure each). Breakdown rows show the handler alone, the router alone
and the flag evaluation alone.

Timing: the variants take turns, turn by turn, and each turn is timed in CPU time of the
benchmark thread (``time.thread_time``), so a burst of load on a shared machine hits every
variant alike; values are medians over 1,500 turns per variant (every row warm, after a
warm-up of each variant; repeat turns are ledger hits). The goal's ratio comes from those
medians; its spread is the same ratio over each fifth of the run. The zero-latency fake model
makes this the worst case; the last rows set the overhead against a model that takes 50 ms
or 500 ms (derived).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from featbit_experiments_langchain import (
    ExperimentCallbackHandler,
    TurnOutcomes,
    experiment_branch,
)
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.language_models import FakeMessagesListChatModel
from langchain_core.messages import AIMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import Runnable, RunnableConfig, RunnableLambda
from openfeature import api
from openfeature.client import OpenFeatureClient
from openfeature.evaluation_context import EvaluationContext
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import NoOpTracerProvider

from benchmarks._report import Row, alternating_calls, print_rows
from featbit_experiments import FeatBitProvider, UnitPolicy

FLAG = "support-retrieval-test"
DOMAIN = "bench-langchain"
QUESTION = {"question": "where is my parcel?"}
#: Our own cost per turn over LangChain's own cost of a handler and a routing layer.
TARGET_RATIO = 1.25
TURNS = 1_500
_BLOCKS = 5
CONVERSATIONS = 1_000
#: Model latencies the measured overhead is set against (a real chat model's is longer).
MODEL_LATENCIES_S = (0.05, 0.5)


class _NoOpHandler(BaseCallbackHandler):
    """What any callback handler costs LangChain before it does anything."""

    run_inline = True

    def on_chat_model_start(self, serialized: Any, messages: Any, **kwargs: Any) -> None:
        pass


class _DropSpans(SpanExporter):
    def export(self, spans: Any) -> SpanExportResult:
        return SpanExportResult.SUCCESS


def _bootstrap() -> Path:
    flag = {
        "id": "f1", "key": FLAG, "name": FLAG, "variationType": "string",
        "variations": [
            {"id": "a", "value": "control"}, {"id": "b", "value": "retrieval_profile_b"}],
        "targetUsers": [], "rules": [], "isEnabled": True, "disabledVariationId": "a",
        "fallthrough": {"dispatchKey": None, "includedInExpt": True, "variations": [
            {"id": "a", "rollout": [0, 0.5], "exptRollout": 1},
            {"id": "b", "rollout": [0.5, 1], "exptRollout": 1}]},
        "exptIncludeAllTargets": True, "tags": ["unit:conversation"], "isArchived": False,
        "updatedAt": "2026-01-01T00:00:00Z",
    }  # fmt: skip
    path = Path(tempfile.mkdtemp()) / "bench-langchain.json"
    path.write_text(json.dumps({"featureFlags": [flag], "segments": []}))
    return path


def _chain(text: str) -> Runnable[Any, str]:
    reply = AIMessage(
        text, usage_metadata={"input_tokens": 7, "output_tokens": 3, "total_tokens": 10}
    )
    model = FakeMessagesListChatModel(responses=[reply])
    prompt = ChatPromptTemplate.from_messages([("human", "{question}")])
    return prompt | model | StrOutputParser()


def _ids(index: int) -> dict[str, str]:
    return {"conversation_id": f"conv-{index:06d}", "user_id": f"user-{index:06d}"}


def _turns(
    runnable: Runnable[Any, str],
    callbacks: list[BaseCallbackHandler],
    ids: Iterator[dict[str, str]],
) -> Callable[[], Any]:
    """One ``invoke`` turn per call, each with the next conversation's IDs."""

    def turn() -> Any:
        return runnable.invoke(QUESTION, {"callbacks": callbacks, "metadata": next(ids)})

    return turn


def _async_turns(
    runnable: Runnable[Any, str],
    callbacks: list[BaseCallbackHandler],
    ids: Iterator[dict[str, str]],
) -> Callable[[], Any]:
    """One ``ainvoke`` turn per call, on an event loop kept for the whole benchmark."""
    loop = asyncio.new_event_loop()

    def turn() -> Any:
        config: RunnableConfig = {"callbacks": callbacks, "metadata": next(ids)}
        return loop.run_until_complete(runnable.ainvoke(QUESTION, config))

    return turn


def _repeat_ids() -> Iterator[dict[str, str]]:
    return itertools.cycle([_ids(i) for i in range(CONVERSATIONS)])


def _first_ids() -> Iterator[dict[str, str]]:
    return (_ids(i) for i in itertools.count(CONVERSATIONS))


class _Setup:
    """The provider, the chains and the handlers every variant runs with."""

    def __init__(self) -> None:
        self.provider = FeatBitProvider.offline(_bootstrap(), policy=UnitPolicy())
        api.set_provider_and_wait(self.provider, domain=DOMAIN)
        self.client: OpenFeatureClient = api.get_client(DOMAIN)
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(_DropSpans()))
        self.handler = ExperimentCallbackHandler(tracer_provider=self.tracer_provider)
        self.untraced = ExperimentCallbackHandler(tracer_provider=NoOpTracerProvider())
        self.with_outcomes = ExperimentCallbackHandler(
            tracer_provider=self.tracer_provider, outcomes=TurnOutcomes(self.client)
        )
        self.chain = _chain("A")
        branches = {"control": self.chain, "retrieval_profile_b": _chain("B")}
        self.router = experiment_branch(FLAG, branches, client=self.client)
        # The same shape from LangChain's own parts: a routing lambda, a handler doing nothing.
        self.lambda_router = RunnableLambda(lambda _: branches["control"], name="route")
        self.noop = _NoOpHandler()
        for ids in itertools.islice(_repeat_ids(), CONVERSATIONS):  # every conversation once
            self.router.invoke(QUESTION, {"callbacks": [self.handler], "metadata": ids})

    def evaluation(self) -> Callable[[], Any]:
        """The flag evaluation alone, as the router makes it (OpenFeature, our provider)."""
        contexts = itertools.cycle(
            [EvaluationContext(ids["user_id"], ids) for ids in map(_ids, range(CONVERSATIONS))]
        )
        return lambda: self.client.get_string_details(FLAG, "control", next(contexts))

    def close(self) -> None:
        self.tracer_provider.shutdown()
        self.provider.shutdown()
        api.clear_providers()


def _measure(setup: _Setup) -> dict[str, dict[str, list[float]]]:
    """Per-turn CPU times of three groups of variants, each group's variants taking turns."""
    handler, noop = [setup.handler], [setup.noop]

    def alternating(variants: dict[str, Callable[[], Any]]) -> dict[str, list[float]]:
        return alternating_calls(variants, calls=TURNS, clock=time.thread_time)

    return {
        "sync": alternating(
            {
                "bare": _turns(setup.chain, [], _repeat_ids()),
                "langchain": _turns(setup.lambda_router, noop, _repeat_ids()),
                "ours": _turns(setup.router, handler, _repeat_ids()),
                "ours untraced": _turns(setup.router, [setup.untraced], _repeat_ids()),
            }
        ),
        "async": alternating(
            {
                "bare": _async_turns(setup.chain, [], _repeat_ids()),
                "langchain": _async_turns(setup.lambda_router, noop, _repeat_ids()),
                "ours": _async_turns(setup.router, handler, _repeat_ids()),
            }
        ),
        "parts": alternating(
            {
                # First turns grow the ledger and the heap: kept apart from the goal's group,
                # where the garbage collections they cause would land on the other variants.
                "bare": _turns(setup.chain, [], _repeat_ids()),
                "langchain": _turns(setup.lambda_router, noop, _repeat_ids()),
                "ours first": _turns(setup.router, handler, _first_ids()),
                "handler": _turns(setup.chain, handler, _repeat_ids()),
                "router": _turns(setup.router, [], _repeat_ids()),
                "outcomes": _turns(setup.router, [setup.with_outcomes], _repeat_ids()),
                "evaluation": setup.evaluation(),
            }
        ),
    }


def run() -> list[Row]:
    setup = _Setup()
    try:
        measured = _measure(setup)
    finally:
        setup.close()
    sync, parts = measured["sync"], measured["parts"]
    bare = statistics.median(sync["bare"])
    rows = [
        Row(name="bare chain turn (invoke, CPU)", value=bare * 1e6, unit="us/turn", ratio=1.0),
        _vs_bare("LangChain's no-op handler + RunnableLambda router", sync, "langchain"),
        _vs_bare("our handler + router (repeat turns)", sync, "ours"),
        _goal("GOAL own cost vs LangChain's, repeat turns (invoke)", sync, "ours"),
        _goal("GOAL own cost vs LangChain's, repeat turns (ainvoke)", measured["async"], "ours"),
        _goal("own cost vs LangChain's, first turns (invoke)", parts, "ours first",
              note="each turn a new conversation: FeatBit evaluation, ledger claim, exposure"),
        _goal("GOAL own cost vs LangChain's, tracing off (invoke)", sync, "ours untraced",
              note="no OpenTelemetry SDK (the API's no-op tracer): no spans to write"),
        _vs_bare("  part: handler only", parts, "handler"),
        _vs_bare("  part: router only", parts, "router"),
        Row(name="  part: the flag evaluation alone (OpenFeature)",
            value=statistics.median(parts["evaluation"]) * 1e6, unit="us/eval",
            note="inside the router's cost: the core provider's share, not the adapter's"),
        _vs_bare("handler + router + outcomes (repeat turns)", parts, "outcomes"),
    ]  # fmt: skip
    return rows + [_with_model_latency(parts, latency) for latency in MODEL_LATENCIES_S]


def _vs_bare(name: str, measured: dict[str, list[float]], key: str) -> Row:
    base = statistics.median(measured["bare"])
    value = statistics.median(measured[key])
    return Row(
        name=name,
        value=value * 1e6,
        unit="us/turn",
        ratio=value / base,
        baseline=f"bare chain {base * 1e6:.0f} us/turn",
    )


def _goal(name: str, measured: dict[str, list[float]], key: str, note: str = "") -> Row:
    """(ours - bare) / (LangChain's parts - bare) from median turns; the spread is the same
    ratio over each fifth of the run."""

    def ratio(part: slice) -> tuple[float, float, float]:
        ours, langchain, bare = (
            statistics.median(measured[name][part]) for name in (key, "langchain", "bare")
        )
        return (ours - bare) / (langchain - bare), ours - bare, langchain - bare

    overall, own, theirs = ratio(slice(None))
    fifth = len(measured["bare"]) // _BLOCKS
    blocks = [ratio(slice(i * fifth, (i + 1) * fifth))[0] for i in range(_BLOCKS)]
    spread = f"each fifth of the run {min(blocks):.2f}-{max(blocks):.2f}x"
    return Row(
        name=name,
        value=own * 1e6,
        unit="us/turn",
        ratio=overall,
        target=f"<= {TARGET_RATIO:.2f}x",
        baseline=f"LangChain's own {theirs * 1e6:.0f} us/turn",
        note=f"{spread}; {note}" if note else spread,
    )


def _with_model_latency(sync: dict[str, list[float]], latency: float) -> Row:
    """The measured CPU overhead over a turn whose model answers in ``latency`` seconds."""
    bare = statistics.median(sync["bare"])
    overhead = statistics.median(sync["outcomes"]) - bare
    turn = bare + latency
    return Row(
        name=f"handler + router + outcomes, model {latency * 1e3:.0f} ms (derived)",
        value=(turn + overhead) * 1e6,
        unit="us/turn",
        ratio=(turn + overhead) / turn,
        note=f"measured overhead {overhead * 1e6:.0f} us over a {turn * 1e3:.1f} ms turn",
    )


def profile() -> Callable[[], None]:
    """For ``--profile``: 3,000 handler + router turns over 1,000 conversations (repeat
    turns), set up before the profiler starts."""
    setup = _Setup()
    turn = _turns(setup.router, [setup.handler], _repeat_ids())

    def turns() -> None:
        try:
            for _ in range(3_000):
                turn()
        finally:
            setup.close()

    return turns


if __name__ == "__main__":
    print_rows("bench_langchain", run())
