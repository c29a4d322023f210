"""A problem with an ID the client did not send is never a 400 for the client: an authenticated
identity the ID rule refuses leaves the user out of evaluations with a guardrail naming the
source (and ``to_id=`` maps identities to valid IDs); a malformed client request ID is
replaced by a generated one."""

from __future__ import annotations

import hashlib
from typing import Any

import httpx
import pytest
from featbit_experiments_starlette import UnitContextMiddleware, authenticated_user
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware

from adapters.starlette.tests.apps import EXPERIMENT_FLAGS, BearerUsers, isolation_app
from featbit_experiments import Guardrail, InMemorySink


def to_id(identity: str) -> str:
    return hashlib.sha256(identity.encode()).hexdigest()


async def get(
    make_provider: Any, of_client: Any, path: str, headers: Any, **options: Any
) -> httpx.Response:
    provider = make_provider(EXPERIMENT_FLAGS)
    middleware = [
        Middleware(AuthenticationMiddleware, backend=BearerUsers()),
        Middleware(UnitContextMiddleware, provider=provider, **options),
    ]
    app = isolation_app(of_client(provider), {}, middleware)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t") as http:
        return await http.get(path, headers=headers)


@pytest.mark.parametrize("identity", ["josé", "alice smith"])
async def test_an_identity_the_id_rule_refuses_is_no_400_but_a_missing_user_and_a_guardrail(
    make_provider, of_client, sink: InMemorySink, identity: str
) -> None:
    response = await get(
        make_provider,
        of_client,
        "/units",
        [(b"authorization", f"Bearer {identity}@acme".encode())],
    )

    assert response.status_code == 200
    assert "user" not in response.json()["units"]
    assert response.json()["user"] == "error:TARGETING_KEY_MISSING"
    [guardrail] = sink.guardrails(Guardrail.INVALID_UNIT_ID.value)
    assert (guardrail["source"], guardrail["action"]) == ("auth user.identity", "dropped")
    assert identity not in str(guardrail)


async def test_a_mapping_hook_turns_identities_into_valid_ids(
    make_provider, of_client, sink: InMemorySink
) -> None:
    response = await get(
        make_provider,
        of_client,
        "/units",
        {"authorization": "Bearer alice smith@acme"},
        sources={"user": authenticated_user(to_id=to_id)},
    )

    assert response.status_code == 200
    assert response.json()["units"]["user"] == to_id("alice smith")
    assert response.json()["user"] == f"user:{to_id('alice smith')}"
    assert sink.guardrails(Guardrail.INVALID_UNIT_ID.value) == []


async def test_a_malformed_client_request_id_is_replaced_by_a_generated_one(
    make_provider, of_client, sink: InMemorySink
) -> None:
    response = await get(make_provider, of_client, "/units", {"x-request-id": "bad id!"})

    assert response.status_code == 200
    generated = response.json()["units"]["request"]
    assert generated != "bad id!" and len(generated) == 32
    [replaced] = sink.guardrails(Guardrail.INVALID_UNIT_ID.value)
    assert (replaced["assignmentUnit"], replaced["action"]) == ("request", "replaced")


async def test_authentication_and_a_trusted_header_that_disagree_leave_the_user_out(
    make_provider, of_client, sink: InMemorySink
) -> None:
    response = await get(
        make_provider,
        of_client,
        "/units",
        {"authorization": "Bearer alice@acme", "x-user-id": "bob"},
        trust_client_ids={"user"},
    )

    assert response.status_code == 200  # authentication is involved: not the client's to fix
    assert "user" not in response.json()["units"]
    [conflict] = sink.guardrails(Guardrail.UNIT_CONFLICT.value)
    assert conflict["source"] == "auth user.identity, header x-user-id"
