"""The unit IDs of the current request or turn, bound for everything that runs inside it.

Importable without Starlette's middleware: a worker, a test or another adapter can bind unit IDs
the same way. Binding does two things: it sets OpenFeature's transaction context (so every flag
evaluation in the block, without an explicit context, uses these IDs) and a small ContextVar
that application code reads with :func:`current_unit_ids`. A binding inside another merges
with it, as OpenFeature merges transaction contexts (the inner ID of a unit wins). Both are
restored when the block ends, because OpenFeature's contextvars propagator has no reset of its
own.

OpenFeature's propagator is process-global, so this module installs none unless asked:
call :func:`use_contextvars_propagator` once at start-up. With that propagator a binding is
built only when something reads the transaction context (see ``propagation``); with any other
it is built and set at once.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping
from contextvars import ContextVar, Token
from types import MappingProxyType, TracebackType
from typing import Any

from openfeature import api
from openfeature.evaluation_context import EvaluationContext

from featbit_experiments.units import UnitCatalog

from .propagation import UnitContextPropagator, defer, restore

logger = logging.getLogger("featbit_experiments")

_NO_IDS: Mapping[str, str] = MappingProxyType({})
_unit_ids: ContextVar[Mapping[str, str]] = ContextVar(
    "featbit_experiments_unit_ids", default=_NO_IDS
)
_DEFAULT_UNITS = UnitCatalog()
_propagation_checked = False


def use_contextvars_propagator() -> None:
    """Install :class:`~featbit_experiments_starlette.propagation.UnitContextPropagator`
    process-wide: it keeps the transaction context in a ContextVar as OpenFeature's
    ``ContextVarsTransactionContextPropagator`` does, and builds bound unit IDs into a context
    only when an evaluation needs them.

    Without a propagator OpenFeature drops transaction contexts silently. Call this once at
    start-up unless the application installs a propagator of its own.
    """
    api.set_transaction_context_propagator(UnitContextPropagator())


def current_unit_ids() -> Mapping[str, str]:
    """The unit IDs bound for the current request or turn, by unit name (empty outside one)."""
    return MappingProxyType(_unit_ids.get())


#: What :meth:`UnitBinding.enter` replaced, for :meth:`UnitBinding.leave` to put back: the
#: transaction context (or the token of a pending binding) and the unit IDs' token.
Saved = tuple["EvaluationContext | Token[Any]", "Token[Mapping[str, str]]"]


class UnitBinding:
    """Binds unit IDs of one unit catalog; the attribute names are looked up once, here.

    Args:
        units: The catalog that names each unit's attribute; the standard one by default.
    """

    __slots__ = ("_attribute_of", "_key_unit", "_names_of")

    def __init__(self, units: UnitCatalog | None = None) -> None:
        units = units or _DEFAULT_UNITS
        self._attribute_of = {unit.name: unit.attribute for unit in units}
        self._names_of = {unit.name: unit.attribute_names for unit in units}
        self._key_unit = units.targeting_key_unit

    def bind(self, unit_ids: Mapping[str, str]) -> BoundUnits:
        """A context manager binding ``unit_ids`` (by unit name, already validated)."""
        return BoundUnits(self, unit_ids)

    def context_for(self, unit_ids: Mapping[str, str]) -> EvaluationContext:
        """The evaluation context carrying ``unit_ids``: each under its unit's canonical
        attribute, and the targeting-key unit's ID (the user's) as the targeting key."""
        attribute_of = self._attribute_of
        attributes: dict[str, str] = {}
        for name, value in unit_ids.items():  # a loop: cheaper than a comprehension for a few
            attributes[attribute_of[name]] = value
        key_unit = self._key_unit
        return EvaluationContext(unit_ids.get(key_unit) if key_unit else None, attributes)

    def enter(self, unit_ids: Mapping[str, str], *, without: Collection[str] = ()) -> Saved:
        """Bind ``unit_ids``: merge them into the current OpenFeature transaction context and
        into :func:`current_unit_ids`. Pass the result to :meth:`leave` in a ``finally``.
        (The middleware's per-request path; ``with`` code uses :meth:`bind`.)

        Args:
            without: Units to unbind in the block (IDs found to conflict): they leave both
                the transaction context and :func:`current_unit_ids`.
        """
        outer = _unit_ids.get()
        merged = {**outer, **unit_ids} if outer else unit_ids
        if without:
            merged = {unit: value for unit, value in merged.items() if unit not in without}
        pending = defer(self, unit_ids, without)
        if pending is not None:
            return pending, _unit_ids.set(merged)
        previous = api.get_transaction_context()
        api.set_transaction_context(self.build(unit_ids, previous, without))
        return previous, _unit_ids.set(merged)

    @staticmethod
    def leave(saved: Saved) -> None:
        """Restore what :meth:`enter` replaced (OpenFeature's propagator has no reset). From
        another context than :meth:`enter`'s (a framework that closes a dependency
        elsewhere) there is nothing of ours to restore."""
        previous, token = saved
        try:
            _unit_ids.reset(token)
        except ValueError:
            return
        if isinstance(previous, Token):
            restore(previous)
        else:
            api.set_transaction_context(previous)

    def build(
        self, unit_ids: Mapping[str, str], previous: EvaluationContext, without: Collection[str]
    ) -> EvaluationContext:
        """The transaction context of a binding: ``previous`` merged with ``unit_ids`` (ours
        win), less the units in ``without``."""
        ours = self.context_for(unit_ids)
        if previous.attributes or previous.targeting_key:
            ours = previous.merge(ours)
        return self._unbound(ours, without) if without else ours

    def _unbound(self, context: EvaluationContext, units: Collection[str]) -> EvaluationContext:
        names = {name for unit in units for name in self._names_of.get(unit, ())}
        key = None if self._key_unit in units else context.targeting_key
        kept = {name: value for name, value in context.attributes.items() if name not in names}
        return EvaluationContext(key, kept)


class BoundUnits:
    """Unit IDs bound for a ``with`` block (see :meth:`UnitBinding.bind`)."""

    __slots__ = ("_binding", "_ids", "_saved")

    def __init__(self, binding: UnitBinding, unit_ids: Mapping[str, str]) -> None:
        self._binding = binding
        self._ids = unit_ids
        self._saved: Saved | None = None

    def __enter__(self) -> EvaluationContext:
        self._saved = self._binding.enter(self._ids)
        return api.get_transaction_context()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._saved is not None:
            self._binding.leave(self._saved)
            self._saved = None


_DEFAULT_BINDING = UnitBinding(_DEFAULT_UNITS)


def unit_context(unit_ids: Mapping[str, str], *, units: UnitCatalog | None = None) -> BoundUnits:
    """Bind unit IDs (by unit name, already validated) for a ``with`` block.

    ``with unit_context({"conversation": "c-1"}):`` makes every flag evaluation inside, with
    no explicit context, use conversation ``c-1``. For repeated use with a custom catalog,
    build one :class:`UnitBinding` and call its ``bind``. The first call in a process warns
    when OpenFeature has no propagator (see :func:`check_propagation`).
    """
    global _propagation_checked
    if not _propagation_checked:
        _propagation_checked = True
        check_propagation()
    binding = _DEFAULT_BINDING if units is None else UnitBinding(units)
    return binding.bind(unit_ids)


def check_propagation() -> bool:
    """Whether OpenFeature keeps a transaction context set here (a propagator is installed);
    logs a warning saying what to do when it does not. Costs a set/get/restore round trip,
    so callers check once, not per request."""
    probe = EvaluationContext()
    previous = api.get_transaction_context()
    api.set_transaction_context(probe)
    try:
        kept = api.get_transaction_context() is probe
    finally:
        api.set_transaction_context(previous)
    if not kept:
        logger.warning(
            "OpenFeature's transaction context did not keep the request's unit IDs (no "
            "propagator installed?), so flag evaluations will not see them; call "
            "featbit_experiments_starlette.use_contextvars_propagator() at start-up"
        )
    return kept
