"""``UnitContextMiddleware``: binds each HTTP request's and WebSocket session's unit IDs for
every flag evaluation inside it.

Pure ASGI on purpose: ``BaseHTTPMiddleware`` runs the endpoint in a copied context and never
sees WebSockets, so the IDs would not reach streaming bodies and sessions reliably. Here the
IDs are bound around ``await self.app(...)``, which returns only after the body has streamed,
background tasks have run or the WebSocket has closed, and are restored afterwards. All
configuration is turned into lookup tables in ``__init__``; a request costs a few header scans,
one validation per ID and one context switch. Nothing here raises into the request: a bad ID is
a 400 or is dropped, never a 500.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

from opentelemetry import trace
from opentelemetry.trace import Span, TracerProvider
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette.websockets import WebSocket

from featbit_experiments.guardrails import EventFanout, Guardrail, LoggingSink
from featbit_experiments.privacy import Privacy
from featbit_experiments.provider import FeatBitProvider
from featbit_experiments.scope import collect_assignments
from featbit_experiments.units import UnitCatalog

from .context import UnitBinding, check_propagation
from .telemetry import RequestTelemetry
from .types import IdGenerator, OnInvalid
from .validation import InvalidId, SourceSpec, UnitReader

#: WebSocket close code for a policy violation, used when the server cannot send a 400.
_WS_POLICY_VIOLATION = 1008


class UnitContextMiddleware:
    """Reads, checks and binds the unit IDs of each request (see the module docstring).

    Place it inside authentication (it reads ``scope["user"]``) and inside OpenTelemetry's
    middleware (it annotates the server span): with ``add_middleware``, add it first.

    Args:
        app: The ASGI application to wrap.
        sources: Where each unit's ID comes from, by unit name, merged over
            :func:`~featbit_experiments_starlette.sources.default_sources`.
        trust_client_ids: Protected units (``"user"``, ``"account"``) whose IDs may come from
            a client-controlled source such as a header. Off by default: a client could
            otherwise choose its own variant or read another person's assignment.
        on_invalid: ``"reject"`` answers 400 with a JSON body naming the field (WebSockets:
            an HTTP 400 denial where the server supports it, else close code 1008);
            ``"drop"`` treats the ID as absent. Both record an ``invalid_unit_id`` guardrail
            that names the field, never the value.
        generate_conversation_id: Makes a conversation ID when a request carries none (or
            only an invalid one that was dropped), echoed in ``response_header``. Off by
            default: a client that never sends the ID back would start a new conversation
            on every request, quietly turning a conversation experiment into a request one.
        response_header: The response header (and WebSocket accept header) echoing a
            generated conversation ID.
        provider: The FeatBit provider: its unit catalog names and checks IDs, its event
            sinks receive guardrails and its privacy setting applies to span attributes.
            Without it: the standard units, the ``featbit_experiments`` logger, raw IDs.
        units: A unit catalog to use instead of the provider's.
        tracer_provider: For our own span when no server span exists; the global one if None.
        privacy: How IDs appear on spans (keyed hash, omitted), instead of the provider's.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        sources: Mapping[str, SourceSpec] | None = None,
        trust_client_ids: Collection[str] = (),
        on_invalid: OnInvalid = "reject",
        generate_conversation_id: IdGenerator | None = None,
        response_header: str = "x-conversation-id",
        provider: FeatBitProvider | None = None,
        units: UnitCatalog | None = None,
        tracer_provider: TracerProvider | None = None,
        privacy: Privacy | None = None,
    ) -> None:
        if on_invalid not in ("reject", "drop"):
            raise ValueError(f"on_invalid must be 'reject' or 'drop', not {on_invalid!r}")
        self.app = app
        self.units: UnitCatalog = (
            units or (provider.policy.units if provider is not None else None) or UnitCatalog()
        )
        self.reader = UnitReader(self.units, sources, trust_client_ids=trust_client_ids)
        self._binding = UnitBinding(self.units)
        self._check_propagation = True  # on the first request: the app installs it at start-up
        self._reject = on_invalid == "reject"
        self._action = "rejected" if self._reject else "dropped"
        self._events: EventFanout = (
            provider.events if provider is not None else EventFanout((LoggingSink(),))
        )
        self._generate = generate_conversation_id
        if generate_conversation_id is not None:
            problem = self.units["conversation"].problem_with(generate_conversation_id())
            if problem is not None:
                raise ValueError(f"generate_conversation_id makes invalid IDs: {problem}")
        self._echo_header = response_header.lower().encode("latin-1")
        self.telemetry = RequestTelemetry(
            self.units,
            tracer_provider=tracer_provider,
            privacy=privacy or (provider.privacy if provider is not None else None),
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        ids, invalid = self.reader.read(scope)
        if invalid:
            self._report(invalid)
            if self._reject:
                await _refuse(invalid[0], scope, receive, send)
                return
        if self._generate is not None and "conversation" not in ids:
            generated = self._new_conversation_id()
            if generated is not None:
                ids["conversation"] = generated
                send = self._echoing(send, generated.encode("latin-1"))
        if self._check_propagation:
            self._check_propagation = False
            check_propagation()
        saved = self._binding.enter(ids)
        try:
            span = trace.get_current_span()
            if span.is_recording():
                await self._traced(span, ids, scope, receive, send)
            elif (tracer := self.telemetry.tracer()) and not span.get_span_context().is_valid:
                with self.telemetry.own_span(tracer, scope) as own:
                    await self._traced(own, ids, scope, receive, send)
            else:
                await self.app(scope, receive, send)
        finally:
            self._binding.leave(saved)

    async def _traced(
        self, span: Span, ids: Mapping[str, str], scope: Scope, receive: Receive, send: Send
    ) -> None:
        """Run the app with its span tagged. The experiments are written just before the
        last body message too, because OpenTelemetry's ASGI instrumentation ends its span
        there, before background tasks run and before ``await self.app`` returns."""
        telemetry = self.telemetry
        span.set_attributes(telemetry.unit_attributes(ids))
        with collect_assignments() as assignments:

            async def send_tagged(message: Message) -> None:
                if (
                    assignments
                    and message["type"] == "http.response.body"
                    and not message.get("more_body", False)
                ):
                    span.set_attributes(telemetry.experiment_attributes(assignments))
                await send(message)

            try:
                await self.app(scope, receive, send_tagged)
            finally:
                if assignments and span.is_recording():
                    span.set_attributes(telemetry.experiment_attributes(assignments))

    def _new_conversation_id(self) -> str | None:
        """A generated conversation ID, checked like a client's; None (and a guardrail) when
        the generator fails, so a broken generator never turns into a 500."""
        assert self._generate is not None
        try:
            generated = self._generate()
            problem = self.units["conversation"].problem_with(generated)
        except Exception as error:
            problem = f"generate_conversation_id failed: {type(error).__name__}"
        if problem is None:
            return generated
        self._events.guardrail(
            Guardrail.INVALID_UNIT_ID,
            f"{problem}; no conversation ID generated",
            assignmentUnit="conversation",
            source="generate_conversation_id",
        )
        return None

    def _report(self, invalid: Sequence[InvalidId]) -> None:
        for item in invalid:
            self._events.guardrail(
                Guardrail.INVALID_UNIT_ID,
                f"{item.message}; {self._action}",
                assignmentUnit=item.unit,
                source=item.source.description,
                action=self._action,
            )

    def _echoing(self, send: Send, value: bytes) -> Send:
        """``send`` with the generated conversation ID added to the response (or accept)
        headers."""
        header = (self._echo_header, value)

        async def send_with_id(message: Message) -> None:
            if message["type"] in ("http.response.start", "websocket.accept"):
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        return send_with_id


async def _refuse(invalid: InvalidId, scope: Scope, receive: Receive, send: Send) -> None:
    response = JSONResponse(invalid.as_json(), status_code=400)
    if scope["type"] == "http":
        await response(scope, receive, send)
        return
    if "websocket.http.response" in scope.get("extensions", {}):
        await WebSocket(scope, receive, send).send_denial_response(response)
    else:
        await send({"type": "websocket.close", "code": _WS_POLICY_VIOLATION})
