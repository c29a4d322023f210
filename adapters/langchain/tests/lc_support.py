"""Helpers shared by the LangChain adapter tests: the experiment flag, fake models, and ways
to read finished spans."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langchain_core.language_models import FakeMessagesListChatModel
from langchain_core.messages import AIMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import Runnable
from opentelemetry.sdk.trace import ReadableSpan

from tests.support import flags as fl

FLAG = "support-retrieval-test"
VARIANTS = ("control", "retrieval_profile_b")


def experiment_flag(**options: Any) -> dict[str, Any]:
    """The router's flag: a 50/50 split over the two variants, randomized by conversation."""
    options.setdefault("tags", ["unit:conversation"])
    return fl.flag(FLAG, list(VARIANTS), **options)


def answer(text: str, input_tokens: int = 7, output_tokens: int = 3) -> AIMessage:
    return AIMessage(
        text,
        usage_metadata={
            "input_tokens": input_tokens,
            "output_tokens": output_tokens,
            "total_tokens": input_tokens + output_tokens,
        },
    )


def answering_chain(text: str) -> Runnable[Any, str]:
    """prompt | fake chat model | parser, always answering ``text``."""
    prompt = ChatPromptTemplate.from_messages([("human", "{question}")])
    return prompt | FakeMessagesListChatModel(responses=[answer(text)]) | StrOutputParser()


def by_trace(spans: Sequence[ReadableSpan]) -> dict[int, list[ReadableSpan]]:
    """Finished spans grouped by trace: with no span current at the start, one trace a turn."""
    traces: dict[int, list[ReadableSpan]] = {}
    for span in spans:
        assert span.context is not None
        traces.setdefault(span.context.trace_id, []).append(span)
    return traces


def named(spans: Sequence[ReadableSpan], prefix: str) -> list[ReadableSpan]:
    return [span for span in spans if span.name.startswith(prefix)]


def attrs(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


class ToolCallingFakeModel(FakeMessagesListChatModel):
    """A fake chat model an agent can bind tools to (it answers from its list regardless)."""

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> Runnable[Any, Any]:
        return self
