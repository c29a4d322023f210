"""FastAPI-native authentication: bind the user and account IDs of whatever a ``Depends``
resolved (``Depends(get_current_user)``), for every flag evaluation in the endpoint.

FastAPI resolves authentication in dependencies, after every middleware has run, so
``UnitContextMiddleware`` cannot see it. :func:`bind_units` wraps the application's own
dependency (sync or async: FastAPI resolves it first and hands over the result) in an async
yield dependency, which runs in the endpoint's own task, so its binding reaches async
endpoints, sync endpoints (FastAPI copies the context into its thread pool), streaming bodies
and background tasks. It merges with the middleware's IDs, like nested OpenFeature transaction
contexts.

An identity that fails the ID rule is the application's to fix, never a 400 for the client:
the unit is left out, an ``invalid_unit_id`` guardrail names the dependency, and ``to_id=``
maps identities to valid IDs. An ID that disagrees with the one the middleware bound (a
gateway header, say) is a ``unit_conflict``: the unit is left out rather than either guessed.
Requires FastAPI; nothing else in this package imports it.
"""

# No ``from __future__ import annotations``: FastAPI reads the dependency's signature, whose
# Annotated[..., Depends(dependency)] names a closure variable.
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Annotated, Any

from fastapi import Depends, Request

from featbit_experiments.guardrails import EventFanout, Guardrail, LoggingSink
from featbit_experiments.provider import FeatBitProvider
from featbit_experiments.units import UnitCatalog

from .context import UnitBinding, current_unit_ids
from .effective import publish

#: Reads one unit's ID from what the application's dependency resolved; None when absent.
ReadId = Callable[[Any], "object | None"]


def bind_units(
    dependency: Callable[..., Any],
    *,
    user: ReadId | None = None,
    account: ReadId | None = None,
    units: Mapping[str, ReadId] | None = None,
    to_id: Callable[[str], str] | None = None,
    provider: FeatBitProvider | None = None,
) -> Callable[..., AsyncIterator[Any]]:
    """A FastAPI dependency that resolves ``dependency`` and binds unit IDs read from it.

    ``Depends(bind_units(get_current_user, user=lambda u: u.id, account=lambda u:
    u.org_id))`` gives the endpoint what ``get_current_user`` returns, with its IDs bound.

    Args:
        dependency: The application's dependency (sync or async, with its own
            ``Depends``); FastAPI resolves it once per request, however often it is used.
        user: Reads the user ID from the resolved value.
        account: Reads the account (tenant) ID from it.
        units: Readers for other units, by unit name.
        to_id: Maps every ID read to a valid unit ID (e.g. a hash of an e-mail address).
        provider: Its unit catalog checks the IDs and its sinks receive guardrails; the
            standard units and the ``featbit_experiments`` logger without it.
    """
    readers: dict[str, ReadId] = dict(units or {})
    if user is not None:
        readers["user"] = user
    if account is not None:
        readers["account"] = account
    catalog = (provider.policy.units if provider is not None else None) or UnitCatalog()
    unknown = sorted(set(readers) - set(catalog.names))
    if unknown:
        raise ValueError(f"bind_units: unknown unit(s) {', '.join(unknown)}")
    if not readers:
        raise ValueError("bind_units needs at least one of user=, account=, units=")
    events = provider.events if provider is not None else EventFanout((LoggingSink(),))
    binding = UnitBinding(catalog)
    source = f"dependency {getattr(dependency, '__name__', 'dependency')}"

    async def bound_units(
        request: Request, resolved: Annotated[Any, Depends(dependency)]
    ) -> AsyncIterator[Any]:
        found: dict[str, str] = {}
        for unit, read in readers.items():
            value = read(resolved)
            if value is None:
                continue
            text = to_id(str(value)) if to_id is not None else str(value)
            problem = catalog[unit].problem_with(text)
            if problem is None:
                found[unit] = text
            else:
                events.guardrail(
                    Guardrail.INVALID_UNIT_ID,
                    f"{problem} ({source}); dropped: map identities to valid IDs with to_id=",
                    assignmentUnit=unit,
                    source=source,
                    action="dropped",
                )
        outer = current_unit_ids()
        conflicts = [unit for unit, value in found.items() if outer.get(unit, value) != value]
        for unit in conflicts:
            events.guardrail(
                Guardrail.UNIT_CONFLICT,
                f"{unit} IDs disagree ({source}, the middleware's); dropped",
                assignmentUnit=unit,
                source=source,
                action="dropped",
            )
        saved = binding.enter(found, without=conflicts)
        publish(request.scope, current_unit_ids())
        try:
            yield resolved
        finally:
            binding.leave(saved)

    return bound_units
