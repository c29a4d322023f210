"""A unit ID the middleware cannot use: which unit, from which field(s), and why, worded for a
400 body and a guardrail without the value itself (a hostile value must not travel into logs
or response bodies)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from featbit_experiments.guardrails import Guardrail

from .sources import Source


@dataclass(frozen=True)
class InvalidId:
    """A unit whose ID cannot be used: which unit, from which field(s), and why.

    Args:
        unit: The unit's name.
        source: The field whose value failed the rule, or that disagreed with ``others``.
        problem: Why, without the value.
        others: For a conflict, the fields holding a different value.
    """

    unit: str
    source: Source
    problem: str
    others: tuple[Source, ...] = ()

    @property
    def guardrail(self) -> Guardrail:
        """``unit_conflict`` when sources disagree, else ``invalid_unit_id``."""
        return Guardrail.UNIT_CONFLICT if self.others else Guardrail.INVALID_UNIT_ID

    @property
    def sources(self) -> tuple[Source, ...]:
        return (*self.others, self.source)

    @property
    def client_side(self) -> bool:
        """Whether the client can fix it: every field involved is one the client sends.
        Anything else (authentication, a mapping hook) is the application's to fix."""
        return all(source.client_controlled for source in self.sources)

    @property
    def description(self) -> str:
        """The fields involved, for guardrails (``header x-conversation-id``)."""
        return ", ".join(source.description for source in self.sources)

    @property
    def message(self) -> str:
        return f"{self.problem} ({self.description})"

    def as_json(self) -> dict[str, Any]:
        """The 400 body: names the field(s) the client must fix."""
        return {
            "error": self.guardrail.value,
            "unit": self.unit,
            "location": self.source.location,
            "field": self.source.name,
            "fields": [{"location": s.location, "field": s.name} for s in self.sources],
            "detail": self.message,
        }
