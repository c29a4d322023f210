"""Bearer-token authentication for the example apps: a fixed token directory, read by
Starlette's ``AuthenticationMiddleware``.

The user (and tenant) IDs the experiments randomize on come from here, not from a header the
client chooses: ``UnitContextMiddleware`` reads them from ``scope["user"]``, and refuses a
client-controlled source for the user or account unit unless told to trust it. A real app puts
its own authentication in this place; the unit IDs follow from it unchanged.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass

from starlette.authentication import AuthCredentials, AuthenticationBackend, BaseUser
from starlette.requests import HTTPConnection

__all__ = ["BearerTokens", "Member", "issue_tokens"]


@dataclass(frozen=True)
class Member(BaseUser):
    """A signed-in person: ``identity`` is the user ID, ``tenant_id`` the account, if any."""

    user_id: str
    tenant_id: str | None = None

    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def display_name(self) -> str:
        return self.user_id

    @property
    def identity(self) -> str:
        return self.user_id


class BearerTokens(AuthenticationBackend):
    """``Authorization: Bearer <token>`` signs in the member the token was issued to; any
    other request stays anonymous (and the endpoints that need a member answer 403).

    Args:
        members: Members by token.
    """

    def __init__(self, members: Mapping[str, Member]) -> None:
        self._members = dict(members)

    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, Member] | None:
        scheme, _, token = conn.headers.get("authorization", "").partition(" ")
        member = self._members.get(token) if scheme.lower() == "bearer" else None
        if member is None:
            return None
        return AuthCredentials(["authenticated"]), member


def issue_tokens(members: list[Member]) -> dict[str, Member]:
    """A fresh random token for each member, as a sign-in would hand out."""
    return {secrets.token_urlsafe(16): member for member in members}
