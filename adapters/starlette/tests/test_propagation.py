"""Bound unit IDs reach every evaluation however the transaction context is propagated: with
our propagator a binding is built where an evaluation first asks for it (another thread
included), with OpenFeature's own it is set at once, and a context the application sets
inside a binding is in force until the binding ends."""

from __future__ import annotations

import asyncio

import httpx
from featbit_experiments_starlette import UnitContextMiddleware, unit_context
from openfeature import api
from openfeature.evaluation_context import EvaluationContext
from openfeature.transaction_context import ContextVarsTransactionContextPropagator
from starlette.middleware import Middleware

from adapters.starlette.tests.apps import CONVERSATION_FLAG, EXPERIMENT_FLAGS, isolation_app, seen


async def test_a_binding_reaches_an_evaluation_in_a_worker_thread(make_provider, of_client) -> None:
    client = of_client(make_provider(EXPERIMENT_FLAGS))

    with unit_context({"conversation": "c-thread"}):
        details = await asyncio.to_thread(client.get_string_details, CONVERSATION_FLAG, "none")

    assert seen(details) == "conversation:c-thread"


async def test_with_openfeatures_own_propagator_requests_are_bound_all_the_same(
    make_provider, of_client
) -> None:
    api.set_transaction_context_propagator(ContextVarsTransactionContextPropagator())
    provider = make_provider(EXPERIMENT_FLAGS)
    middleware = Middleware(UnitContextMiddleware, provider=provider)
    app = isolation_app(of_client(provider), {}, [middleware])

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t") as http:
        response = await http.get("/units", headers={"x-conversation-id": "c-eager"})

    assert response.json()["conversation"] == "conversation:c-eager"
    assert dict(api.get_transaction_context().attributes) == {}


def test_a_context_the_application_sets_inside_a_binding_holds_until_the_binding_ends() -> None:
    own = EvaluationContext(attributes={"conversationId": "c-own"})

    with unit_context({"conversation": "c-bound"}):
        api.set_transaction_context(own)
        inside = api.get_transaction_context()
    after = api.get_transaction_context()

    assert inside is own
    assert dict(after.attributes) == {}


async def test_a_field_sent_twice_that_names_no_unit_leaves_the_ids_alone(
    make_provider, of_client
) -> None:
    provider = make_provider(EXPERIMENT_FLAGS)
    middleware = Middleware(UnitContextMiddleware, provider=provider)
    app = isolation_app(of_client(provider), {}, [middleware])
    headers = [("accept", "text/plain"), ("accept", "*/*"), ("x-conversation-id", "c-1")]

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t") as http:
        response = await http.get("/units", headers=headers)

    assert response.json()["units"] == {"conversation": "c-1"}
