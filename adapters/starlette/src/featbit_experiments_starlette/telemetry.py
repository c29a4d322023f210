"""Span attributes for one request or WebSocket session: its unit IDs and every experiment
evaluated inside it (key, variant, unit), so a trace shows which variants a request saw.

The server span belongs to whoever runs outside this middleware (OpenTelemetry's ASGI
instrumentation or Starlette's ``OpenTelemetryMiddleware``); it is annotated, never replaced.
A span of our own is started only when tracing is on and there is no span at all. With
tracing off the middleware reads OpenTelemetry's context once and never gets here (see
``current_context_reader`` and ``off_until``). IDs pass the core's privacy setting before
they are written. Attribute names come from the core's ``telemetry_names``; none is spelled here.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.context.contextvars_context import ContextVarsRuntimeContext
from opentelemetry.trace import Span, SpanKind, Tracer, TracerProvider
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from featbit_experiments import telemetry_names as names
from featbit_experiments.assignment import Assignment
from featbit_experiments.privacy import Privacy
from featbit_experiments.provider import PROVIDER_NAME
from featbit_experiments.scope import collect_assignments
from featbit_experiments.telemetry import experiment_attributes
from featbit_experiments.units import UnitCatalog

from .effective import published

_INSTRUMENTATION = "featbit_experiments_starlette"
_NO_TRACING = (trace.ProxyTracerProvider, trace.NoOpTracerProvider)
_RECHECK_SECONDS = 1.0
#: Standard attributes that also carry a unit's ID (semantic conventions).
_SEMCONV_ID_ATTRIBUTES: Mapping[str, tuple[str, ...]] = {
    "conversation": (names.GEN_AI_CONVERSATION_ID,),
    "user": (names.USER_ID,),
}


class RequestTelemetry:
    """Writes unit and experiment attributes onto the request's span.

    Args:
        units: The unit catalog; one ``experiment.unit_ids.<unit>`` attribute per unit.
        tracer_provider: Where our own span comes from when there is no server span. If None,
            the global provider: while it is OpenTelemetry's no-op default it is looked up
            again at most once a second (so one installed after start-up is picked up), and
            once set it is kept (OpenTelemetry sets the global provider only once).
        privacy: How IDs appear on spans (raw, keyed hash, or omitted); raw when None.
    """

    def __init__(
        self,
        units: UnitCatalog,
        *,
        tracer_provider: TracerProvider | None = None,
        privacy: Privacy | None = None,
    ) -> None:
        self._global = tracer_provider is None
        self._tracer = None if tracer_provider is None else _tracer_of(tracer_provider)
        self._recheck_at = 0.0
        self._privacy = None if privacy is None or privacy.is_raw else privacy
        self._id_attributes: dict[str, tuple[str, ...]] = {
            unit.name: (
                names.UNIT_ID_PREFIX + unit.name,
                *_SEMCONV_ID_ATTRIBUTES.get(unit.name, ()),
            )
            for unit in units
        }

    def tracer(self) -> Tracer | None:
        """The tracer for our own span, or None when tracing is off."""
        if self._global and self._tracer is None:
            now = time.monotonic()
            if now >= self._recheck_at:
                self._recheck_at = now + _RECHECK_SECONDS
                self._tracer = _tracer_of(trace.get_tracer_provider())
        return self._tracer

    def off_until(self) -> float:
        """Until when (``time.monotonic()``) :meth:`tracer` will keep answering None, so a
        caller may skip asking until then: the next look at the global provider, forever
        for a no-op provider given, 0.0 when tracing is on."""
        if self._tracer is not None:
            return 0.0
        return self._recheck_at if self._global else math.inf

    def unit_attributes(self, unit_ids: Mapping[str, str]) -> dict[str, Any]:
        privacy = self._privacy
        attributes: dict[str, Any] = {}
        for unit, value in unit_ids.items():
            shown = privacy.protect(value) if privacy is not None else value
            if shown is None:
                continue
            for name in self._id_attributes.get(unit, (names.UNIT_ID_PREFIX + unit,)):
                attributes[name] = shown
        return attributes

    def experiment_attributes(self, assignments: Iterable[Assignment]) -> dict[str, Any]:
        """The experiments evaluated during the request (see the core's helper)."""
        protect = None if self._privacy is None else self._privacy.protect
        return experiment_attributes(assignments, protect, PROVIDER_NAME)

    async def run(
        self,
        app: ASGIApp,
        otel: Context,
        ids: Mapping[str, str],
        scope: Scope,
        receive: Receive,
        send: Send,
    ) -> None:
        """Run ``app`` with the request's span tagged: the current span (in OpenTelemetry's
        context ``otel``) when it records, else one of our own when tracing is on and there
        is no span; untagged otherwise."""
        span = trace.get_current_span(otel)
        if span.is_recording():
            await self._tagged(span, app, ids, scope, receive, send)
        elif (tracer := self.tracer()) and not span.get_span_context().is_valid:
            with self.own_span(tracer, scope) as own:
                await self._tagged(own, app, ids, scope, receive, send)
        else:
            await app(scope, receive, send)

    async def _tagged(
        self,
        span: Span,
        app: ASGIApp,
        ids: Mapping[str, str],
        scope: Scope,
        receive: Receive,
        send: Send,
    ) -> None:
        """Run ``app`` with ``span`` tagged. The experiments are written just before the last
        body message too, because OpenTelemetry's ASGI instrumentation ends its span there,
        before background tasks run and before ``await app(...)`` returns."""
        span.set_attributes(self.unit_attributes(ids))
        with collect_assignments() as assignments:

            async def send_tagged(message: Message) -> None:
                if (
                    assignments
                    and message["type"] == "http.response.body"
                    and not message.get("more_body", False)
                ):
                    span.set_attributes(self.experiment_attributes(assignments))
                await send(message)

            try:
                await app(scope, receive, send_tagged)
            finally:
                if span.is_recording():
                    bound = published(scope)
                    if bound is not None and bound is not ids:  # a dependency bound more
                        span.set_attributes(self.unit_attributes(bound))
                    if assignments:
                        span.set_attributes(self.experiment_attributes(assignments))

    @contextmanager
    def own_span(self, tracer: Tracer, scope: Scope) -> Iterator[Span]:
        """A SERVER span for a request no instrumentation traces, named like Starlette's
        (``GET /chat/{id}``), continuing the trace the request's headers carry."""
        method = scope.get("method", "WEBSOCKET") if scope["type"] == "http" else "WEBSOCKET"
        carrier = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        with tracer.start_as_current_span(
            method, context=propagate.extract(carrier), kind=SpanKind.SERVER
        ) as span:
            try:
                yield span
            finally:
                path_format = getattr(scope.get("route"), "path_format", None)
                if isinstance(path_format, str):
                    span.update_name(f"{method} {path_format}")


def _tracer_of(provider: TracerProvider) -> Tracer | None:
    return None if isinstance(provider, _NO_TRACING) else provider.get_tracer(_INSTRUMENTATION)


def current_context_reader() -> Callable[[], Context]:
    """``opentelemetry.context.get_current``, or the same read without its two Python calls.

    OpenTelemetry keeps the current context in a ContextVar of its runtime context (the
    default ``ContextVarsRuntimeContext``, chosen once at import); read here from
    opentelemetry-api 1.45. Its ``get`` is the same value at the cost of one C call, which a
    middleware that asks on every request notices. With another runtime context, or if a
    later version moves it, this returns the public function.
    """
    runtime = getattr(otel_context, "_RUNTIME_CONTEXT", None)
    if type(runtime) is ContextVarsRuntimeContext:
        variable = getattr(runtime, "_current_context", None)
        if isinstance(variable, ContextVar):
            return variable.get
    return otel_context.get_current
