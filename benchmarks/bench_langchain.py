"""LangChain adapter overhead: one turn of a fake-model chain (prompt | fake chat model | parser)
with and without the callback handler and the variant router, measured in the same run.

The handler writes real OpenTelemetry SDK spans (a turn span and a chat span per turn) to an
exporter that drops them, so span creation and processing are counted but no I/O is. The
router evaluates the experiment flag through the OpenFeature client and our provider (offline
FeatBit client) and runs one of two identical chains.

Timing: the variants run in interleaved rounds and each keeps its best round, measured in CPU
time of the benchmark thread (``time.thread_time``), so other processes on a shared machine
disturb the comparison as little as possible. The zero-latency fake model makes this the
worst case. The last rows set the measured overhead against a turn whose model takes 50 ms
or 500 ms (derived, not timed: wall time on a shared two-core machine is noisier than the
overhead itself).
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
from collections.abc import Callable
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
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

from benchmarks._report import Row, print_rows
from featbit_experiments import FeatBitProvider, UnitPolicy

FLAG = "support-retrieval-test"
DOMAIN = "bench-langchain"
QUESTION = {"question": "where is my parcel?"}
TARGET = "<= 1.05x"
ROUNDS = 15
TURNS_PER_ROUND = 100
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


def _router(client: OpenFeatureClient) -> Runnable[Any, str]:
    return experiment_branch(
        FLAG,
        {"control": _chain("A"), "retrieval_profile_b": _chain("B")},
        client=client,
    )


def _best_per_turn(
    variants: dict[str, Callable[[], Any]], clock: Callable[[], float]
) -> dict[str, float]:
    """Best round's seconds per turn for each variant, rounds interleaved across variants."""
    for fn in variants.values():  # warm up caches, imports and lazy initialisation
        for _ in range(20):
            fn()
    best = dict.fromkeys(variants, float("inf"))
    for _ in range(ROUNDS):
        for name, fn in variants.items():
            start = clock()
            for _ in range(TURNS_PER_ROUND):
                fn()
            best[name] = min(best[name], (clock() - start) / TURNS_PER_ROUND)
    return best


def _async_turns(chain: Runnable[Any, str], config: RunnableConfig) -> Callable[[], Any]:
    """One ``ainvoke`` turn per call, on an event loop kept for the whole benchmark."""
    loop = asyncio.new_event_loop()
    return lambda: loop.run_until_complete(chain.ainvoke(QUESTION, config))


def run() -> list[Row]:
    provider = FeatBitProvider.offline(_bootstrap(), policy=UnitPolicy(), sinks=[])
    api.set_provider_and_wait(provider, domain=DOMAIN)
    client = api.get_client(DOMAIN)
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(_DropSpans()))
    handler = ExperimentCallbackHandler(tracer_provider=tracer_provider)
    with_outcomes = ExperimentCallbackHandler(
        tracer_provider=tracer_provider, outcomes=TurnOutcomes(client)
    )
    ids = {"conversation_id": "conv-1", "user_id": "u-1"}
    bare_config: RunnableConfig = {"metadata": ids}
    handled: RunnableConfig = {"callbacks": [handler], "metadata": ids}
    handled_outcomes: RunnableConfig = {"callbacks": [with_outcomes], "metadata": ids}
    chain, router = _chain("A"), _router(client)
    # The same shape from LangChain's own parts: a routing lambda and a handler doing nothing.
    branches = {"control": chain, "retrieval_profile_b": _chain("B")}
    lambda_router = RunnableLambda(lambda _: branches["control"], name="route")
    noop: RunnableConfig = {"callbacks": [_NoOpHandler()], "metadata": ids}

    sync = _best_per_turn(
        {
            "bare": lambda: chain.invoke(QUESTION, bare_config),
            "handler": lambda: chain.invoke(QUESTION, handled),
            "router": lambda: router.invoke(QUESTION, bare_config),
            "handler+router": lambda: router.invoke(QUESTION, handled),
            "handler+router+outcomes": lambda: router.invoke(QUESTION, handled_outcomes),
            "langchain parts": lambda: lambda_router.invoke(QUESTION, noop),
        },
        time.thread_time,
    )
    asynchronous = _best_per_turn(
        {
            "bare": _async_turns(chain, bare_config),
            "handler+router": _async_turns(router, handled),
        },
        time.thread_time,
    )
    tracer_provider.shutdown()
    provider.shutdown()
    api.clear_providers()

    def row(
        name: str, measured: dict[str, float], key: str, target: str = "", note: str = ""
    ) -> Row:
        base = measured["bare"]
        return Row(
            name=name,
            value=measured[key] * 1e6,
            unit="us/turn",
            ratio=measured[key] / base,
            baseline=f"bare chain {base * 1e6:.0f} us/turn",
            target=target,
            note=note,
        )

    return [
        Row(name="bare chain turn (invoke, CPU)", value=sync["bare"] * 1e6, unit="us/turn",
            ratio=1.0),
        row("handler only (invoke, CPU)", sync, "handler"),
        row("router only (invoke, CPU)", sync, "router"),
        row("handler + router (invoke, CPU)", sync, "handler+router", target=TARGET),
        row("handler + router + outcomes (invoke, CPU)", sync, "handler+router+outcomes"),
        row("  for scale: no-op handler + RunnableLambda router (invoke, CPU)", sync,
            "langchain parts", note="LangChain's own cost of a handler and a routing layer"),
        row("handler + router (ainvoke, CPU)", asynchronous, "handler+router", target=TARGET),
    ] + [_with_model_latency(sync, latency) for latency in MODEL_LATENCIES_S]  # fmt: skip


def _with_model_latency(sync: dict[str, float], latency: float) -> Row:
    """The measured CPU overhead over a turn whose model answers in ``latency`` seconds."""
    overhead = sync["handler+router+outcomes"] - sync["bare"]
    turn = sync["bare"] + latency
    return Row(
        name=f"handler + router + outcomes, model {latency * 1e3:.0f} ms (derived)",
        value=(turn + overhead) * 1e6,
        unit="us/turn",
        ratio=(turn + overhead) / turn,
        target=TARGET,
        note=f"measured overhead {overhead * 1e6:.0f} us over a {turn * 1e3:.1f} ms turn",
    )


if __name__ == "__main__":
    print_rows("bench_langchain", run())
