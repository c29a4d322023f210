"""Starlette adapter for featbit-experiments: a pure ASGI middleware that reads, checks and binds
each request's randomization-unit IDs (conversation, user, account, workflow, request) so every
flag evaluation inside the request, its streaming body, background tasks or WebSocket session
uses them, and tags the request's span with the experiments it saw. FastAPI applications whose
authentication is a ``Depends`` bind its user with ``featbit_experiments_starlette.fastapi``."""

from .context import (
    BoundUnits,
    UnitBinding,
    check_propagation,
    current_unit_ids,
    unit_context,
    use_contextvars_propagator,
)
from .effective import STATE_KEY
from .invalid_id import InvalidId
from .middleware import UnitContextMiddleware, new_request_id
from .propagation import UnitContextPropagator
from .rejection import Rejection, default_rejection
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
from .validation import PROTECTED_UNITS, UnitReader

__all__ = [
    "PROTECTED_UNITS",
    "STATE_KEY",
    "BoundUnits",
    "InvalidId",
    "Rejection",
    "RequestTelemetry",
    "Source",
    "UnitBinding",
    "UnitContextMiddleware",
    "UnitContextPropagator",
    "UnitReader",
    "authenticated",
    "authenticated_tenant",
    "authenticated_user",
    "check_propagation",
    "cookie",
    "current_unit_ids",
    "default_rejection",
    "default_sources",
    "header",
    "new_request_id",
    "path_param",
    "query_param",
    "unit_context",
    "use_contextvars_propagator",
]
