"""Binding unit IDs: the transaction context is merged and restored, conversation IDs are
generated and echoed when asked, and a missing propagator is reported rather than ignored."""

from __future__ import annotations

import logging
import uuid
from typing import Any

import httpx
import pytest
from featbit_experiments_starlette import (
    UnitContextMiddleware,
    current_unit_ids,
    unit_context,
)
from openfeature import api
from starlette.middleware import Middleware
from websockets.asyncio.client import connect

from adapters.starlette.tests.apps import EXPERIMENT_FLAGS, isolation_app


def new_id() -> str:
    return f"gen-{uuid.uuid4().hex}"


def generating(provider: Any, **options: Any) -> Middleware:
    """The middleware with conversation ID generation switched on."""
    return Middleware(
        UnitContextMiddleware, provider=provider, generate_conversation_id=new_id, **options
    )


def test_unit_context_sets_attributes_and_the_user_as_targeting_key() -> None:
    with unit_context({"conversation": "c-1", "user": "u-1"}) as bound:
        inside = api.get_transaction_context()
        ids = dict(current_unit_ids())

    assert inside is bound
    assert (inside.targeting_key, dict(inside.attributes)) == (
        "u-1",
        {"conversationId": "c-1", "userId": "u-1"},
    )
    assert ids == {"conversation": "c-1", "user": "u-1"}


def test_unit_context_restores_what_was_there_before() -> None:
    with unit_context({"workflow": "wf-1"}):
        outer = api.get_transaction_context()
        with unit_context({"conversation": "c-2"}):
            inner = dict(api.get_transaction_context().attributes)
        after_inner = api.get_transaction_context()

    assert inner == {"workflowId": "wf-1", "conversationId": "c-2"}
    assert after_inner is outer
    assert dict(api.get_transaction_context().attributes) == {}
    assert current_unit_ids() == {}


def test_nested_bindings_merge_like_openfeatures_transaction_context() -> None:
    with unit_context({"conversation": "c-1", "user": "u-outer"}):
        with unit_context({"user": "u-inner", "account": "a-1"}):
            inner = dict(current_unit_ids())
        outer = dict(current_unit_ids())

    assert inner == {"conversation": "c-1", "user": "u-inner", "account": "a-1"}
    assert outer == {"conversation": "c-1", "user": "u-outer"}


async def test_a_new_conversation_gets_a_generated_id_echoed_in_the_response(
    make_provider, of_client, serve
) -> None:
    provider = make_provider(EXPERIMENT_FLAGS)
    middleware = generating(provider)
    address = serve(isolation_app(of_client(provider), {}, [middleware]))

    async with httpx.AsyncClient(base_url=f"http://{address}") as http:
        response = await http.get("/units")

    generated = response.headers["x-conversation-id"]
    assert generated.startswith("gen-")
    assert response.json()["conversation"] == f"conversation:{generated}"


async def test_a_conversation_id_sent_by_the_client_is_kept_and_not_echoed(
    make_provider, of_client
) -> None:
    provider = make_provider(EXPERIMENT_FLAGS)
    middleware = generating(provider)
    app = isolation_app(of_client(provider), {}, [middleware])

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t") as http:
        response = await http.get("/units", headers={"x-conversation-id": "c-kept"})

    assert response.json()["conversation"] == "conversation:c-kept"
    assert "x-conversation-id" not in response.headers


async def test_a_dropped_conversation_id_is_replaced_by_a_generated_one(
    make_provider, of_client
) -> None:
    provider = make_provider(EXPERIMENT_FLAGS)
    middleware = generating(provider, on_invalid="drop")
    app = isolation_app(of_client(provider), {}, [middleware])

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t") as http:
        response = await http.get("/units", headers={"x-conversation-id": "not valid"})

    assert response.json()["conversation"] == (
        f"conversation:{response.headers['x-conversation-id']}"
    )


async def test_a_websocket_gets_its_generated_conversation_id_in_the_accept_headers(
    make_provider, of_client, serve
) -> None:
    provider = make_provider(EXPERIMENT_FLAGS)
    middleware = generating(provider)
    address = serve(isolation_app(of_client(provider), {}, [middleware]))

    async with connect(f"ws://{address}/ws") as websocket:
        assert websocket.response is not None
        generated = websocket.response.headers["x-conversation-id"]
        await websocket.send("hello")
        reply = await websocket.recv()

    assert reply == f"conversation:{generated}"


def test_a_generator_making_invalid_ids_is_refused_at_start_up() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        raise AssertionError("never called")

    with pytest.raises(ValueError, match="generate_conversation_id"):
        UnitContextMiddleware(app, generate_conversation_id=lambda: "has space")


async def test_a_generator_failing_at_run_time_leaves_the_request_without_an_id(
    make_provider, of_client, sink
) -> None:
    calls = iter(["gen-ok"])

    def flaky() -> str:
        return next(calls)  # StopIteration after the start-up check

    provider = make_provider(EXPERIMENT_FLAGS)
    middleware = Middleware(
        UnitContextMiddleware, provider=provider, generate_conversation_id=flaky
    )
    app = isolation_app(of_client(provider), {}, [middleware])

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t") as http:
        response = await http.get("/units")

    assert response.status_code == 200
    assert response.json()["units"] == {}
    assert [g["source"] for g in sink.guardrails("invalid_unit_id")] == ["generate_conversation_id"]


async def test_other_scopes_pass_through_untouched() -> None:
    received: list[dict[str, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        received.append({"scope": scope, "units": dict(current_unit_ids())})

    lifespan = {"type": "lifespan", "asgi": {"version": "3.0"}}
    await UnitContextMiddleware(app)(lifespan, None, None)  # type: ignore[arg-type]

    assert received == [{"scope": lifespan, "units": {}}]


async def test_without_a_propagator_evaluations_miss_the_ids_and_a_warning_says_why(
    make_provider, of_client, caplog: pytest.LogCaptureFixture
) -> None:
    api.clear_transaction_context_propagator()
    provider = make_provider(EXPERIMENT_FLAGS)
    app = isolation_app(
        of_client(provider), {}, [Middleware(UnitContextMiddleware, provider=provider)]
    )

    with caplog.at_level(logging.WARNING, logger="featbit_experiments"):
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app), base_url="http://t"
        ) as http:
            response = await http.get("/units", headers={"x-conversation-id": "c-1"})

    assert response.json()["conversation"] == "error:TARGETING_KEY_MISSING"
    assert "use_contextvars_propagator()" in caplog.text
