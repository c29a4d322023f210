"""Reading a request's unit IDs from their sources and checking them before anything trusts them.

Each value is checked with its unit's own rule (:meth:`featbit_experiments.units.Unit.problem_with`,
the check the provider applies), so a malformed, oversized or hostile ID is caught here and
never reaches FeatBit. One rule holds for every source of a unit: the value is used only when
every source that has one agrees and all of them are valid. A value that fails the rule is
never replaced by another source's value (that would be a fallback to another ID), and two
sources that disagree are a conflict, never settled by their order. What is reported names
the unit, the fields and the problem, never the value: a hostile value must not travel into
logs or response bodies either.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping, Sequence
from typing import TypeAlias

from starlette.types import Scope

from featbit_experiments.errors import ConfigurationError
from featbit_experiments.units import Unit, UnitCatalog

from .invalid_id import InvalidId
from .sources import Repeated, Source, default_sources, header_values
from .types import ReadValue

logger = logging.getLogger("featbit_experiments")

#: Units whose IDs a client must not choose: with them a client could pick its own variant or
#: read another person's assignment. Client-controlled sources need explicit trust.
PROTECTED_UNITS = frozenset({"user", "account"})

#: A unit's sources as configured: one source, a bare reader, or several in priority order.
SourceSpec: TypeAlias = Source | ReadValue | Sequence[Source]

_NONE_INVALID: tuple[InvalidId, ...] = ()
#: How many accepted IDs a unit read from one header remembers (then it starts over).
_ACCEPTED_IDS = 4096


class UnitReader:
    """Finds each unit's ID for a request under the one rule of the module docstring.

    Args:
        units: The unit catalog (attribute names and ID rules), normally the provider's.
        sources: Sources by unit name, merged over :func:`default_sources`; a unit mapped to
            ``()`` is not read. Bare callables count as client controlled.
        trust_client_ids: Protected units (user, account) whose client-controlled sources
            are honoured (for an API gateway that authenticates and forwards the ID).
            Configuring such a source without this raises ConfigurationError.
    """

    def __init__(
        self,
        units: UnitCatalog,
        sources: Mapping[str, SourceSpec] | None = None,
        *,
        trust_client_ids: Collection[str] = (),
    ) -> None:
        given = dict(sources or {})
        unknown = sorted(set(given) - set(units.names))
        unknown += sorted(set(trust_client_ids) - set(units.names))
        if unknown:
            raise ConfigurationError(
                f"unknown unit(s) {', '.join(unknown)}; known units: {', '.join(units.names)}"
            )
        defaults = default_sources()
        plan: list[tuple[Unit, tuple[Source, ...]]] = []
        for name in dict.fromkeys([*defaults, *given]):
            unit = units.get(name)
            if unit is None:
                continue
            chosen = _as_sources(given[name]) if name in given else defaults[name]
            if name in PROTECTED_UNITS and name not in trust_client_ids:
                client_sources = [s.description for s in chosen if s.client_controlled]
                if name in given and client_sources:
                    raise ConfigurationError(
                        f"the {name} ID would come from a client-controlled source "
                        f"({', '.join(client_sources)}); a client could then choose its own "
                        f"variant. Pass trust_client_ids={{{name!r}}} if a trusted proxy sets it"
                    )
                chosen = tuple(s for s in chosen if not s.client_controlled)
            if chosen:
                plan.append((unit, chosen))
        self._plan = tuple(plan)
        self._header_keys = frozenset(
            source.header_key for _, sources in plan for source in sources if source.header_key
        )
        #: Which scope keys some source needs (``"user"`` for authentication).
        self.scope_keys = frozenset(
            source.scope_key for _, sources in plan for source in sources if source.scope_key
        )
        # Per request, a unit read from one header only is a lookup in the request's headers
        # (one dict built in C); the other units follow the plan, and are skipped at once when
        # every source of theirs needs a scope key (authentication) the request lacks.
        # Each such unit remembers the IDs it accepted lately (a set, atomic per operation),
        # so a conversation's or user's next request is a lookup, not the unit's rule again.
        single: list[tuple[bytes, Unit, Source, set[str]]] = []
        rest: list[tuple[Unit, tuple[Source, ...]]] = []
        for unit, read_from in plan:
            key = read_from[0].header_key if len(read_from) == 1 else None
            if key is not None and all(key != other for other, *_ in single):
                single.append((key, unit, read_from[0], set()))
            else:
                rest.append((unit, read_from))
        self._single = tuple(single)
        self._rest = tuple(rest)
        self._rest_header_keys = frozenset(
            source.header_key for _, sources in rest for source in sources if source.header_key
        )
        needs = [source.scope_key for _, read_from in rest for source in read_from]
        self._rest_needs: tuple[str, ...] | None = (
            tuple(key for key in dict.fromkeys(needs) if key is not None) if all(needs) else None
        )
        self._rank = {unit.name: index for index, (unit, _) in enumerate(plan)}

    @property
    def plan(self) -> Mapping[str, tuple[Source, ...]]:
        """The sources read for each unit, in order (for docs and tests)."""
        return {unit.name: sources for unit, sources in self._plan}

    def header_keys_of(self, unit: str) -> tuple[bytes, ...]:
        """The request headers a unit is read from, in order."""
        for planned, sources in self._plan:
            if planned.name == unit:
                return tuple(s.header_key for s in sources if s.header_key is not None)
        return ()

    def read(self, scope: Scope) -> tuple[dict[str, str], Sequence[InvalidId]]:
        """Usable IDs by unit name, and every unit whose value cannot be used (in plan order).

        An empty value counts as absent. A source that raises is logged and skipped.
        """
        fields = scope["headers"]
        table = dict(fields)
        if len(table) != len(fields):  # some field sent twice: read every copy
            found = header_values(fields, self._header_keys)
            return self._finished(self._read_units(self._plan, scope, found, {}, None))
        ids: dict[str, str] = {}
        problems: list[InvalidId] | None = None
        for key, unit, source, accepted in self._single:
            value = table.get(key)
            if not value:
                continue
            raw = value.decode("latin-1")
            if raw in accepted:
                ids[unit.name] = raw
                continue
            why = unit.problem_with(raw)
            if why is None:
                if len(accepted) >= _ACCEPTED_IDS:
                    accepted.clear()
                accepted.add(raw)
                ids[unit.name] = raw
            else:
                problem = InvalidId(unit.name, source, why)
                problems = [problem] if problems is None else [*problems, problem]
        if self._rest:
            needs = self._rest_needs
            runs = needs is None
            for need in needs or ():  # a loop, not any(): no generator on every request
                if need in scope:
                    runs = True
                    break
            if runs:
                found = {
                    key: table[key].decode("latin-1")
                    for key in self._rest_header_keys
                    if key in table
                }
                problems = self._read_units(self._rest, scope, found, ids, problems)[1]
        if problems is None:
            return ids, _NONE_INVALID
        return self._finished((ids, problems))

    def _finished(
        self, read: tuple[dict[str, str], list[InvalidId] | None]
    ) -> tuple[dict[str, str], Sequence[InvalidId]]:
        ids, problems = read
        if not problems:
            return ids, _NONE_INVALID
        problems.sort(key=lambda problem: self._rank[problem.unit])
        return ids, problems

    @staticmethod
    def _read_units(
        plan: Sequence[tuple[Unit, tuple[Source, ...]]],
        scope: Scope,
        headers: Mapping[bytes, str],
        ids: dict[str, str],
        problems: list[InvalidId] | None,
    ) -> tuple[dict[str, str], list[InvalidId] | None]:
        """Read ``plan``'s units source by source, in order, adding to ``ids`` and
        ``problems``; ``headers`` holds the request's values of the header sources."""
        for unit, sources in plan:
            chosen: str | None = None
            chosen_from: Source | None = None
            problem: InvalidId | None = None
            for source in sources:
                key = source.header_key
                if key is not None:
                    raw = headers.get(key)
                elif source.scope_key is not None and source.scope_key not in scope:
                    continue  # e.g. no authentication ran: nothing to read, skip the call
                else:
                    try:
                        raw = source.read(scope)
                    except Exception:
                        logger.exception("unit ID source %s failed", source.description)
                        continue
                if not raw:
                    continue
                if raw.__class__ is Repeated:
                    problem = InvalidId(unit.name, source, f"{unit.name} ID sent more than once")
                    break
                why = unit.problem_with(raw)
                if why is not None:
                    problem = InvalidId(unit.name, source, why)
                    break
                if chosen_from is None:
                    chosen, chosen_from = raw, source
                elif raw != chosen:
                    problem = InvalidId(
                        unit.name, source, f"{unit.name} IDs disagree", (chosen_from,)
                    )
                    break
            if problem is not None:
                problems = [problem] if problems is None else [*problems, problem]
            elif chosen is not None:
                ids[unit.name] = chosen
        return ids, problems


def _as_sources(spec: SourceSpec) -> tuple[Source, ...]:
    if isinstance(spec, Source):
        return (spec,)
    if callable(spec):
        return (Source("custom", getattr(spec, "__name__", "source"), spec),)
    return tuple(_as_sources(item)[0] for item in spec)
