"""The support assistant: a LangChain chain answering one customer turn, routed by the
``support-retrieval-test`` experiment to one of two retrieval profiles.

Each branch is ``retrieve | respond``. ``respond`` renders the prompt and calls a fake chat
model (``GenericFakeChatModel``, see ``examples/_chat_model.py``) scripted for the turn: it
answers from the article when retrieval found one, asks for details when not, says goodbye to
a thankful customer, and hands over to a human when asked. The variants differ only in their
retrieval profile: profile B finds the right article on more turns (42% against 30%); both
take 3 ms. Whether retrieval finds the article is a draw from the seed, the conversation and
the turn, so a run is reproducible and its effect is the one written here.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from featbit_experiments_langchain import experiment_branch
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import Runnable, RunnableLambda, RunnablePassthrough
from openfeature.client import OpenFeatureClient

from .._chance import draw
from .._chat_model import scripted

__all__ = [
    "CONTROL",
    "FLAG",
    "PROFILES",
    "PROFILE_B",
    "TOPICS",
    "RetrievalProfile",
    "build_assistant",
    "is_answer",
    "is_handoff",
]

FLAG = "support-retrieval-test"
CONTROL = "control"
PROFILE_B = "retrieval_profile_b"

#: Help-centre articles by the topic word a customer's message contains.
TOPICS = {
    "refund": "Refunds: when the money reaches your account",
    "delivery": "Late deliveries: tracking and replacements",
    "password": "Resetting a password and unlocking an account",
    "invoice": "Invoices: corrections and copies",
    "subscription": "Changing or cancelling a subscription",
}

_ANSWER = "Here is what solves this"
_HANDOFF = "I'm connecting you with a human agent"
_PROMPT = ChatPromptTemplate.from_messages(
    [
        ("system", "You are a support assistant. Answer from this article: {article}"),
        ("human", "{message}"),
    ]
)


@dataclass(frozen=True)
class RetrievalProfile:
    """One variant's retrieval: how often it finds the right article, and how long it takes."""

    name: str
    hit_rate: float
    seconds: float


PROFILES = (
    RetrievalProfile(CONTROL, hit_rate=0.30, seconds=0.003),
    RetrievalProfile(PROFILE_B, hit_rate=0.42, seconds=0.003),
)


def is_answer(reply: str) -> bool:
    """Whether the assistant's reply answers from an article."""
    return reply.startswith(_ANSWER)


def is_handoff(reply: str) -> bool:
    """Whether the assistant handed the conversation over to a human."""
    return reply.startswith(_HANDOFF)


def build_assistant(client: OpenFeatureClient, seed: int) -> Runnable[dict[str, Any], str]:
    """The assistant for inputs ``{"conversation_id", "turn", "message"}``; its output is the
    reply text. The router evaluates the flag through ``client``, with the unit IDs of the
    run's metadata."""
    branches = {
        profile.name: (
            RunnablePassthrough.assign(article=_retriever(profile, seed))
            | RunnableLambda(_respond, afunc=_arespond, name="respond")
        ).with_config(run_name=f"support_turn:{profile.name}")
        for profile in PROFILES
    }
    return experiment_branch(FLAG, branches, client=client)


def _retriever(profile: RetrievalProfile, seed: int) -> Runnable[dict[str, Any], str | None]:
    """The profile's retrieval step: the article for the message's topic, or None on a miss."""

    def found(inputs: dict[str, Any]) -> str | None:
        topic = _topic(str(inputs["message"]))
        if topic is None:
            return None
        hit = draw(seed, "retrieval", inputs["conversation_id"], inputs["turn"]) < profile.hit_rate
        return TOPICS[topic] if hit else None

    def retrieve(inputs: dict[str, Any]) -> str | None:
        time.sleep(profile.seconds)
        return found(inputs)

    async def aretrieve(inputs: dict[str, Any]) -> str | None:
        await asyncio.sleep(profile.seconds)
        return found(inputs)

    return RunnableLambda(retrieve, afunc=aretrieve, name=f"retrieve:{profile.name}")


def _respond(inputs: dict[str, Any]) -> Runnable[dict[str, Any], str]:
    """The prompt and a fake chat model that says this turn's scripted reply (a runnable
    returned by a ``RunnableLambda`` runs on the same input, streamed when the turn is)."""
    return _PROMPT | scripted(_script(inputs)) | StrOutputParser()


async def _arespond(inputs: dict[str, Any]) -> Runnable[dict[str, Any], str]:
    # An async twin, so LangChain does not hop to a thread pool to call ``_respond``.
    return _respond(inputs)


def _script(inputs: dict[str, Any]) -> str:
    message = str(inputs["message"]).lower()
    article = inputs.get("article")
    if "human" in message:
        return f"{_HANDOFF}; they will reply in this conversation shortly."
    if "thanks" in message:
        return "Glad I could help. Have a good day!"
    if article:
        return f"{_ANSWER}: see '{article}'. Follow its steps and it should be sorted."
    topic = _topic(message) or "issue"
    return f"Could you tell me more about the {topic}? An order number or date would help."


def _topic(message: str) -> str | None:
    lowered = message.lower()
    return next((topic for topic in TOPICS if topic in lowered), None)
