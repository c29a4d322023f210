"""One rule for every source of a unit: a value is used only when every source that has one
agrees and all are valid. An invalid value is never followed by another source's value, and
sources that disagree (a header, a query parameter, a cookie; a cookie sent twice) are a
conflict: rejected with a 400 naming the fields, or dropped with a guardrail."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from featbit_experiments_starlette import UnitContextMiddleware, cookie, header, query_param
from starlette.middleware import Middleware

from adapters.starlette.tests.apps import EXPERIMENT_FLAGS, isolation_app
from featbit_experiments import Guardrail, InMemorySink

THREE_SOURCES = {"conversation": (header("x-conversation-id"), query_param("cid"), cookie("cid"))}


async def get_units(
    make_provider: Any, of_client: Any, path: str, headers: dict[str, str], **options: Any
) -> httpx.Response:
    provider = make_provider(EXPERIMENT_FLAGS)
    middleware = Middleware(UnitContextMiddleware, provider=provider, **options)
    app = isolation_app(of_client(provider), {}, [middleware])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t") as http:
        return await http.get(path, headers=headers)


async def test_an_invalid_header_dropped_is_not_followed_by_the_cookies_id(
    make_provider, of_client, sink: InMemorySink
) -> None:
    response = await get_units(
        make_provider,
        of_client,
        "/units",
        {"x-conversation-id": "not valid", "cookie": "cid=c-cookie"},
        sources=THREE_SOURCES,
        on_invalid="drop",
    )

    assert response.status_code == 200
    assert response.json()["units"] == {}
    assert response.json()["conversation"] == "error:TARGETING_KEY_MISSING"
    [dropped] = sink.guardrails(Guardrail.INVALID_UNIT_ID.value)
    assert (dropped["source"], dropped["action"]) == ("header x-conversation-id", "dropped")


async def test_sources_that_disagree_are_a_400_naming_every_field(
    make_provider, of_client, sink: InMemorySink
) -> None:
    response = await get_units(
        make_provider,
        of_client,
        "/units?cid=c-query",
        {"x-conversation-id": "c-header", "cookie": "cid=c-cookie"},
        sources=THREE_SOURCES,
    )

    assert response.status_code == 400
    body = response.json()
    assert (body["error"], body["unit"]) == ("unit_conflict", "conversation")
    assert body["fields"] == [
        {"location": "header", "field": "x-conversation-id"},
        {"location": "query", "field": "cid"},
    ]
    assert "c-header" not in response.text and "c-query" not in response.text
    [conflict] = sink.guardrails(Guardrail.UNIT_CONFLICT.value)
    assert conflict["action"] == "rejected"


async def test_sources_that_disagree_are_dropped_with_a_guardrail_in_drop_mode(
    make_provider, of_client, sink: InMemorySink
) -> None:
    response = await get_units(
        make_provider,
        of_client,
        "/units",
        {"x-conversation-id": "c-header", "cookie": "cid=c-cookie"},
        sources=THREE_SOURCES,
        on_invalid="drop",
    )

    assert response.status_code == 200
    assert response.json()["units"] == {}
    [conflict] = sink.guardrails(Guardrail.UNIT_CONFLICT.value)
    assert conflict["source"] == "header x-conversation-id, cookie cid"
    assert conflict["action"] == "dropped"


async def test_sources_that_agree_give_their_id(make_provider, of_client) -> None:
    response = await get_units(
        make_provider,
        of_client,
        "/units?cid=c-same",
        {"x-conversation-id": "c-same"},
        sources=THREE_SOURCES,
    )

    assert response.status_code == 200
    assert response.json()["units"] == {"conversation": "c-same"}


@pytest.mark.parametrize(
    "cookies",
    [{"cookie": "cid=c-1; cid=c-2"}, [("cookie", "cid=c-1"), ("cookie", "cid=c-2")]],
    ids=["one-header", "two-headers"],
)
async def test_a_cookie_sent_twice_is_refused_like_a_header_sent_twice(
    make_provider, of_client, cookies: Any
) -> None:
    response = await get_units(
        make_provider, of_client, "/units", cookies, sources={"conversation": cookie("cid")}
    )

    assert response.status_code == 400
    assert (response.json()["location"], response.json()["field"]) == ("cookie", "cid")
    assert "more than once" in response.json()["detail"]
