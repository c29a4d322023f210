"""Starlette adapter for featbit-experiments: a pure ASGI middleware that reads, checks and binds
each request's randomization-unit IDs (conversation, user, account, workflow, request) so every
flag evaluation inside the request, its streaming body, background tasks or WebSocket session
uses them, and tags the request's span with the experiments it saw."""

from .context import (
    BoundUnits,
    UnitBinding,
    check_propagation,
    current_unit_ids,
    unit_context,
    use_contextvars_propagator,
)
from .middleware import UnitContextMiddleware
from .sources import (
    Source,
    authenticated,
    authenticated_tenant,
    authenticated_user,
    cookie,
    default_sources,
    header,
    path_param,
    query_param,
)
from .telemetry import RequestTelemetry
from .validation import PROTECTED_UNITS, InvalidId, UnitReader

__all__ = [
    "PROTECTED_UNITS",
    "BoundUnits",
    "InvalidId",
    "RequestTelemetry",
    "Source",
    "UnitBinding",
    "UnitContextMiddleware",
    "UnitReader",
    "authenticated",
    "authenticated_tenant",
    "authenticated_user",
    "check_propagation",
    "cookie",
    "current_unit_ids",
    "default_sources",
    "header",
    "path_param",
    "query_param",
    "unit_context",
    "use_contextvars_propagator",
]
