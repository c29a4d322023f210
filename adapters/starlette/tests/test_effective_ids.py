"""What the application sees is what evaluations use: the effective IDs are in
``request.state.unit_ids`` and in the request headers the application reads (a dropped value
is gone from them, a generated one is there); a response header the application sets itself is
left alone; the rejection response is the application's to shape."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import httpx
from featbit_experiments_starlette import InvalidId, UnitContextMiddleware, current_unit_ids
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from adapters.starlette.tests.apps import CONVERSATION_FLAG, EXPERIMENT_FLAGS, seen


def app_for(provider: Any, client: Any, **options: Any) -> Starlette:
    async def look(request: Request) -> JSONResponse:
        details = await client.get_string_details_async(CONVERSATION_FLAG, "none")
        return JSONResponse(
            {
                "header": request.headers.get("x-conversation-id"),
                "request_header": request.headers.get("x-request-id"),
                "state": dict(request.state.unit_ids),
                "bound": dict(current_unit_ids()),
                "seen": seen(details),
            }
        )

    async def own_header(request: Request) -> JSONResponse:
        return JSONResponse({}, headers={"X-Conversation-Id": "set-by-the-app"})

    return Starlette(
        routes=[Route("/look", look), Route("/own-header", own_header)],
        middleware=[Middleware(UnitContextMiddleware, provider=provider, **options)],
    )


async def get(app: Starlette, path: str, headers: dict[str, str]) -> httpx.Response:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t") as http:
        return await http.get(path, headers=headers)


async def test_a_dropped_value_is_gone_from_the_request_headers_the_app_reads(
    make_provider, of_client
) -> None:
    provider = make_provider(EXPERIMENT_FLAGS)
    app = app_for(provider, of_client(provider), on_invalid="drop")

    body = (await get(app, "/look", {"x-conversation-id": "<script>alert(1)</script>"})).json()

    assert body["header"] is None
    assert body["state"] == body["bound"] == {}


async def test_a_generated_conversation_id_is_in_the_request_headers_and_state(
    make_provider, of_client
) -> None:
    provider = make_provider(EXPERIMENT_FLAGS)
    app = app_for(
        provider, of_client(provider), generate_conversation_id=lambda: uuid.uuid4().hex
    )

    response = await get(app, "/look", {})

    body = response.json()
    generated = response.headers["x-conversation-id"]
    assert body["header"] == generated
    assert body["state"] == {"conversation": generated}
    assert body["seen"] == f"conversation:{generated}"


async def test_a_replaced_request_id_is_in_the_request_headers(make_provider, of_client) -> None:
    provider = make_provider(EXPERIMENT_FLAGS)
    app = app_for(provider, of_client(provider))

    body = (await get(app, "/look", {"x-request-id": "two words"})).json()

    assert body["request_header"] == body["state"]["request"] != "two words"


async def test_a_response_header_the_app_sets_is_left_alone(make_provider, of_client) -> None:
    provider = make_provider(EXPERIMENT_FLAGS)
    app = app_for(provider, of_client(provider), generate_conversation_id=lambda: "gen-1")

    response = await get(app, "/own-header", {})

    assert response.headers.get_list("x-conversation-id") == ["set-by-the-app"]


async def test_the_rejection_response_can_be_the_applications_own(
    make_provider, of_client
) -> None:
    def problem_details(problems: Sequence[InvalidId]) -> Response:
        detail = [{"loc": [p.source.location, p.source.name], "msg": p.problem} for p in problems]
        return JSONResponse({"detail": detail}, status_code=422)

    provider = make_provider(EXPERIMENT_FLAGS)
    app = app_for(provider, of_client(provider), rejection=problem_details)

    response = await get(app, "/look", {"x-conversation-id": "a b"})

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["header", "x-conversation-id"]


async def test_a_failing_rejection_builder_still_gets_the_client_a_400(
    make_provider, of_client
) -> None:
    def broken(problems: Sequence[InvalidId]) -> Response:
        raise RuntimeError("bug in the app's error shape")

    provider = make_provider(EXPERIMENT_FLAGS)
    app = app_for(provider, of_client(provider), rejection=broken)

    response = await get(app, "/look", {"x-conversation-id": "a b"})

    assert response.status_code == 400
    assert response.json()["field"] == "x-conversation-id"
