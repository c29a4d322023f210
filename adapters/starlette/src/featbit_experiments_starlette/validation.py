"""Reading a request's unit IDs from their sources and checking them before anything trusts them.

Each value is checked with its unit's own rule (:meth:`featbit_experiments.units.Unit.problem_with`,
the check the provider applies), so a malformed, oversized or hostile ID is caught here and
never reaches FeatBit. What is reported names the unit, the field and the problem, never the
value: a hostile value must not travel into logs or response bodies either.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeAlias

from starlette.types import Scope

from featbit_experiments.errors import ConfigurationError
from featbit_experiments.units import Unit, UnitCatalog

from .sources import Source, default_sources, header_values
from .types import ReadValue

logger = logging.getLogger("featbit_experiments")

#: Units whose IDs a client must not choose: with them a client could pick its own variant or
#: read another person's assignment. Client-controlled sources need explicit trust.
PROTECTED_UNITS = frozenset({"user", "account"})

#: A unit's sources as configured: one source, a bare reader, or several in priority order.
SourceSpec: TypeAlias = Source | ReadValue | Sequence[Source]

_NONE_INVALID: tuple[InvalidId, ...] = ()


@dataclass(frozen=True)
class InvalidId:
    """A unit ID that failed validation: which unit, from which field, and why."""

    unit: str
    source: Source
    problem: str

    @property
    def message(self) -> str:
        return f"{self.problem} ({self.source.description})"

    def as_json(self) -> dict[str, str]:
        """The 400 body: names the field the client must fix."""
        return {
            "error": "invalid_unit_id",
            "unit": self.unit,
            "location": self.source.location,
            "field": self.source.name,
            "detail": self.message,
        }


class UnitReader:
    """Finds each unit's ID for a request: the first source with a value, in order.

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

    @property
    def plan(self) -> Mapping[str, tuple[Source, ...]]:
        """The sources read for each unit, in order (for docs and tests)."""
        return {unit.name: sources for unit, sources in self._plan}

    def read(self, scope: Scope) -> tuple[dict[str, str], Sequence[InvalidId]]:
        """Valid IDs by unit name, and every value that failed validation.

        An empty value counts as absent. A source that raises is logged and skipped.
        """
        ids: dict[str, str] = {}
        invalid: list[InvalidId] | None = None
        headers = header_values(scope["headers"], self._header_keys) if self._header_keys else {}
        for unit, sources in self._plan:
            for source in sources:
                if source.header_key is not None:
                    raw = headers.get(source.header_key)
                else:
                    try:
                        raw = source.read(scope)
                    except Exception:
                        logger.exception("unit ID source %s failed", source.description)
                        continue
                if not raw:
                    continue
                problem = unit.problem_with(raw)
                if problem is None:
                    ids[unit.name] = raw
                    break
                if invalid is None:
                    invalid = []
                invalid.append(InvalidId(unit.name, source, problem))
        return ids, invalid or _NONE_INVALID


def _as_sources(spec: SourceSpec) -> tuple[Source, ...]:
    if isinstance(spec, Source):
        return (spec,)
    if callable(spec):
        return (Source("custom", getattr(spec, "__name__", "source"), spec),)
    return tuple(_as_sources(item)[0] for item in spec)
