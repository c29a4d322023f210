"""Collect the experiment assignments made inside one request, turn or task.

Adapters (the ASGI middleware, the LangChain callback) open a scope around the work they
wrap; every experiment evaluation inside it, in the same task or a copied context, appends its
:class:`Assignment` to that scope, so the adapter can tag its span with each experiment's key,
variant and unit. Outside a scope recording costs one ContextVar lookup.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from .assignment import Assignment

_current: ContextVar[list[Assignment] | None] = ContextVar(
    "featbit_experiments_assignments", default=None
)


@contextmanager
def collect_assignments() -> Iterator[list[Assignment]]:
    """Open a scope; yields the list the scope's assignments are appended to."""
    collected: list[Assignment] = []
    token = _current.set(collected)
    try:
        yield collected
    finally:
        _current.reset(token)


def open_scope() -> list[Assignment] | None:
    """The innermost open scope's list, or None outside any scope."""
    return _current.get()


def record_assignment(assignment: Assignment) -> None:
    """Append ``assignment`` to the innermost open scope, if any."""
    collected = _current.get()
    if collected is not None:
        collected.append(assignment)
