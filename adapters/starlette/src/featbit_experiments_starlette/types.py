"""Type aliases shared by the adapter's modules (kept here so none of them imports another
just for a name)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from starlette.types import Scope

#: Reads one raw, unvalidated value from the ASGI scope; None when the request has none.
ReadValue = Callable[[Scope], "str | None"]

#: Makes a new ID (for a conversation that starts without one).
IdGenerator = Callable[[], str]

#: What the middleware does with an ID that fails validation.
OnInvalid = Literal["reject", "drop"]
