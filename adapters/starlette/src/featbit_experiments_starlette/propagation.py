"""OpenFeature's transaction context, kept in a ContextVar, with unit bindings built only when
something reads them.

:class:`UnitContextPropagator` is OpenFeature's ``ContextVarsTransactionContextPropagator``
with one addition: a binding of unit IDs (:mod:`.context`) can be stored as *pending* (the IDs,
what was in force before, the units to leave out) and turned into an ``EvaluationContext`` the
first time a flag evaluation (or anything else) asks for the transaction context. A request
that evaluates nothing then costs one ContextVar set and reset instead of building, merging and
setting a context and setting the old one back. The result is the same context the eager path
builds, and it is built in whatever context asks (a worker thread, a background task, a
streaming body), because the pending binding travels with the ContextVar.

It must not change what an evaluation sees: whenever another propagator is installed,
:func:`defer` declines and the caller sets OpenFeature's transaction context eagerly.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from contextvars import ContextVar, Token
from typing import Any, Protocol

import openfeature.transaction_context as _of_transaction_context
from openfeature.evaluation_context import EvaluationContext


class ContextBuilder(Protocol):
    """Builds the transaction context of a binding (``UnitBinding`` does)."""

    def build(
        self, unit_ids: Mapping[str, str], previous: EvaluationContext, without: Collection[str]
    ) -> EvaluationContext: ...


#: A binding not built yet: its builder, unit IDs, what was in force (raw) and units left out.
Pending = tuple[ContextBuilder, Mapping[str, str], Any, Collection[str]]
_Value = EvaluationContext | Pending | None

_transaction: ContextVar[_Value] = ContextVar("featbit_experiments_transaction", default=None)
#: Where openfeature-sdk 0.10 keeps its propagator (see :func:`defer`).
_PROPAGATOR_GLOBAL = "_evaluation_transaction_context_propagator"


class UnitContextPropagator:
    """OpenFeature transaction-context propagator over a ContextVar that also holds pending
    unit bindings (see the module docstring). Install it with
    :func:`~featbit_experiments_starlette.use_contextvars_propagator`."""

    def get_transaction_context(self) -> EvaluationContext:
        value = _transaction.get()
        if value.__class__ is EvaluationContext:
            return value
        context = _built(value)
        _transaction.set(context)  # built once per context, and the same object next time
        return context

    def set_transaction_context(self, transaction_context: EvaluationContext) -> None:
        _transaction.set(transaction_context)


def defer(
    builder: ContextBuilder, unit_ids: Mapping[str, str], without: Collection[str]
) -> Token[_Value] | None:
    """Store a pending binding when :class:`UnitContextPropagator` is OpenFeature's
    propagator; None when another is (the caller then sets the context eagerly).

    OpenFeature has no public getter for its propagator: this reads the module global of
    openfeature-sdk 0.10. If a later version renames it, this declines and bindings are set
    eagerly, as before."""
    installed = getattr(_of_transaction_context, _PROPAGATOR_GLOBAL, None)
    if installed.__class__ is not UnitContextPropagator:
        return None
    return _transaction.set((builder, unit_ids, _transaction.get(), without))


#: Puts back what :func:`defer` replaced (called from the context that deferred).
restore = _transaction.reset


def _built(value: _Value) -> EvaluationContext:
    if value is None:
        return EvaluationContext()
    if isinstance(value, EvaluationContext):
        return value
    builder, unit_ids, previous, without = value
    # Nothing in force before (the usual case): build on the shared empty context, which is
    # only read, never returned.
    return builder.build(unit_ids, _NOTHING if previous is None else _built(previous), without)


_NOTHING = EvaluationContext()
