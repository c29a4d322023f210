"""Concurrent requests through a real uvicorn server never see each other's unit IDs: every
flag evaluation, in an async or sync endpoint, a background task, a streaming body or a
WebSocket session, uses the ID its own request sent."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

import httpx
from featbit_experiments_starlette import UnitContextMiddleware
from openfeature import api
from openfeature.evaluation_context import EvaluationContext
from starlette.middleware import Middleware
from websockets.asyncio.client import connect

from adapters.starlette.tests.apps import EXPERIMENT_FLAGS, InFlight, isolation_app

REQUESTS = 1_000
SESSIONS = 300
MESSAGES_PER_SESSION = 3
HTTP_CONCURRENCY = 25  # httpx's pool slows down sharply beyond a few dozen connections
WS_CONCURRENCY = 100
ROUTES = ("/async", "/sync", "/stream")


def conversation_ids(count: int) -> list[str]:
    return [f"conv-{i:04d}-{uuid.uuid4().hex[:8]}" for i in range(count)]


async def wait_until(predicate: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate() and time.monotonic() < deadline:
        await asyncio.sleep(0.01)


async def test_concurrent_http_requests_each_evaluate_with_their_own_conversation_id(
    make_provider, of_client, serve
) -> None:
    provider = make_provider(EXPERIMENT_FLAGS)
    background_seen: dict[str, str] = {}
    in_flight = InFlight()
    app = isolation_app(
        of_client(provider),
        background_seen,
        [Middleware(UnitContextMiddleware, provider=provider)],
        in_flight,
    )
    address = serve(app)
    ids = conversation_ids(REQUESTS)
    limit = asyncio.Semaphore(HTTP_CONCURRENCY)

    async with httpx.AsyncClient(
        base_url=f"http://{address}",
        limits=httpx.Limits(max_connections=HTTP_CONCURRENCY),
        timeout=30,
    ) as client:

        async def one(index: int, conversation_id: str) -> tuple[str, str, list[str]]:
            route = ROUTES[index % len(ROUTES)]
            async with limit:
                response = await client.get(route, headers={"x-conversation-id": conversation_id})
            assert response.status_code == 200
            if route == "/stream":
                return route, conversation_id, [json.loads(line) for line in response.text.split()]
            return route, conversation_id, response.json()["seen"]

        results = await asyncio.gather(*(one(i, cid) for i, cid in enumerate(ids)))

    async_ids = [cid for route, cid, _ in results if route == "/async"]
    await wait_until(lambda: len(background_seen) == len(async_ids))
    wrong = [
        (route, cid, seen_value)
        for route, cid, seen_values in results
        for seen_value in seen_values
        if seen_value != f"conversation:{cid}"
    ]
    assert wrong == []
    assert sum(len(values) for _, _, values in results) == sum(
        {"/async": 2, "/sync": 1, "/stream": 3}[route] for route, _, _ in results
    )
    assert background_seen == {cid: f"conversation:{cid}" for cid in async_ids}
    assert in_flight.peak > 1


async def test_concurrent_websocket_sessions_each_evaluate_with_their_own_conversation_id(
    make_provider, of_client, serve
) -> None:
    provider = make_provider(EXPERIMENT_FLAGS)
    app = isolation_app(
        of_client(provider), {}, [Middleware(UnitContextMiddleware, provider=provider)]
    )
    address = serve(app)
    ids = conversation_ids(SESSIONS)
    limit = asyncio.Semaphore(WS_CONCURRENCY)

    async def session(conversation_id: str) -> list[str]:
        async with limit, connect(
            f"ws://{address}/ws", additional_headers={"x-conversation-id": conversation_id}
        ) as websocket:
            replies = []
            for turn in range(MESSAGES_PER_SESSION):
                await websocket.send(f"turn {turn}")
                replies.append(str(await websocket.recv()))
            return replies

    results = await asyncio.gather(*(session(cid) for cid in ids))

    assert [replies for replies in results] == [
        [f"conversation:{cid}"] * MESSAGES_PER_SESSION for cid in ids
    ]


async def test_the_previous_transaction_context_is_merged_and_restored(
    make_provider, of_client
) -> None:
    provider = make_provider(EXPERIMENT_FLAGS)
    client = of_client(provider)
    seen_inside: list[EvaluationContext] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen_inside.append(api.get_transaction_context())
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    before = EvaluationContext(attributes={"region": "eu"})
    api.set_transaction_context(before)
    transport = httpx.ASGITransport(UnitContextMiddleware(app, provider=provider))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        response = await http.get("/", headers={"x-conversation-id": "c-1"})

    assert response.status_code == 204
    assert dict(seen_inside[0].attributes) == {"region": "eu", "conversationId": "c-1"}
    assert api.get_transaction_context() is before
    assert client.get_string_details("prompt-style", "none").error_code is not None
