"""User and account IDs come from authentication: a client cannot pick its own variant, or read
someone else's assignment, by sending another person's ID in a header unless the application
switched that header on (for a gateway that authenticates and forwards the ID). Requests go
through uvicorn on loopback."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from featbit_experiments_starlette import UnitContextMiddleware, header
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware

from adapters.starlette.tests.apps import EXPERIMENT_FLAGS, BearerUsers, isolation_app
from featbit_experiments import ConfigurationError


async def get_units(
    make_provider: Any, of_client: Any, serve: Any, headers: dict[str, str], **options: Any
) -> dict[str, Any]:
    provider = make_provider(EXPERIMENT_FLAGS)
    middleware = [
        Middleware(AuthenticationMiddleware, backend=BearerUsers()),
        Middleware(UnitContextMiddleware, provider=provider, **options),
    ]
    address = serve(isolation_app(of_client(provider), {}, middleware))
    async with httpx.AsyncClient(base_url=f"http://{address}") as http:
        response = await http.get("/units", headers=headers)
    assert response.status_code == 200
    result: dict[str, Any] = response.json()
    return result


async def test_a_user_id_header_is_ignored_by_default(make_provider, of_client, serve) -> None:
    seen = await get_units(make_provider, of_client, serve, {"x-user-id": "victim"})

    assert seen["units"] == {}
    assert seen["user"] == "error:TARGETING_KEY_MISSING"


async def test_an_account_id_header_is_ignored_by_default(make_provider, of_client, serve) -> None:
    seen = await get_units(make_provider, of_client, serve, {"x-account-id": "victim-corp"})

    assert seen["units"] == {}


async def test_the_authenticated_user_and_tenant_are_the_user_and_account(
    make_provider, of_client, serve
) -> None:
    seen = await get_units(
        make_provider,
        of_client,
        serve,
        {"authorization": "Bearer alice@acme", "x-user-id": "victim", "x-account-id": "evil"},
    )

    assert seen["units"] == {"user": "alice", "account": "acme"}
    assert seen["user"] == "user:alice"


async def test_the_user_id_header_is_read_once_switched_on(make_provider, of_client, serve) -> None:
    seen = await get_units(
        make_provider, of_client, serve, {"x-user-id": "bob"}, trust_client_ids={"user"}
    )

    assert seen["units"] == {"user": "bob"}
    assert seen["user"] == "user:bob"


def test_a_client_controlled_user_source_without_trust_is_a_configuration_error() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        raise AssertionError("never called")

    with pytest.raises(ConfigurationError, match="trust_client_ids"):
        UnitContextMiddleware(app, sources={"user": header("x-forwarded-user")})
