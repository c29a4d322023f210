"""The unit IDs of the current request or turn, bound for everything that runs inside it.

Importable without Starlette's middleware: a worker, a test or another adapter can bind unit IDs
the same way. Binding does two things: it sets OpenFeature's transaction context (so every flag
evaluation in the block, without an explicit context, uses these IDs) and a small ContextVar
that application code reads with :func:`current_unit_ids`. Both are restored when the block
ends, because OpenFeature's contextvars propagator has no reset of its own.

OpenFeature's propagator is process-global, so this module installs none unless asked:
call :func:`use_contextvars_propagator` once at start-up.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from contextvars import ContextVar, Token
from types import MappingProxyType, TracebackType

from openfeature import api
from openfeature.evaluation_context import EvaluationContext
from openfeature.transaction_context import ContextVarsTransactionContextPropagator

from featbit_experiments.units import UnitCatalog

logger = logging.getLogger("featbit_experiments")

_NO_IDS: Mapping[str, str] = MappingProxyType({})
_unit_ids: ContextVar[Mapping[str, str]] = ContextVar(
    "featbit_experiments_unit_ids", default=_NO_IDS
)
_DEFAULT_UNITS = UnitCatalog()
_warned_no_propagator = False


def use_contextvars_propagator() -> None:
    """Install OpenFeature's ``ContextVarsTransactionContextPropagator`` process-wide.

    Without a propagator OpenFeature drops transaction contexts silently. Call this once at
    start-up unless the application installs a propagator of its own.
    """
    api.set_transaction_context_propagator(ContextVarsTransactionContextPropagator())


def current_unit_ids() -> Mapping[str, str]:
    """The unit IDs bound for the current request or turn, by unit name (empty outside one)."""
    return _unit_ids.get()


class unit_context:
    """Bind unit IDs (by unit name, already validated) for the enclosed block.

    Merges them into the current OpenFeature transaction context under each unit's canonical
    attribute (``conversationId``...), with the targeting key set to the ID of the catalog's
    targeting-key unit (the user) when there is one, and restores the previous context on exit.

    Args:
        unit_ids: Unit IDs by unit name (``{"conversation": "c-1"}``).
        units: The catalog that names each unit's attribute; the standard one by default.
    """

    __slots__ = ("_ids", "_previous", "_token", "_units")

    def __init__(self, unit_ids: Mapping[str, str], *, units: UnitCatalog | None = None) -> None:
        self._ids = unit_ids
        self._units = units or _DEFAULT_UNITS
        self._previous: EvaluationContext | None = None
        self._token: Token[Mapping[str, str]] | None = None

    def __enter__(self) -> EvaluationContext:
        units = self._units
        ids = self._ids
        attributes = {units[name].attribute: value for name, value in ids.items()}
        key_unit = units.targeting_key_unit
        ours = EvaluationContext(ids.get(key_unit) if key_unit else None, attributes)
        previous = api.get_transaction_context()
        merged = previous.merge(ours) if previous.attributes or previous.targeting_key else ours
        api.set_transaction_context(merged)
        self._previous = previous
        self._token = _unit_ids.set(MappingProxyType(dict(ids)))
        if api.get_transaction_context() is not merged:
            _warn_no_propagator()
        return merged

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._token is not None:
            _unit_ids.reset(self._token)
            self._token = None
        if self._previous is not None:
            api.set_transaction_context(self._previous)
            self._previous = None


def _warn_no_propagator() -> None:
    global _warned_no_propagator
    if not _warned_no_propagator:
        _warned_no_propagator = True
        logger.warning(
            "OpenFeature's transaction context did not keep the request's unit IDs (no "
            "propagator installed?), so flag evaluations will not see them; call "
            "featbit_experiments_starlette.use_contextvars_propagator() at start-up"
        )
