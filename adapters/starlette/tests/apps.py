"""Small real Starlette apps the tests run: every endpoint evaluates experiment flags through
the OpenFeature client with no explicit context and returns what the provider used (the
``contextId`` flag metadata, ``<unit>:<id>``) or its error code."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence
from typing import Any

from featbit_experiments_starlette import current_unit_ids
from openfeature.client import OpenFeatureClient
from openfeature.flag_evaluation import FlagEvaluationDetails
from starlette.applications import Starlette
from starlette.authentication import AuthCredentials, AuthenticationBackend, SimpleUser
from starlette.background import BackgroundTask
from starlette.middleware import Middleware
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.websockets import WebSocket

from tests.support import flags as fl

#: An experiment randomized by conversation, and one by user (50/50 splits).
CONVERSATION_FLAG = "prompt-style"
USER_FLAG = "tone"
EXPERIMENT_FLAGS = [
    fl.flag(CONVERSATION_FLAG, ["concise", "detailed"], tags=["unit:conversation"]),
    fl.flag(USER_FLAG, ["warm", "neutral"], tags=["unit:user"]),
]


class TenantUser(SimpleUser):
    """An authenticated user who belongs to a tenant (account)."""

    def __init__(self, username: str, tenant_id: str) -> None:
        super().__init__(username)
        self.tenant_id = tenant_id


class BearerUsers(AuthenticationBackend):
    """``Authorization: Bearer <user>@<tenant>`` authenticates ``<user>`` of ``<tenant>``."""

    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, SimpleUser] | None:
        scheme, _, token = conn.headers.get("authorization", "").partition(" ")
        if scheme != "Bearer" or not token:
            return None
        user, _, tenant = token.partition("@")
        return AuthCredentials(["authenticated"]), TenantUser(user, tenant)


class InFlight:
    """Counts requests inside the app at once, to show a test really ran them concurrently."""

    def __init__(self) -> None:
        self.now = 0
        self.peak = 0

    def __enter__(self) -> None:
        self.now += 1
        self.peak = max(self.peak, self.now)

    def __exit__(self, *exc: object) -> None:
        self.now -= 1


def seen(details: FlagEvaluationDetails[Any]) -> str:
    """What one evaluation used: the unit key, or the error code when it had none."""
    if details.error_code is not None:
        return f"error:{details.error_code}"
    return str(details.flag_metadata["contextId"])


def isolation_app(
    client: OpenFeatureClient,
    background_seen: dict[str, str],
    middleware: Sequence[Middleware] = (),
    in_flight: InFlight | None = None,
) -> Starlette:
    """Endpoints that evaluate in every place a request's context must reach: an async
    endpoint across an await, a sync endpoint (thread pool), a background task, a streaming
    body and a WebSocket session."""

    counter = in_flight or InFlight()

    async def evaluate() -> str:
        return seen(await client.get_string_details_async(CONVERSATION_FLAG, "none"))

    async def async_endpoint(request: Request) -> JSONResponse:
        with counter:
            first = await evaluate()
            await asyncio.sleep(0.001)
            second = await evaluate()

        async def in_background(sent: str) -> None:
            await asyncio.sleep(0.001)
            background_seen[sent] = await evaluate()

        sent = request.headers["x-conversation-id"]
        return JSONResponse(
            {"seen": [first, second]}, background=BackgroundTask(in_background, sent)
        )

    def sync_endpoint(request: Request) -> JSONResponse:
        details = client.get_string_details(CONVERSATION_FLAG, "none")
        return JSONResponse({"seen": [seen(details)]})

    async def streaming_endpoint(request: Request) -> StreamingResponse:
        async def body() -> AsyncIterator[str]:
            with counter:
                for _ in range(3):
                    await asyncio.sleep(0.001)
                    yield json.dumps(await evaluate()) + "\n"

        return StreamingResponse(body(), media_type="application/x-ndjson")

    async def websocket_endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        async for _ in websocket.iter_text():
            await asyncio.sleep(0.001)
            await websocket.send_text(await evaluate())

    async def units_endpoint(request: Request) -> JSONResponse:
        conversation = await client.get_string_details_async(CONVERSATION_FLAG, "none")
        user = await client.get_string_details_async(USER_FLAG, "none")
        return JSONResponse(
            {
                "units": dict(current_unit_ids()),
                "conversation": seen(conversation),
                "user": seen(user),
                "variants": {CONVERSATION_FLAG: conversation.variant, USER_FLAG: user.variant},
            }
        )

    routes: list[BaseRoute] = [
        Route("/async", async_endpoint),
        Route("/sync", sync_endpoint),
        Route("/stream", streaming_endpoint),
        Route("/units", units_endpoint),
        WebSocketRoute("/ws", websocket_endpoint),
    ]
    return Starlette(routes=routes, middleware=list(middleware))
