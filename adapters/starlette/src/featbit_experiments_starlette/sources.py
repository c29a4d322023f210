"""Where a request's unit IDs come from: small, cheap readers over the ASGI scope.

A source only finds a raw value; it never validates or trusts it. The middleware checks each
value against its unit's rules, and refuses to let a client-controlled source (a header,
query parameter, cookie or path segment) feed the user or account ID unless the application
switched that on: otherwise a client could pick its own variant, or read someone else's
assignment, by sending another person's ID. Sources run on every request, so they do their
parsing set-up once, when they are built.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Container, Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import parse_qsl

from starlette.requests import cookie_parser
from starlette.routing import compile_path
from starlette.types import Scope

from .types import ReadValue

#: Separator for a field sent more than once (RFC 9110 reads repeated fields as one
#: comma-separated list, which is not one ID).
_REPEATED = ", "


class Repeated(str):
    """A field sent more than once (a header, query parameter or cookie), joined: one value
    no unit accepts, whichever copy the client meant. The reader reports it as such."""

    __slots__ = ()


@dataclass(frozen=True)
class Source:
    """One place a unit ID can come from.

    Args:
        location: Where it is read (``"header"``, ``"query"``, ``"cookie"``, ``"path"``,
            ``"auth"``), named in 400 bodies and guardrails.
        name: The field's name there (``"x-conversation-id"``). Never the value.
        read: Returns the raw value from the scope, or None when absent.
        client_controlled: Whether the client chooses the value. Such a source cannot feed
            a protected unit (user, account) unless the middleware is told to trust it, and
            only its problems are answered with a 400: a server-side source's problem is
            nothing the client can fix.
        header_key: For a header source, the lower-case header name, so the middleware can
            read every header it needs in one pass over the request's headers (and put the
            effective ID back where the application reads it).
        scope_key: The ASGI scope key the source needs (``"user"`` for authentication), so
            the middleware can say when it never appears.
    """

    location: str
    name: str
    read: ReadValue
    client_controlled: bool = True
    header_key: bytes | None = None
    scope_key: str | None = None

    def __call__(self, scope: Scope) -> str | None:
        return self.read(scope)

    @property
    def description(self) -> str:
        return f"{self.location} {self.name}"


def header(name: str) -> Source:
    """The value of request header ``name`` (case-insensitive)."""
    key = name.lower().encode("latin-1")
    keys = frozenset((key,))

    def read(scope: Scope) -> str | None:
        return header_values(scope["headers"], keys).get(key)

    return Source("header", name.lower(), read, header_key=key)


def header_values(
    headers: Iterable[tuple[bytes, bytes]], keys: Container[bytes]
) -> dict[bytes, str]:
    """The values of the headers named in ``keys`` (lower-case), in one pass; a header sent
    more than once is one :class:`Repeated` value."""
    found: dict[bytes, str] = {}
    for field, value in headers:
        if field in keys:
            text = value.decode("latin-1")
            found[field] = Repeated(found[field] + _REPEATED + text) if field in found else text
    return found


def query_param(name: str) -> Source:
    """The value of query parameter ``name``."""

    def read(scope: Scope) -> str | None:
        query = scope.get("query_string", b"")
        if not query:
            return None
        values = [
            value
            for field, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True)
            if field == name
        ]
        if not values:
            return None
        return values[0] if len(values) == 1 else Repeated(_REPEATED.join(values))

    return Source("query", name, read)


def cookie(name: str) -> Source:
    """The value of cookie ``name``; a cookie sent twice (in one ``Cookie`` header or in
    several) is one :class:`Repeated` value, as a repeated header is."""
    key = b"cookie"
    marker = f"{name}="

    def read(scope: Scope) -> str | None:
        values: list[str] = []
        for field, value in scope["headers"]:
            if field == key:
                text = value.decode("latin-1")
                if marker not in text:
                    continue
                for pair in text.split(";"):
                    found = cookie_parser(pair).get(name)
                    if found is not None:
                        values.append(found)
        if not values:
            return None
        return values[0] if len(values) == 1 else Repeated(_REPEATED.join(values))

    return Source("cookie", name, read)


def path_param(name: str, *templates: str) -> Source:
    """Path parameter ``name``, matched against route templates (``"/chat/{conversation_id}"``).

    The middleware runs before Starlette's router fills ``scope["path_params"]``, so the
    templates are compiled here once and matched against the path per request. When the
    middleware is mounted below a route that already set the parameter, that value is used.
    """
    if not templates:
        raise ValueError("path_param needs at least one route template naming the parameter")
    patterns: list[re.Pattern[str]] = []
    for template in templates:
        pattern, _, convertors = compile_path(template)
        if name not in convertors:
            raise ValueError(f"route template {template!r} has no parameter {name!r}")
        patterns.append(pattern)
    compiled: Sequence[re.Pattern[str]] = tuple(patterns)

    def read(scope: Scope) -> str | None:
        params = scope.get("path_params")
        if params and name in params:
            return str(params[name])
        path = _route_path(scope)
        for pattern in compiled:
            match = pattern.match(path)
            if match is not None:
                return match.group(name)
        return None

    return Source("path", name, read)


def authenticated(
    attribute: str, *, location: str = "auth", to_id: Callable[[str], str] | None = None
) -> Source:
    """Attribute ``attribute`` of the authenticated user (``scope["user"]``, as set by
    Starlette's ``AuthenticationMiddleware``); None for anonymous requests. Not client
    controlled: the value comes from the application's own authentication, so a value that
    is not a valid ID is the application's to fix, never a 400 for the client.

    Args:
        to_id: Maps the application's identity to a valid unit ID, for identities the ID
            rule refuses (``"josé"``, ``"alice smith"``, an e-mail address), e.g.
            ``lambda identity: hashlib.sha256(identity.encode()).hexdigest()``. Keep it
            stable: FeatBit keys assignments and metrics by the ID it returns.
    """
    if to_id is not None:
        raw = authenticated(attribute, location=location)

        def mapped(scope: Scope) -> str | None:
            value = raw.read(scope)
            return None if value is None else to_id(value)

        return Source(location, f"user.{attribute}", mapped, False, scope_key="user")

    def read(scope: Scope) -> str | None:
        user = scope.get("user")
        if user is None:
            return None
        try:
            if not user.is_authenticated:
                return None
            value = getattr(user, attribute, None)
        except NotImplementedError:  # starlette.authentication.BaseUser's abstract properties
            return None
        return None if value is None else str(value)

    return Source(location, f"user.{attribute}", read, client_controlled=False, scope_key="user")


def authenticated_user(
    attribute: str = "identity", *, to_id: Callable[[str], str] | None = None
) -> Source:
    """The authenticated user's ID (``scope["user"].identity`` by default); see
    :func:`authenticated` for ``to_id``."""
    return authenticated(attribute, to_id=to_id)


def authenticated_tenant(
    attribute: str = "tenant_id", *, to_id: Callable[[str], str] | None = None
) -> Source:
    """The authenticated user's tenant (``scope["user"].tenant_id`` by default); see
    :func:`authenticated` for ``to_id``."""
    return authenticated(attribute, to_id=to_id)


def default_sources() -> dict[str, tuple[Source, ...]]:
    """The sources used when none are configured, by unit name.

    User and account IDs come from authentication; their headers (``X-User-Id``,
    ``X-Account-Id``) are listed but stay off unless the middleware trusts client IDs for
    that unit (for an API gateway that authenticates and forwards the ID).
    """
    return {
        "conversation": (header("x-conversation-id"),),
        "user": (authenticated_user(), header("x-user-id")),
        "account": (authenticated_tenant(), header("x-account-id")),
        "workflow": (header("x-workflow-id"),),
        "request": (header("x-request-id"),),
    }


def _route_path(scope: Scope) -> str:
    """The path without the mount's ``root_path``, as Starlette's router matches it."""
    path: str = scope["path"]
    root_path: str = scope.get("root_path", "")
    if not root_path or not path.startswith(root_path):
        return path
    rest = path[len(root_path) :]
    return rest if not rest or rest.startswith("/") else path
