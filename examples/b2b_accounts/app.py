"""The B2B assistant's HTTP API: bearer-token authentication that knows each user's tenant,
and ``UnitContextMiddleware``, which takes the account ID from the authenticated user.

- ``POST /ask`` ``{"question"}``: ``{"answer", "route"}``.
- ``POST /feedback`` ``{"accepted": bool}``: records ``answer_accepted`` for the account.

No request carries an account ID: it comes from authentication only (a client cannot choose
its tenant's route), so every user of a tenant is bucketed on the same key.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from featbit_experiments_langchain import AsyncExperimentCallbackHandler, TurnOutcomes
from featbit_experiments_starlette import (
    UnitContextMiddleware,
    current_unit_ids,
    use_contextvars_propagator,
)
from langchain_core.runnables import Runnable
from openfeature.client import OpenFeatureClient
from openfeature.track import TrackingEventDetails
from opentelemetry.trace import TracerProvider
from starlette.applications import Starlette
from starlette.authentication import requires
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from featbit_experiments import FeatBitProvider

from .._auth import BearerTokens, Member
from .assistant import route_of

__all__ = ["ACCEPTED", "LATENCY", "build_app"]

ACCEPTED = "answer_accepted"
LATENCY = "answer_latency_ms"


def build_app(
    *,
    assistant: Runnable[dict[str, Any], str],
    client: OpenFeatureClient,
    provider: FeatBitProvider,
    members: Mapping[str, Member],
    tracer_provider: TracerProvider | None = None,
) -> Starlette:
    """The app; ``members`` are the signed-in users (each of one tenant) by bearer token."""
    use_contextvars_propagator()
    handler = AsyncExperimentCallbackHandler(
        tracer_provider=tracer_provider,
        outcomes=TurnOutcomes(
            client, latency=LATENCY, input_tokens=None, output_tokens=None, error=None
        ),
    )

    @requires("authenticated")
    async def ask(request: Request) -> Response:
        body = await _json_object(request)
        question = body.get("question") if body is not None else None
        if not isinstance(question, str) or not question.strip():
            return JSONResponse({"error": "'question' must be a non-empty string"}, 400)
        ids = {f"{unit}_id": value for unit, value in current_unit_ids().items()}
        answer = await assistant.ainvoke(
            {"question": question}, {"callbacks": [handler], "metadata": ids}
        )
        return JSONResponse({"answer": answer, "route": route_of(answer)})

    @requires("authenticated")
    async def feedback(request: Request) -> Response:
        body = await _json_object(request)
        accepted = body.get("accepted") if body is not None else None
        if not isinstance(accepted, bool):
            return JSONResponse({"error": "'accepted' must be true or false"}, 400)
        client.track(ACCEPTED, tracking_event_details=TrackingEventDetails(value=float(accepted)))
        return Response(status_code=204)

    return Starlette(
        routes=[
            Route("/ask", ask, methods=["POST"]),
            Route("/feedback", feedback, methods=["POST"]),
        ],
        middleware=[
            Middleware(AuthenticationMiddleware, backend=BearerTokens(members)),
            Middleware(UnitContextMiddleware, provider=provider, tracer_provider=tracer_provider),
        ],
    )


async def _json_object(request: Request) -> dict[str, Any] | None:
    try:
        body = await request.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None
