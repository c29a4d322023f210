"""``UnitContextMiddleware``: binds each HTTP request's and WebSocket session's unit IDs for
every flag evaluation inside it.

Pure ASGI on purpose: ``BaseHTTPMiddleware`` runs the endpoint in a copied context and never
sees WebSockets, so the IDs would not reach streaming bodies and sessions reliably. Here the
IDs are bound around ``await self.app(...)``, which returns only after the body has streamed,
background tasks have run or the WebSocket has closed, and are restored afterwards. All
configuration is turned into lookup tables in ``__init__``. A request costs one pass over its
headers, the unit's rule for an ID not accepted lately, two ContextVar sets (OpenFeature's
transaction context is built only if something evaluates, see ``propagation``) and, without
tracing, one read of OpenTelemetry's context. Nothing here raises into the request: a bad ID is
a 400 (only for what the client sent), dropped or replaced, never a 500. The effective IDs are
what the application sees: ``request.state.unit_ids`` and, when the middleware changed what
was sent, the request's headers (see ``effective``).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Collection, Mapping, Sequence
from time import monotonic

from opentelemetry.trace import TracerProvider
from starlette.types import ASGIApp, Receive, Scope, Send

from featbit_experiments.guardrails import EventFanout, Guardrail, LoggingSink
from featbit_experiments.privacy import Privacy
from featbit_experiments.provider import FeatBitProvider
from featbit_experiments.units import UnitCatalog

from .context import UnitBinding, check_propagation
from .effective import STATE_KEY, echoing, published, with_headers
from .invalid_id import InvalidId
from .rejection import Rejection, refuse
from .telemetry import RequestTelemetry, current_context_reader
from .types import IdGenerator, OnInvalid
from .validation import SourceSpec, UnitReader

logger = logging.getLogger("featbit_experiments")


def new_request_id() -> str:
    """A random request ID (32 hex digits), for a request whose ID cannot be used."""
    return uuid.uuid4().hex


class UnitContextMiddleware:
    """Reads, checks and binds the unit IDs of each request (see the module docstring).

    Place it inside authentication (it reads ``scope["user"]``) and inside OpenTelemetry's
    middleware (it annotates the server span): with ``add_middleware``, add it first.

    Args:
        app: The ASGI application to wrap.
        sources: Where each unit's ID comes from, by unit name, merged over
            :func:`~featbit_experiments_starlette.sources.default_sources`. A unit's ID is
            used only when every source that has one agrees and all are valid.
        trust_client_ids: Protected units (``"user"``, ``"account"``) whose IDs may come from
            a client-controlled source such as a header. Off by default: a client could
            otherwise choose its own variant or read another person's assignment.
        on_invalid: For a value the client sent that fails the ID rule, or client fields
            that disagree: ``"reject"`` answers 400 naming the fields (WebSockets: an HTTP
            400 denial where the server supports it, else close code 1008); ``"drop"``
            goes on without that unit's ID. A problem with a server-side source
            (authentication) is always dropped: the client cannot fix it. Each records an
            ``invalid_unit_id`` or ``unit_conflict`` guardrail naming the fields, never the
            values.
        generate_conversation_id: Makes a conversation ID when a request carries none (or
            only one that was dropped), echoed in ``response_header``. Off by default: a
            client that never sends the ID back would start a new conversation on every
            request, quietly turning a conversation experiment into a request one.
        generate_request_id: Replaces a request ID the client sent that cannot be used
            (invalid or conflicting), never a 400: a request ID is a trace handle. A random
            hex ID by default; None drops such an ID instead.
        response_header: The response header (and WebSocket accept header) echoing a
            generated conversation ID, unless the application set it itself.
        rejection: Builds the response for a rejected request from its problems (for an
            application that has its own error shape); a JSON 400 by default.
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
        generate_request_id: IdGenerator | None = new_request_id,
        response_header: str = "x-conversation-id",
        rejection: Rejection | None = None,
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
        self._watch_user = "user" in self.reader.scope_keys
        self._reject = on_invalid == "reject"
        self._rejection = rejection
        self._events: EventFanout = (
            provider.events if provider is not None else EventFanout((LoggingSink(),))
        )
        self._generators: dict[str, IdGenerator] = {}
        for unit, generator in (
            ("conversation", generate_conversation_id),
            ("request", generate_request_id),
        ):
            if generator is not None and unit in self.units.names:
                problem = self.units[unit].problem_with(generator())
                if problem is not None:
                    raise ValueError(f"generate_{unit}_id makes invalid IDs: {problem}")
                self._generators[unit] = generator
        self._generate_conversation = "conversation" in self._generators
        self._echo_header = response_header.lower().encode("latin-1")
        self.telemetry = RequestTelemetry(
            self.units,
            tracer_provider=tracer_provider,
            privacy=privacy or (provider.privacy if provider is not None else None),
        )
        self._otel_context = current_context_reader()
        self._untraced_until = 0.0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        ids, problems = self.reader.read(scope)
        if problems or (self._generate_conversation and "conversation" not in ids):
            settled = await self._settle_request(ids, problems, scope, receive, send)
            if settled is None:
                return
            scope, send = settled
        state = scope.get("state")  # publish(), inlined: this runs on every request
        if state is None:
            scope["state"] = state = {}
        state[STATE_KEY] = ids
        if self._check_propagation:
            self._check_propagation = False
            check_propagation()
        watching = self._watch_user and "user" not in scope
        saved = self._binding.enter(ids) if ids else None  # no IDs: nothing to bind
        try:
            # Most requests have no span and no tracing: OpenTelemetry's context is empty
            # then, and the tracer for our own span is known to be off until a recheck. Both
            # are asked without a Python call.
            otel = self._otel_context()
            if otel or (monotonic() >= self._untraced_until and self._tracing_on()):
                await self.telemetry.run(self.app, otel, ids, scope, receive, send)
            else:
                await self.app(scope, receive, send)
        finally:
            if saved is not None:
                self._binding.leave(saved)
        if self._watch_user:
            self._check_user_source(scope, watching)

    def _tracing_on(self) -> bool:
        """Whether there is a tracer for our own span; when not, remember until when there
        will be none, so requests until then do not ask."""
        if self.telemetry.tracer() is not None:
            return True
        self._untraced_until = self.telemetry.off_until()
        return False

    async def _settle_request(
        self,
        ids: dict[str, str],
        problems: Sequence[InvalidId],
        scope: Scope,
        receive: Receive,
        send: Send,
    ) -> tuple[Scope, Send] | None:
        """The rare path: settle the problems (answering the request itself when one is
        rejected, then None) and generate a missing conversation ID; the scope and send
        the application gets, with the effective IDs in the headers and the echo."""
        changed: dict[str, str | None] = {}
        if problems:
            rejected = self._settle(problems, ids, changed)
            if rejected:
                await refuse(rejected, self._rejection, scope, receive, send)
                return None
        if self._generate_conversation and "conversation" not in ids:
            generated = self._new_id("conversation")
            if generated is not None:
                ids["conversation"] = changed["conversation"] = generated
                send = echoing(send, self._echo_header, generated.encode("latin-1"))
        if changed:
            keys = self.reader.header_keys_of
            scope = with_headers(scope, ((keys(unit), value) for unit, value in changed.items()))
        return scope, send

    def _settle(
        self, problems: Sequence[InvalidId], ids: dict[str, str], changed: dict[str, str | None]
    ) -> list[InvalidId]:
        """Decide each problem (replace, reject or drop), record it, and return the ones that
        reject the request."""
        rejected: list[InvalidId] = []
        for problem in problems:
            replacement = None
            if problem.client_side and problem.unit == "request" and "request" in self._generators:
                replacement = self._new_id("request")
            if replacement is not None:
                action = "replaced"
                ids[problem.unit] = changed[problem.unit] = replacement
            elif problem.client_side and self._reject:
                action = "rejected"
                rejected.append(problem)
            else:
                action = "dropped"
                changed[problem.unit] = None
            self._events.guardrail(
                problem.guardrail,
                f"{problem.message}; {action}",
                assignmentUnit=problem.unit,
                source=problem.description,
                action=action,
            )
        return rejected

    def _new_id(self, unit: str) -> str | None:
        """A generated ID, checked like a client's; None (and a guardrail) when the
        generator fails, so a broken generator never turns into a 500."""
        generate = self._generators[unit]
        try:
            generated = generate()
            problem = self.units[unit].problem_with(generated)
        except Exception as error:
            problem = f"generate_{unit}_id failed: {type(error).__name__}"
        if problem is None:
            return generated
        self._events.guardrail(
            Guardrail.INVALID_UNIT_ID,
            f"{problem}; no {unit} ID generated",
            assignmentUnit=unit,
            source=f"generate_{unit}_id",
        )
        return None

    def _check_user_source(self, scope: Scope, watching: bool) -> None:
        """Warn once when a user source is configured but authentication never ran before
        this middleware and no dependency bound a user either: the user ID is silently empty
        otherwise."""
        bound = published(scope)
        if not watching or (bound is not None and "user" in bound):
            self._watch_user = False
            return
        self._watch_user = False
        logger.warning(
            "UnitContextMiddleware reads the user ID from authentication, but scope['user'] "
            "was not set: put it inside AuthenticationMiddleware (with add_middleware, add it "
            "first), or bind users in a FastAPI dependency "
            "(featbit_experiments_starlette.fastapi.bind_units), or pass "
            "sources={'user': ()} if requests have no user"
        )
