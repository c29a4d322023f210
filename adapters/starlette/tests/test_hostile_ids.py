"""Malformed, oversized and hostile unit IDs never reach FeatBit and never cause a 500: they are
rejected with a 400 naming the field, or dropped with a guardrail that does not repeat them."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from featbit_experiments_starlette import (
    UnitContextMiddleware,
    cookie,
    path_param,
    query_param,
)
from openfeature.client import OpenFeatureClient
from starlette.applications import Starlette
from starlette.middleware import Middleware
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from adapters.starlette.tests.apps import EXPERIMENT_FLAGS, isolation_app
from featbit_experiments import FeatBitProvider, InMemorySink
from tests.support.featbit_server import FeatBitTestServer

#: Values every unit rejects: control characters, whitespace, oversized, non-ASCII, and
#: strings shaped like injections. Bytes, as they travel in a header.
HOSTILE: dict[str, bytes] = {
    "nul": b"c\x00-1",
    "escape-sequence": b"\x1b[31mred",
    "tab": b"c\t1",
    "space": b"conv 1",
    "blank": b"   ",
    "oversized": b"c" * 129,
    "huge": b"c" * 8_000,
    "non-ascii": "caf\u00e9-\u4f1a\u8bdd".encode(),
    "sql": b"' OR 1=1 --",
    "html": b"<script>alert(1)</script>",
    "jndi": b"${jndi:ldap://127.0.0.1/x}",
    "json": b'{"keyId":"victim"}',
    "percent": b"%00victim",
    "leading-dot": b"../../etc/passwd",
}


def leaked(value: bytes, record: Any) -> bool:
    """Whether the value (as the middleware decoded it) shows up in a JSON-ready record."""
    probe = value.decode("latin-1").strip()
    return bool(probe) and probe in json.dumps(record, ensure_ascii=False)


def app_for(client: OpenFeatureClient, provider: FeatBitProvider, **options: Any) -> Starlette:
    return isolation_app(
        client, {}, [Middleware(UnitContextMiddleware, provider=provider, **options)]
    )


@pytest.mark.parametrize("value", HOSTILE.values(), ids=HOSTILE.keys())
async def test_a_hostile_conversation_header_is_rejected_with_400_naming_the_field(
    make_provider, of_client, value: bytes
) -> None:
    provider = make_provider(EXPERIMENT_FLAGS)
    app = app_for(of_client(provider), provider)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app), base_url="http://test"
    ) as http:
        response = await http.get("/units", headers=[(b"x-conversation-id", value)])

    assert response.status_code == 400
    body = response.json()
    assert (body["error"], body["unit"], body["location"], body["field"]) == (
        "invalid_unit_id",
        "conversation",
        "header",
        "x-conversation-id",
    )
    assert not leaked(value, body)


@pytest.mark.parametrize("value", HOSTILE.values(), ids=HOSTILE.keys())
async def test_a_dropped_hostile_id_leaves_the_request_without_it_and_a_guardrail_without_it(
    make_provider, of_client, sink: InMemorySink, value: bytes
) -> None:
    provider = make_provider(EXPERIMENT_FLAGS)
    app = app_for(of_client(provider), provider, on_invalid="drop")
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app), base_url="http://test"
    ) as http:
        response = await http.get("/units", headers=[(b"x-conversation-id", value)])

    assert response.status_code == 200
    assert response.json()["units"] == {}
    assert response.json()["conversation"] == "error:TARGETING_KEY_MISSING"
    guardrails = [g for g in sink.guardrails("invalid_unit_id") if g.get("action") == "dropped"]
    assert [(g["assignmentUnit"], g["source"]) for g in guardrails] == [
        ("conversation", "header x-conversation-id")
    ]
    assert not leaked(value, guardrails)


@pytest.mark.parametrize(
    ("source", "path", "headers", "field"),
    [
        (query_param("conversation"), "/units?conversation=%00evil", {}, "conversation"),
        (cookie("conversation"), "/units", {"cookie": "conversation=a b"}, "conversation"),
        (path_param("cid", "/units/{cid}"), "/units/%3Cscript%3E", {}, "cid"),
    ],
    ids=["query", "cookie", "path"],
)
async def test_invalid_ids_from_query_cookie_and_path_are_rejected_naming_the_field(
    make_provider, of_client, source: Any, path: str, headers: dict[str, str], field: str
) -> None:
    provider = make_provider(EXPERIMENT_FLAGS)
    app = app_for(of_client(provider), provider, sources={"conversation": source})
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app), base_url="http://test"
    ) as http:
        response = await http.get(path, headers=headers)

    assert response.status_code == 400
    assert (response.json()["location"], response.json()["field"]) == (source.location, field)


async def test_a_websocket_with_an_invalid_id_is_denied_with_a_400_body(
    make_provider, of_client, serve
) -> None:
    provider = make_provider(EXPERIMENT_FLAGS)
    address = serve(app_for(of_client(provider), provider))

    with pytest.raises(InvalidStatus) as denied:
        async with connect(
            f"ws://{address}/ws", additional_headers={"x-conversation-id": "a b"}
        ):
            pass

    assert denied.value.response.status_code == 400
    assert json.loads(denied.value.response.body)["field"] == "x-conversation-id"


async def raw_get(address: str, path: str, headers: list[tuple[bytes, bytes]]) -> int:
    """One HTTP/1.1 request written byte for byte (httpx refuses to send some of these)."""
    host, port = address.split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    head = [f"GET {path} HTTP/1.1".encode(), f"Host: {address}".encode(), b"Connection: close"]
    head += [name + b": " + value for name, value in headers]
    writer.write(b"\r\n".join(head) + b"\r\n\r\n")
    await writer.drain()
    response = await reader.read()
    writer.close()
    await writer.wait_closed()
    return int(response.split(b" ", 2)[1])


@pytest.mark.parametrize("on_invalid", ["reject", "drop"])
async def test_hostile_ids_through_uvicorn_never_raise_500_and_never_reach_featbit(
    of_client, serve, sink: InMemorySink, on_invalid: str
) -> None:
    with FeatBitTestServer() as featbit:
        featbit.set_flags(EXPERIMENT_FLAGS)
        provider = FeatBitProvider.connect(
            featbit.env_secret,
            featbit.streaming_url,
            featbit.event_url,
            sinks=[sink],
            events_flush_interval=0.2,
        )
        try:
            address = serve(app_for(of_client(provider), provider, on_invalid=on_invalid))
            valid = [f"conv-ok-{i}" for i in range(5)]
            sent = [*HOSTILE.values(), *(v.encode() for v in valid)]
            statuses = await asyncio.gather(
                *(raw_get(address, "/units", [(b"x-conversation-id", v)]) for v in sent)
            )
            assert 500 not in statuses
            assert statuses[len(HOSTILE) :] == [200] * len(valid)
            assert featbit.wait_for(lambda: len(featbit.flag_events()) >= len(valid))
            provider.client.flush()
        finally:
            provider.shutdown()
        sent_to_featbit = featbit.insights

    assert {event.user_key for event in featbit.flag_events()} == set(valid)
    assert [name for name, value in HOSTILE.items() if leaked(value, sent_to_featbit)] == []
