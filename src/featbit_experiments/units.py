"""Randomization units: which context attribute carries each unit's ID, and how an ID is read.

A unit is the thing an experiment randomizes: a request, a conversation, a user, an account, a
workflow, or a custom one. Reading a unit's ID never guesses: if the ID is missing, blank,
malformed, or two accepted spellings disagree, the caller gets a problem, not another ID.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import ErrorCode

#: IDs we pass to FeatBit: printable, no whitespace or control characters, bounded length.
DEFAULT_ID_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._:@/+=\-]*"
DEFAULT_MAX_ID_LENGTH = 128

#: Where an experiment's unit key came from when it was taken from OpenFeature's targeting key.
TARGETING_KEY_SOURCE = "targetingKey"

#: Unit keys remembered as read and checked (a later turn of a conversation reads its ID
#: without the pattern check); past this many the memory starts over.
READ_KEYS_REMEMBERED = 32_768


class StandardUnit(str, Enum):
    """The unit names every policy knows without configuration."""

    REQUEST = "request"
    CONVERSATION = "conversation"
    USER = "user"
    ACCOUNT = "account"
    WORKFLOW = "workflow"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Unit:
    """A randomization unit and the context attribute that carries its ID.

    Args:
        name: The unit's name, as experiments declare it (``"conversation"``).
        attribute: The canonical context attribute holding the ID (``"conversationId"``).
        aliases: Other attribute names accepted for the same ID (``"thread_id"``). When more
            than one is present they must agree.
        pattern: A regular expression a valid ID must match in full.
        max_length: The longest accepted ID.
    """

    name: str
    attribute: str
    aliases: tuple[str, ...] = ()
    pattern: str = DEFAULT_ID_PATTERN
    max_length: int = DEFAULT_MAX_ID_LENGTH
    _matcher: re.Pattern[str] = field(init=False, repr=False, compare=False)
    _names: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.name or not self.name.strip():
            raise ValueError("a unit needs a non-blank name")
        if not self.attribute:
            raise ValueError(f"unit {self.name!r} needs the name of the attribute carrying its ID")
        object.__setattr__(self, "aliases", tuple(self.aliases))
        object.__setattr__(self, "_matcher", re.compile(self.pattern))
        object.__setattr__(self, "_names", (self.attribute, *self.aliases))

    @property
    def attribute_names(self) -> tuple[str, ...]:
        """The canonical attribute followed by its aliases, in lookup order."""
        return self._names

    def problem_with(self, value: Any) -> str | None:
        """Why ``value`` is not a valid ID for this unit, or None when it is."""
        if not isinstance(value, str):
            return f"{self.name} ID must be a string, got {type(value).__name__}"
        if not value.strip():
            return f"{self.name} ID is blank"
        if len(value) > self.max_length:
            return f"{self.name} ID is longer than {self.max_length} characters"
        if self._matcher.fullmatch(value) is None:
            return f"{self.name} ID has characters outside the allowed set"
        return None


STANDARD_UNITS: tuple[Unit, ...] = (
    Unit("request", "requestId", ("request_id",)),
    Unit(
        "conversation",
        "conversationId",
        ("conversation_id", "thread_id", "threadId", "session_id", "sessionId"),
    ),
    Unit("user", "userId", ("user_id",)),
    Unit("account", "accountId", ("account_id", "tenantId", "tenant_id")),
    Unit("workflow", "workflowId", ("workflow_id",)),
)


@dataclass(frozen=True, slots=True)
class UnitKey:
    """The ID of one unit as read from an evaluation context, and where it was found."""

    unit: str
    value: str
    source: str

    @property
    def context_id(self) -> str:
        """Kind-prefixed form for telemetry (``conversation:c-1``)."""
        return f"{self.unit}:{self.value}"


@dataclass(frozen=True)
class UnitKeyProblem:
    """Why a unit's ID could not be read; carries the OpenFeature error code to return."""

    unit: str
    error_code: ErrorCode
    message: str
    guardrail: str


class UnitCatalog:
    """The units a policy knows, by name. Standard units are always present; custom ones
    may be added or may redefine a standard unit's attribute and aliases.

    Args:
        units: Extra or redefined units.
        targeting_key_unit: The unit whose ID OpenFeature's ``targeting_key`` is taken to be
            (``"user"`` by default, the usual meaning of a targeting key), or None to never
            read unit IDs from the targeting key.
    """

    def __init__(self, units: Iterable[Unit] = (), *, targeting_key_unit: str | None = "user"):
        by_name = {unit.name: unit for unit in STANDARD_UNITS}
        for unit in units:
            by_name[unit.name] = unit
        self._units: dict[str, Unit] = by_name
        self._unit_of_attribute: dict[str, str] = {
            attribute: unit.name for unit in by_name.values() for attribute in unit.attribute_names
        }
        if targeting_key_unit is not None and targeting_key_unit not in by_name:
            raise ValueError(f"targeting_key_unit {targeting_key_unit!r} is not a known unit")
        self.targeting_key_unit = targeting_key_unit
        #: (unit, source, ID) -> the UnitKey already read and checked with that ID.
        self._checked: dict[tuple[str, str, str], UnitKey] = {}

    def __contains__(self, name: object) -> bool:
        return name in self._units

    def __iter__(self) -> Any:
        return iter(self._units.values())

    def get(self, name: str) -> Unit | None:
        return self._units.get(name)

    def __getitem__(self, name: str) -> Unit:
        return self._units[name]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._units)

    def read(self, unit: Unit, context: EvaluationContext) -> UnitKey | UnitKeyProblem:
        """Read ``unit``'s ID from ``context``; never substitutes another unit's ID.

        An ID read and checked before (found under the same first name, every other name
        agreeing) is served from memory: a conversation's later turns skip the pattern check."""
        attributes = context.attributes
        found: list[tuple[str, Any]] = [
            (name, attributes[name])
            for name in unit.attribute_names
            if name in attributes and attributes[name] is not None
        ]
        if self.targeting_key_unit == unit.name and context.targeting_key:
            found.append((TARGETING_KEY_SOURCE, context.targeting_key))
        if found and type(found[0][1]) is str:
            source, value = found[0]
            checked = self._checked.get((unit.name, source, value))
            if checked is not None and (len(found) == 1 or all(v == value for _, v in found)):
                return checked
            read = self._check(unit, found)
            if isinstance(read, UnitKey):
                if len(self._checked) >= READ_KEYS_REMEMBERED:
                    self._checked.clear()
                self._checked[(unit.name, read.source, read.value)] = read
            return read
        return self._check(unit, found)

    def _check(self, unit: Unit, found: list[tuple[str, Any]]) -> UnitKey | UnitKeyProblem:
        if not found:
            return UnitKeyProblem(
                unit.name,
                ErrorCode.TARGETING_KEY_MISSING,
                f"no {unit.name} ID in the evaluation context (looked for "
                f"{', '.join(self._lookup_names(unit))})",
                "missing_unit_id",
            )
        for source, value in found:
            problem = unit.problem_with(value)
            if problem is not None:
                if isinstance(value, str) and not value.strip():
                    return UnitKeyProblem(
                        unit.name,
                        ErrorCode.TARGETING_KEY_MISSING,
                        f"{problem} (attribute {source})",
                        "missing_unit_id",
                    )
                return UnitKeyProblem(
                    unit.name,
                    ErrorCode.INVALID_CONTEXT,
                    f"{problem} (attribute {source})",
                    "invalid_unit_id",
                )
        first_source, first_value = found[0]
        for source, value in found[1:]:
            if value != first_value:
                return UnitKeyProblem(
                    unit.name,
                    ErrorCode.INVALID_CONTEXT,
                    f"{unit.name} ID is ambiguous: {first_source} and {source} disagree",
                    "invalid_unit_id",
                )
        return UnitKey(unit.name, first_value, first_source)

    def forget(self, unit: str, unit_id: str) -> None:
        """Forget that a unit's ID was read and checked (the unit ended)."""
        known = self._units.get(unit)
        if known is None:
            return
        for source in (*known.attribute_names, TARGETING_KEY_SOURCE):
            self._checked.pop((unit, source, unit_id), None)

    def known_ids(self, context: EvaluationContext, read: UnitKey | None = None) -> dict[str, str]:
        """Every valid unit ID present in ``context``, by canonical attribute name.

        Used to carry the other IDs alongside an assignment (for joins and audits); invalid
        or ambiguous ones are left out here, since only the assigned unit's ID is enforced.
        ``read`` is a unit key the caller has already read from the same context.
        """
        attributes = context.attributes
        present = {
            self._unit_of_attribute[name] for name in attributes if name in self._unit_of_attribute
        }
        if context.targeting_key and self.targeting_key_unit is not None:
            present.add(self.targeting_key_unit)
        ids: dict[str, str] = {}
        if read is not None:  # already read and checked by the caller: don't read it twice
            present.discard(read.unit)
            ids[self._units[read.unit].attribute] = read.value
        for name in present:
            unit = self._units[name]
            key = self.read(unit, context)
            if isinstance(key, UnitKey):
                ids[unit.attribute] = key.value
        return ids

    def _lookup_names(self, unit: Unit) -> list[str]:
        names = list(unit.attribute_names)
        if self.targeting_key_unit == unit.name:
            names.append(TARGETING_KEY_SOURCE)
        return names


def unit_from_mapping(name: str, raw: Mapping[str, Any]) -> Unit:
    """Build a custom unit from a policy file table (``[units.<name>]``)."""
    attribute = raw.get("attribute")
    if not isinstance(attribute, str) or not attribute:
        raise ValueError(f"unit {name!r} needs 'attribute', the context attribute with its ID")
    aliases = raw.get("aliases", [])
    if not isinstance(aliases, list) or not all(isinstance(a, str) for a in aliases):
        raise ValueError(f"unit {name!r}: 'aliases' must be a list of strings")
    extra: dict[str, Any] = {}
    if "pattern" in raw:
        extra["pattern"] = str(raw["pattern"])
    if "max_length" in raw:
        extra["max_length"] = int(raw["max_length"])
    return Unit(name, attribute, tuple(aliases), **extra)
