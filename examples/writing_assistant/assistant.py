"""The writing assistant: a LangChain chain suggesting a rewrite of a draft sentence, routed by
the ``writing-assistant-style-test`` experiment to one of two suggestion styles.

The experiment is randomized by user: a writer sees one style in every session, since a style
that changed between sessions would be noticed, and what it changes (whether suggestions get
accepted) accrues to the person, not to one session. Each style is ``prompt | fake chat model |
parser``; the fake model (see ``examples/_chat_model.py``) says the style's scripted rewrite.
"""

from __future__ import annotations

from typing import Any

from featbit_experiments_langchain import experiment_branch
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import Runnable, RunnableLambda
from openfeature.client import OpenFeatureClient

from .._chat_model import scripted

__all__ = ["CONCISE", "CONTROL", "FLAG", "build_assistant"]

FLAG = "writing-assistant-style-test"
CONTROL = "control"
CONCISE = "concise_suggestions"

_PROMPTS = {
    CONTROL: "Suggest a clearer version of the sentence, explaining each change.",
    CONCISE: "Suggest a shorter version of the sentence. Reply with the sentence only.",
}


def build_assistant(client: OpenFeatureClient) -> Runnable[dict[str, Any], str]:
    """The assistant for inputs ``{"draft"}``; its output is the suggestion. The router reads
    the user (and session) ID from the run's metadata."""
    branches = {style: _style(style) for style in (CONTROL, CONCISE)}
    return experiment_branch(FLAG, branches, client=client)


def _style(style: str) -> Runnable[dict[str, Any], str]:
    prompt = ChatPromptTemplate.from_messages([("system", _PROMPTS[style]), ("human", "{draft}")])

    def respond(inputs: dict[str, Any]) -> Runnable[dict[str, Any], str]:
        return prompt | scripted(_rewrite(style, str(inputs["draft"]))) | StrOutputParser()

    return RunnableLambda(respond, name=f"suggest:{style}")


def _rewrite(style: str, draft: str) -> str:
    words = draft.rstrip(".").split()
    if style == CONCISE:
        return " ".join(words[: max(4, len(words) // 2)]) + "."
    return (
        f"{' '.join(words)}. I moved the main point to the front, replaced two vague words "
        "and split the clause so each idea gets its own sentence."
    )
