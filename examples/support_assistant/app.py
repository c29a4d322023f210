"""The support assistant's HTTP API: a Starlette app behind bearer-token authentication and
``UnitContextMiddleware``.

- ``POST /conversations/{id}/turns`` ``{"message", "turn"}``: one turn; ``{"reply", "handoff"}``.
- ``POST /conversations/{id}/turns/stream``: the same turn streamed as NDJSON
  (``{"delta": ...}`` lines, then ``{"done": true, "handoff": ...}``).
- ``POST /conversations/{id}/close`` ``{"resolved": bool}``: the customer's verdict.

The conversation ID is the ``X-Conversation-Id`` header (the middleware's default source; the
path must name the same conversation) and the user ID comes from authentication. Outcomes are
recorded where they happen, through OpenFeature's ``track()`` with no explicit context: the
middleware bound the request's unit IDs, so the provider keys each outcome by the
conversation. ``human_handoff`` when the assistant hands over, ``resolved_without_escalation``
(1 or 0) when the customer closes, ``turn_latency_ms`` for every turn by the LangChain handler.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from contextlib import aclosing
from typing import Any, cast

from featbit_experiments_langchain import AsyncExperimentCallbackHandler, TurnOutcomes
from featbit_experiments_starlette import (
    UnitContextMiddleware,
    current_unit_ids,
    use_contextvars_propagator,
)
from langchain_core.runnables import Runnable, RunnableConfig
from openfeature.client import OpenFeatureClient
from openfeature.track import TrackingEventDetails
from opentelemetry.trace import TracerProvider
from starlette.applications import Starlette
from starlette.authentication import requires
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from featbit_experiments import FeatBitProvider

from .._auth import BearerTokens, Member
from .assistant import is_handoff

__all__ = ["HANDOFF", "LATENCY", "RESOLVED", "build_app"]

RESOLVED = "resolved_without_escalation"
HANDOFF = "human_handoff"
LATENCY = "turn_latency_ms"


class _BadTurn(ValueError):
    """A request body the endpoint cannot use (answered with 400)."""


def build_app(
    *,
    assistant: Runnable[dict[str, Any], str],
    client: OpenFeatureClient,
    provider: FeatBitProvider,
    members: Mapping[str, Member],
    tracer_provider: TracerProvider | None = None,
) -> Starlette:
    """The app; ``members`` are the signed-in customers by bearer token."""
    use_contextvars_propagator()
    handler = AsyncExperimentCallbackHandler(
        tracer_provider=tracer_provider,
        outcomes=TurnOutcomes(
            client, latency=LATENCY, input_tokens=None, output_tokens=None, error=None
        ),
    )

    def run_config() -> RunnableConfig:
        # The router and the handler read the turn's unit IDs from the run's metadata.
        ids = {f"{unit}_id": value for unit, value in current_unit_ids().items()}
        return {"callbacks": [handler], "metadata": ids}

    @requires("authenticated")
    async def turn(request: Request) -> Response:
        try:
            inputs = await _turn_inputs(request)
        except _BadTurn as error:
            return JSONResponse({"error": str(error)}, status_code=400)
        reply = await assistant.ainvoke(inputs, run_config())
        handoff = is_handoff(reply)
        if handoff:
            client.track(HANDOFF)
        return JSONResponse({"reply": reply, "handoff": handoff})

    @requires("authenticated")
    async def turn_stream(request: Request) -> Response:
        try:
            inputs = await _turn_inputs(request)
        except _BadTurn as error:
            return JSONResponse({"error": str(error)}, status_code=400)
        config = run_config()

        async def lines() -> AsyncIterator[str]:
            parts: list[str] = []
            # Runnable.astream is an async generator (typed as an iterator): closing it at
            # once ends the turn when the client goes away mid-stream.
            stream = cast("AsyncGenerator[str, None]", assistant.astream(inputs, config))
            async with aclosing(stream) as chunks:
                async for chunk in chunks:
                    parts.append(chunk)
                    yield json.dumps({"delta": chunk}) + "\n"
            handoff = is_handoff("".join(parts))
            if handoff:
                client.track(HANDOFF)
            yield json.dumps({"done": True, "handoff": handoff}) + "\n"

        return StreamingResponse(lines(), media_type="application/x-ndjson")

    @requires("authenticated")
    async def close(request: Request) -> Response:
        try:
            _conversation_of(request)
            body = await _json_object(request)
        except _BadTurn as error:
            return JSONResponse({"error": str(error)}, status_code=400)
        resolved = body.get("resolved")
        if not isinstance(resolved, bool):
            return JSONResponse({"error": "'resolved' must be true or false"}, status_code=400)
        client.track(RESOLVED, tracking_event_details=TrackingEventDetails(value=float(resolved)))
        return Response(status_code=204)

    return Starlette(
        routes=[
            Route("/conversations/{conversation_id}/turns", turn, methods=["POST"]),
            Route("/conversations/{conversation_id}/turns/stream", turn_stream, methods=["POST"]),
            Route("/conversations/{conversation_id}/close", close, methods=["POST"]),
        ],
        middleware=[
            # Outermost first: authentication sets scope["user"] before the unit middleware
            # reads the user ID from it.
            Middleware(AuthenticationMiddleware, backend=BearerTokens(members)),
            Middleware(UnitContextMiddleware, provider=provider, tracer_provider=tracer_provider),
        ],
    )


def _conversation_of(request: Request) -> str:
    """The conversation of the request: the bound ``X-Conversation-Id``, which the path must
    name too (an ID in two places that disagree is refused, never picked from)."""
    bound = current_unit_ids().get("conversation")
    if bound is None:
        raise _BadTurn("send the conversation ID in the X-Conversation-Id header")
    if bound != request.path_params["conversation_id"]:
        raise _BadTurn("X-Conversation-Id and the path name different conversations")
    return bound


async def _turn_inputs(request: Request) -> dict[str, Any]:
    conversation = _conversation_of(request)
    body = await _json_object(request)
    message, turn = body.get("message"), body.get("turn", 1)
    if not isinstance(message, str) or not message.strip():
        raise _BadTurn("'message' must be a non-empty string")
    if not isinstance(turn, int) or isinstance(turn, bool) or turn < 1:
        raise _BadTurn("'turn' must be a positive integer")
    return {"conversation_id": conversation, "turn": turn, "message": message}


async def _json_object(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise _BadTurn("the body must be JSON") from None
    if not isinstance(body, dict):
        raise _BadTurn("the body must be a JSON object")
    return body
