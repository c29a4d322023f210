"""FastAPI apps as users write them: authentication in ``Depends(get_current_user)`` (sync or
async), an ``APIRouter``, sync and async endpoints, a streaming body, a mounted sub-app. The
``bind_units`` dependency binds the user and account it resolved, merged with the IDs the
middleware bound; a middleware that reads users but never sees one says so once."""

# No ``from __future__ import annotations``: FastAPI reads the endpoints' annotations, some of
# them local names (``CurrentUser``), as FastAPI applications write them.
import asyncio
import hashlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated, Any

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI, Header, HTTPException, Request
from fastapi.responses import StreamingResponse
from featbit_experiments_starlette import UnitContextMiddleware, current_unit_ids
from featbit_experiments_starlette.fastapi import bind_units
from openfeature.client import OpenFeatureClient

from adapters.starlette.tests.apps import CONVERSATION_FLAG, EXPERIMENT_FLAGS, USER_FLAG, seen
from featbit_experiments import FeatBitProvider, Guardrail, InMemorySink


@dataclass
class User:
    id: str
    org: str


def user_from(authorization: str | None) -> User:
    scheme, _, token = (authorization or "").partition(" ")
    if scheme != "Bearer" or "@" not in token:
        raise HTTPException(status_code=401)
    name, _, org = token.partition("@")
    return User(name, org)


def current_user_sync(authorization: Annotated[str | None, Header()] = None) -> User:
    return user_from(authorization)


async def current_user_async(authorization: Annotated[str | None, Header()] = None) -> User:
    await asyncio.sleep(0)
    return user_from(authorization)


def chat_router(client: OpenFeatureClient, provider: FeatBitProvider, dependency: Any) -> Any:
    router = APIRouter()
    bound = bind_units(dependency, user=lambda u: u.id, account=lambda u: u.org, provider=provider)
    CurrentUser = Annotated[User, Depends(bound)]

    def answer(request: Request, user: User) -> dict[str, Any]:
        return {
            "name": user.id,
            "units": dict(current_unit_ids()),
            "state": dict(request.state.unit_ids),
            "user": seen(client.get_string_details(USER_FLAG, "none")),
            "conversation": seen(client.get_string_details(CONVERSATION_FLAG, "none")),
        }

    @router.get("/async")
    async def async_endpoint(request: Request, user: CurrentUser) -> dict[str, Any]:
        await asyncio.sleep(0)
        return answer(request, user)

    @router.get("/sync")
    def sync_endpoint(request: Request, user: CurrentUser) -> dict[str, Any]:
        return answer(request, user)

    @router.get("/stream")
    async def stream(user: CurrentUser) -> StreamingResponse:
        async def body() -> AsyncIterator[str]:
            for _ in range(2):
                await asyncio.sleep(0)
                yield seen(await client.get_string_details_async(USER_FLAG, "none")) + "\n"

        return StreamingResponse(body(), media_type="text/plain")

    return router


def fastapi_app(
    provider: FeatBitProvider, client: OpenFeatureClient, dependency: Any = current_user_sync
) -> FastAPI:
    app = FastAPI()
    app.include_router(chat_router(client, provider, dependency), prefix="/chat")
    sub = FastAPI()
    sub.include_router(chat_router(client, provider, dependency))
    app.mount("/sub", sub)
    app.add_middleware(UnitContextMiddleware, provider=provider)
    return app


async def get(app: Any, path: str, headers: dict[str, str]) -> httpx.Response:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t") as http:
        return await http.get(path, headers=headers)


ALICE = {"authorization": "Bearer alice@acme", "x-conversation-id": "c-1"}


@pytest.mark.parametrize("dependency", [current_user_sync, current_user_async])
@pytest.mark.parametrize("path", ["/chat/async", "/chat/sync", "/sub/async", "/sub/sync"])
async def test_the_user_a_depends_resolved_is_bound_and_merged_with_the_middlewares_ids(
    make_provider, of_client, dependency: Any, path: str
) -> None:
    provider = make_provider(EXPERIMENT_FLAGS)
    app = fastapi_app(provider, of_client(provider), dependency)

    response = await get(app, path, ALICE)

    assert response.status_code == 200, response.text
    body = response.json()
    expected = {"conversation": "c-1", "user": "alice", "account": "acme"}
    assert body["units"] == body["state"] == expected
    assert (body["user"], body["conversation"]) == ("user:alice", "conversation:c-1")


async def test_a_streaming_body_evaluates_with_the_bound_user(make_provider, of_client) -> None:
    provider = make_provider(EXPERIMENT_FLAGS)
    app = fastapi_app(provider, of_client(provider))

    response = await get(app, "/chat/stream", ALICE)

    assert response.text.splitlines() == ["user:alice", "user:alice"]


async def test_an_identity_the_id_rule_refuses_is_no_400_and_a_guardrail(
    make_provider, of_client, sink: InMemorySink
) -> None:
    provider = make_provider(EXPERIMENT_FLAGS)
    app = fastapi_app(provider, of_client(provider))

    response = await get(app, "/chat/async", {"authorization": "Bearer alice smith@acme"})

    assert response.status_code == 200
    assert response.json()["units"] == {"account": "acme"}
    assert response.json()["user"] == "error:TARGETING_KEY_MISSING"
    [guardrail] = sink.guardrails(Guardrail.INVALID_UNIT_ID.value)
    assert guardrail["source"] == "dependency current_user_sync"


async def test_to_id_maps_identities_to_valid_ids(make_provider, of_client) -> None:
    provider = make_provider(EXPERIMENT_FLAGS)
    client = of_client(provider)

    def digest(identity: str) -> str:
        return hashlib.sha256(identity.encode()).hexdigest()[:32]

    bound = bind_units(current_user_sync, user=lambda u: u.id, to_id=digest, provider=provider)
    app = FastAPI()

    @app.get("/")
    def endpoint(user: Annotated[User, Depends(bound)]) -> str:
        return seen(client.get_string_details(USER_FLAG, "none"))

    app.add_middleware(UnitContextMiddleware, provider=provider)

    response = await get(app, "/", {"authorization": "Bearer alice smith@acme"})

    assert response.json() == f"user:{digest('alice smith')}"


async def test_a_user_disagreeing_with_the_middlewares_is_left_out_with_a_conflict(
    make_provider, sink: InMemorySink
) -> None:
    provider = make_provider(EXPERIMENT_FLAGS)
    bound = bind_units(current_user_sync, user=lambda u: u.id, provider=provider)
    app = FastAPI()

    @app.get("/")
    def endpoint(user: Annotated[User, Depends(bound)]) -> dict[str, str]:
        return dict(current_unit_ids())

    app.add_middleware(UnitContextMiddleware, provider=provider, trust_client_ids={"user"})

    response = await get(app, "/", {"authorization": "Bearer alice@acme", "x-user-id": "bob"})

    assert response.json() == {}
    [conflict] = sink.guardrails(Guardrail.UNIT_CONFLICT.value)
    assert conflict["assignmentUnit"] == "user"


async def test_a_middleware_that_reads_users_but_never_sees_one_warns_once(
    make_provider, caplog: pytest.LogCaptureFixture
) -> None:
    provider = make_provider(EXPERIMENT_FLAGS)
    app = FastAPI()

    @app.get("/")
    def endpoint(user: Annotated[User, Depends(current_user_sync)]) -> str:
        return user.id

    app.add_middleware(UnitContextMiddleware, provider=provider)

    with caplog.at_level(logging.WARNING, logger="featbit_experiments"):
        for _ in range(3):
            await get(app, "/", {"authorization": "Bearer alice@acme"})

    warnings = [r.getMessage() for r in caplog.records if "scope['user']" in r.getMessage()]
    assert len(warnings) == 1
    assert "AuthenticationMiddleware" in warnings[0] and "bind_units" in warnings[0]


async def test_no_warning_when_a_dependency_binds_the_user(
    make_provider, of_client, caplog: pytest.LogCaptureFixture
) -> None:
    provider = make_provider(EXPERIMENT_FLAGS)
    app = fastapi_app(provider, of_client(provider))

    with caplog.at_level(logging.WARNING, logger="featbit_experiments"):
        await get(app, "/chat/async", ALICE)

    assert not [r for r in caplog.records if "scope['user']" in r.getMessage()]
