"""The response to a request refused for its unit IDs: a JSON 400 naming the fields, or the
application's own (``rejection=``), sent as an HTTP response or a WebSocket denial.

Only what the client sent is ever refused (see ``validation.InvalidId.client_side``). A
rejection builder that fails falls back to the default response and is logged: a refusal
never turns into a 500.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket

from .invalid_id import InvalidId

logger = logging.getLogger("featbit_experiments")

#: Builds the response for a rejected request from its problems.
Rejection = Callable[[Sequence[InvalidId]], Response]

#: WebSocket close code for a policy violation, used when the server cannot send a 400.
_WS_POLICY_VIOLATION = 1008


def default_rejection(problems: Sequence[InvalidId]) -> Response:
    """``400 {"error": "invalid_unit_id" | "unit_conflict", "unit", "location", "field",
    "fields", "detail"}`` for the first problem (every field at fault listed in ``fields``)."""
    body = problems[0].as_json()
    body["fields"] = [field for problem in problems for field in problem.as_json()["fields"]]
    return JSONResponse(body, status_code=400)


async def refuse(
    problems: Sequence[InvalidId],
    rejection: Rejection | None,
    scope: Scope,
    receive: Receive,
    send: Send,
) -> None:
    response = _response(problems, rejection)
    if scope["type"] == "http":
        await response(scope, receive, send)
        return
    if "websocket.http.response" in scope.get("extensions", {}):
        await WebSocket(scope, receive, send).send_denial_response(response)
    else:
        await send({"type": "websocket.close", "code": _WS_POLICY_VIOLATION})


def _response(problems: Sequence[InvalidId], rejection: Rejection | None) -> Response:
    if rejection is not None:
        try:
            return rejection(problems)
        except Exception:
            logger.exception("the rejection= builder failed; sending the default 400")
    return default_rejection(problems)
