"""Making a request's effective unit IDs visible to the application that runs below the
middleware: ``request.state.unit_ids`` and the request headers it reads.

When the middleware changed what the client sent (dropped a hostile value, replaced an
invalid request ID, generated a conversation ID, left out IDs that conflicted) the request
the application sees must say so: its headers carry the effective ID, or none, never the
value the middleware refused. Nothing here runs when the middleware kept what was sent.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from starlette.types import Message, Scope, Send

#: ``request.state`` attribute holding the unit IDs in force (after any FastAPI dependency
#: bound more): ``request.state.unit_ids["conversation"]``.
STATE_KEY = "unit_ids"


def publish(scope: Scope, unit_ids: Mapping[str, str]) -> None:
    """Put ``unit_ids`` in the request's state (``scope["state"]``, shared with every
    ``Request`` built below, mounted apps included)."""
    state = scope.get("state")
    if state is None:
        scope["state"] = state = {}
    state[STATE_KEY] = unit_ids


def published(scope: Scope) -> Mapping[str, str] | None:
    """The unit IDs in the request's state now (a dependency may have bound more)."""
    state = scope.get("state")
    found = state.get(STATE_KEY) if state is not None else None
    return found if isinstance(found, Mapping) else None


def with_headers(
    scope: Scope, header_keys: Iterable[tuple[tuple[bytes, ...], str | None]]
) -> Scope:
    """A copy of ``scope`` whose headers of each unit hold its effective ID (under the unit's
    first header) or none. ``header_keys`` gives, per changed unit, its header names and
    its effective ID (None: absent)."""
    drop: set[bytes] = set()
    add: list[tuple[bytes, bytes]] = []
    for keys, value in header_keys:
        if not keys:
            continue
        drop.update(keys)
        if value is not None:
            add.append((keys[0], value.encode("latin-1")))
    if not drop:
        return scope
    headers = [(name, value) for name, value in scope["headers"] if name not in drop]
    changed: dict[str, Any] = dict(scope)
    changed["headers"] = headers + add
    return changed


def echoing(send: Send, header: bytes, value: bytes) -> Send:
    """``send`` with ``header: value`` added to the response (or WebSocket accept) headers,
    unless the application set that header itself: its own value is left alone."""

    async def send_with_id(message: Message) -> None:
        if message["type"] in ("http.response.start", "websocket.accept"):
            headers = list(message.get("headers", ()))
            if not any(name.lower() == header for name, _ in headers):
                message["headers"] = [*headers, (header, value)]
        await send(message)

    return send_with_id
