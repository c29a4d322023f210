"""The B2B assistant: a LangChain chain answering a question about the tenant's workspace,
routed by the ``b2b-model-route-test`` experiment to a standard or a large model.

The experiment is randomized by account: a tenant's admins compare notes, share prompts and
sign one contract, so every user of one tenant must get the same route, and what the route
changes is measured per account. The models are fake chat models (see
``examples/_chat_model.py``) that name themselves in their answer, so the caller can see which
route served it.
"""

from __future__ import annotations

from typing import Any

from featbit_experiments_langchain import experiment_branch
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import Runnable, RunnableLambda
from openfeature.client import OpenFeatureClient

from .._chat_model import scripted

__all__ = ["FLAG", "LARGE", "ROUTES", "STANDARD", "build_assistant", "route_of"]

FLAG = "b2b-model-route-test"
STANDARD = "standard-model"
LARGE = "large-model"
ROUTES = (STANDARD, LARGE)

_PROMPT = ChatPromptTemplate.from_messages(
    [("system", "Answer questions about the customer's workspace."), ("human", "{question}")]
)


def build_assistant(client: OpenFeatureClient) -> Runnable[dict[str, Any], str]:
    """The assistant for inputs ``{"question"}``; the router reads the account (and user) ID
    from the run's metadata."""
    return experiment_branch(FLAG, {route: _route(route) for route in ROUTES}, client=client)


def route_of(answer: str) -> str | None:
    """The route that wrote ``answer``."""
    return next((route for route in ROUTES if answer.startswith(f"[{route}]")), None)


def _route(route: str) -> Runnable[dict[str, Any], str]:
    def respond(inputs: dict[str, Any]) -> Runnable[dict[str, Any], str]:
        answer = f"[{route}] Here is how to {inputs['question'].rstrip('?').lower()}: ..."
        return _PROMPT | scripted(answer, model_name=route) | StrOutputParser()

    async def arespond(inputs: dict[str, Any]) -> Runnable[dict[str, Any], str]:
        return respond(inputs)

    return RunnableLambda(respond, afunc=arespond, name=f"answer:{route}")
