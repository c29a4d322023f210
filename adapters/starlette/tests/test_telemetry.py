"""The request's span carries its unit IDs and every experiment evaluated inside it: the
server span of whichever OpenTelemetry middleware runs outside ours, or a span of our own when
there is none. With tracing off no span is started."""

from __future__ import annotations

import math
import time
from typing import Any

import httpx
from featbit_experiments_starlette import RequestTelemetry, UnitContextMiddleware
from opentelemetry import trace
from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware as AsgiInstrumentation
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.middleware.opentelemetry import OpenTelemetryMiddleware as StarletteTelemetry
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import ASGIApp
from websockets.asyncio.client import connect

from adapters.starlette.tests.apps import EXPERIMENT_FLAGS, BearerUsers, isolation_app
from featbit_experiments import Privacy
from featbit_experiments import telemetry_names as names
from featbit_experiments.units import UnitCatalog

ALICE = {"authorization": "Bearer alice@acme", "x-conversation-id": "c-1"}


def stack(provider: Any, client: Any, *outer: Middleware, **options: Any) -> Starlette:
    """The test app with ``outer`` middleware outside authentication and ours."""
    return isolation_app(
        client,
        {},
        [
            *outer,
            Middleware(AuthenticationMiddleware, backend=BearerUsers()),
            Middleware(UnitContextMiddleware, provider=provider, **options),
        ],
    )


async def get(app: ASGIApp, path: str, headers: dict[str, str]) -> httpx.Response:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t") as http:
        response = await http.get(path, headers=headers)
    assert response.status_code == 200
    return response


def wait_until(predicate: Any, timeout: float = 5.0) -> bool:
    """Poll for what the server thread finishes (a WebSocket span ends after the client)."""
    deadline = time.monotonic() + timeout
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.01)
    return bool(predicate())


def server_spans(spans: InMemorySpanExporter) -> list[ReadableSpan]:
    return [span for span in spans.get_finished_spans() if span.kind is SpanKind.SERVER]


def ours(spans: InMemorySpanExporter) -> list[ReadableSpan]:
    return [
        span
        for span in spans.get_finished_spans()
        if span.instrumentation_scope is not None
        and span.instrumentation_scope.name == "featbit_experiments_starlette"
    ]


async def test_the_asgi_instrumentation_server_span_gets_unit_ids_and_experiments(
    make_provider, of_client, tracer_provider: TracerProvider, spans: InMemorySpanExporter
) -> None:
    provider = make_provider(EXPERIMENT_FLAGS)
    app = AsgiInstrumentation(stack(provider, of_client(provider)), tracer_provider=tracer_provider)

    response = await get(app, "/units", ALICE)

    [span] = server_spans(spans)
    attributes = dict(span.attributes or {})
    assert attributes[names.UNIT_ID_PREFIX + "conversation"] == "c-1"
    assert attributes[names.GEN_AI_CONVERSATION_ID] == "c-1"
    assert attributes[names.UNIT_ID_PREFIX + "user"] == "alice"
    assert attributes[names.USER_ID] == "alice"
    assert attributes[names.UNIT_ID_PREFIX + "account"] == "acme"
    assert list(attributes[names.EXPERIMENT_KEYS]) == ["prompt-style", "tone"]
    assert list(attributes[names.EXPERIMENT_UNITS]) == ["conversation", "user"]
    assert list(attributes[names.EXPERIMENT_VARIANTS]) == [
        response.json()["variants"]["prompt-style"],
        response.json()["variants"]["tone"],
    ]
    assert ours(spans) == []


async def test_starlettes_own_opentelemetry_middleware_span_is_annotated(
    make_provider, of_client, tracer_provider: TracerProvider, spans: InMemorySpanExporter
) -> None:
    provider = make_provider(EXPERIMENT_FLAGS)
    outer = Middleware(StarletteTelemetry, tracer_provider=tracer_provider)
    app = stack(provider, of_client(provider), outer)

    await get(app, "/units", ALICE)

    [span] = server_spans(spans)
    assert span.name == "GET /units"
    assert (span.attributes or {})[names.UNIT_ID_PREFIX + "conversation"] == "c-1"
    assert list((span.attributes or {})[names.EXPERIMENT_KEYS]) == ["prompt-style", "tone"]
    assert ours(spans) == []


async def test_experiments_evaluated_in_a_streaming_body_are_on_the_span(
    make_provider, of_client, tracer_provider: TracerProvider, spans: InMemorySpanExporter
) -> None:
    provider = make_provider(EXPERIMENT_FLAGS)
    app = AsgiInstrumentation(stack(provider, of_client(provider)), tracer_provider=tracer_provider)

    await get(app, "/stream", {"x-conversation-id": "c-2"})

    [span] = server_spans(spans)
    assert list((span.attributes or {})[names.EXPERIMENT_KEYS]) == ["prompt-style"]


async def test_a_websocket_session_span_gets_the_experiments_of_its_messages(
    make_provider, of_client, serve, tracer_provider: TracerProvider, spans: InMemorySpanExporter
) -> None:
    provider = make_provider(EXPERIMENT_FLAGS)
    app = AsgiInstrumentation(stack(provider, of_client(provider)), tracer_provider=tracer_provider)
    address = serve(app)

    async with connect(
        f"ws://{address}/ws", additional_headers={"x-conversation-id": "c-ws"}
    ) as websocket:
        await websocket.send("hello")
        await websocket.recv()

    def session_span() -> ReadableSpan | None:
        found = server_spans(spans)
        return found[0] if found else None

    assert wait_until(session_span)
    span = session_span()
    assert span is not None
    assert (span.attributes or {})[names.UNIT_ID_PREFIX + "conversation"] == "c-ws"
    assert list((span.attributes or {})[names.EXPERIMENT_KEYS]) == ["prompt-style"]


async def test_without_a_server_span_the_middleware_starts_its_own(
    make_provider, of_client, tracer_provider: TracerProvider, spans: InMemorySpanExporter
) -> None:
    provider = make_provider(EXPERIMENT_FLAGS)
    app = stack(provider, of_client(provider), tracer_provider=tracer_provider)

    await get(app, "/units", ALICE)

    [span] = ours(spans)
    assert (span.name, span.kind) == ("GET /units", SpanKind.SERVER)
    assert (span.attributes or {})[names.UNIT_ID_PREFIX + "user"] == "alice"
    assert list((span.attributes or {})[names.EXPERIMENT_KEYS]) == ["prompt-style", "tone"]


async def test_hashed_privacy_keeps_raw_ids_off_the_span(
    make_provider, of_client, tracer_provider: TracerProvider, spans: InMemorySpanExporter
) -> None:
    provider = make_provider(EXPERIMENT_FLAGS)
    privacy = Privacy.hashed("a-key-of-sixteen-bytes")
    app = stack(provider, of_client(provider), tracer_provider=tracer_provider, privacy=privacy)

    await get(app, "/units", ALICE)

    [span] = ours(spans)
    attributes = dict(span.attributes or {})
    assert attributes[names.UNIT_ID_PREFIX + "user"] == privacy.protect("alice")
    assert attributes[names.GEN_AI_CONVERSATION_ID] == privacy.protect("c-1")
    assert not {"alice", "acme", "c-1"} & {str(value) for value in attributes.values()}


async def test_with_tracing_off_no_span_is_started(make_provider, of_client) -> None:
    # No tracer provider given, and the global one is OpenTelemetry's default no-op proxy.
    provider = make_provider(EXPERIMENT_FLAGS)
    client = of_client(provider)

    async def current_span(request: Request) -> JSONResponse:
        await client.get_string_details_async("prompt-style", "none")
        return JSONResponse({"recording": trace.get_current_span().is_recording()})

    app = Starlette(
        routes=[Route("/", current_span)],
        middleware=[Middleware(UnitContextMiddleware, provider=provider)],
    )
    response = await get(app, "/", {"x-conversation-id": "c-1"})

    assert response.json() == {"recording": False}


def test_tracing_is_off_for_good_with_a_no_op_provider_given_and_never_with_an_sdk_one(
    tracer_provider: TracerProvider,
) -> None:
    units = UnitCatalog()

    assert RequestTelemetry(units, tracer_provider=trace.NoOpTracerProvider()).off_until() == (
        math.inf
    )
    assert RequestTelemetry(units, tracer_provider=tracer_provider).off_until() == 0.0


def test_with_the_global_no_op_provider_tracing_is_off_until_the_next_look() -> None:
    telemetry = RequestTelemetry(UnitCatalog())
    before = time.monotonic()

    assert telemetry.tracer() is None
    assert before < telemetry.off_until() <= time.monotonic() + 1.0
