"""Read a turn's unit IDs out of a LangChain run: its metadata and its ``configurable`` values.

LangChain ≥ 1.3 no longer copies ``configurable`` values into callback metadata, so a callback
sees only ``metadata`` while a runnable sees its whole ``RunnableConfig``; LangGraph copies
``configurable.thread_id`` into metadata. Both places are read, metadata first, and a key that
holds different values in the two is dropped and reported, never resolved by picking one.

This module only translates LangChain's objects into an OpenFeature evaluation context: which
attribute carries which unit, and whether an ID is valid, is the core unit catalog's business.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from langchain_core.runnables import RunnableConfig
from openfeature.evaluation_context import EvaluationContext

from featbit_experiments.units import StandardUnit, Unit, UnitCatalog, UnitKey

#: Keys read from run metadata and ``configurable``, and the unit each one identifies.
DEFAULT_ID_KEYS: Mapping[str, str] = {
    "conversation_id": StandardUnit.CONVERSATION.value,
    "thread_id": StandardUnit.CONVERSATION.value,  # LangGraph's thread
    "session_id": StandardUnit.CONVERSATION.value,  # LangSmith's thread spelling
    "user_id": StandardUnit.USER.value,
    "account_id": StandardUnit.ACCOUNT.value,
    "workflow_id": StandardUnit.WORKFLOW.value,
}


@dataclass(frozen=True)
class TurnContext:
    """The unit IDs of one turn, as read from a run.

    Args:
        attributes: The evaluation-context attributes (IDs as found, under the names the
            unit catalog reads).
        evaluation_context: The OpenFeature context flag evaluations of the turn use.
        ids: The valid unit IDs by unit name (``conversation``), for telemetry; invalid or
            ambiguous IDs are left out.
        conversation_id: The conversation's ID when it is known and valid.
        conflicts: Attributes whose metadata and ``configurable`` values disagreed (left
            out of the context).
    """

    attributes: Mapping[str, Any] = field(default_factory=dict)
    evaluation_context: EvaluationContext = field(default_factory=EvaluationContext)
    ids: Mapping[str, str] = field(default_factory=dict)
    conversation_id: str | None = None
    conflicts: tuple[str, ...] = ()

    @property
    def is_empty(self) -> bool:
        return not self.attributes


EMPTY_TURN_CONTEXT = TurnContext()

#: How many recently built contexts readers of one configuration remember: the handler and the
#: router of one turn read the same IDs (the run's metadata) a moment apart; concurrent turns
#: need a few more.
_REMEMBERED = 64
_Key = tuple[tuple[tuple[str, str], ...], tuple[str, ...]]
#: Built contexts by reader configuration (keys, units, targeting unit), shared by every
#: reader configured alike (a handler's and a router's).
_remembered_by_configuration: dict[tuple[Any, ...], dict[_Key, TurnContext]] = {}


class TurnContextReader:
    """Builds a :class:`TurnContext` from run metadata and ``configurable`` values.

    Args:
        keys: Key names to read, each mapped to the unit whose ID it carries. Defaults to
            :data:`DEFAULT_ID_KEYS`. A key the unit catalog already accepts for that unit
            (``thread_id`` for a conversation) is passed through under its own name, so the
            catalog can check that several spellings agree; any other key is passed under the
            unit's canonical attribute (``chat_id`` → ``conversationId``).
        catalog: The unit catalog of the provider's policy (``provider.policy.units``); the
            standard units by default.

    Raises:
        ValueError: A key names a unit the catalog does not know.
    """

    def __init__(
        self, keys: Mapping[str, str] | None = None, *, catalog: UnitCatalog | None = None
    ) -> None:
        self.catalog = catalog or UnitCatalog()
        self._attribute_of: dict[str, str] = {}
        for key, unit_name in (keys if keys is not None else DEFAULT_ID_KEYS).items():
            unit = self.catalog.get(unit_name)
            if unit is None:
                raise ValueError(
                    f"turn key {key!r} names unknown unit {unit_name!r}; "
                    f"known units: {', '.join(self.catalog.names)}"
                )
            self._attribute_of[key] = key if key in unit.attribute_names else unit.attribute
        #: Every attribute name the catalog reads, mapped to its unit.
        self._unit_of: dict[str, Unit] = {
            name: unit for unit in self.catalog for name in unit.attribute_names
        }
        target_unit = self.catalog.targeting_key_unit
        self._targeting_unit = self.catalog.get(target_unit) if target_unit else None
        # Built contexts by their string attributes and conflicts. Dict operations are atomic,
        # so threads share it without a lock; it is cleared when full.
        configuration = (tuple(self._attribute_of.items()), tuple(self.catalog), target_unit)
        self._remembered = _remembered_by_configuration.setdefault(configuration, {})

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(self._attribute_of)

    def from_metadata(self, metadata: Mapping[str, Any] | None) -> TurnContext:
        """The turn context a callback can see: run metadata only."""
        if not metadata:
            return EMPTY_TURN_CONTEXT
        return self._build(self._collect(metadata), ())

    def from_config(self, config: RunnableConfig | None) -> TurnContext:
        """The turn context a runnable can see: metadata, then ``configurable``."""
        if not config:
            return EMPTY_TURN_CONTEXT
        metadata = config.get("metadata") or {}
        configurable = config.get("configurable") or {}
        if not configurable:
            return self.from_metadata(metadata)
        found = self._collect(metadata)
        conflicts: list[str] = []
        for key, value in self._collect(configurable).items():
            if key not in found:
                found[key] = value
            elif found[key] != value:
                conflicts.append(key)
        for key in conflicts:
            del found[key]
        return self._build(found, tuple(conflicts))

    def merge(self, first: TurnContext, second: TurnContext) -> TurnContext:
        """``first`` with the attributes only ``second`` has added (``first`` wins)."""
        extra = {k: v for k, v in second.attributes.items() if k not in first.attributes}
        if not extra and not second.conflicts:
            return first
        return self._build(
            {**first.attributes, **extra}, tuple(dict.fromkeys(first.conflicts + second.conflicts))
        )

    # -- internals ------------------------------------------------------------------------

    def _collect(self, source: Mapping[str, Any]) -> dict[str, Any]:
        """Attribute name → value for every configured key present in ``source``.

        UUIDs become strings (LangSmith recommends UUID thread IDs); anything else is passed
        as found, so the catalog reports a malformed ID instead of this reader hiding it.
        """
        found: dict[str, Any] = {}
        for key, attribute in self._attribute_of.items():
            value = source.get(key)
            if value is None:
                continue
            found[attribute] = str(value) if isinstance(value, uuid.UUID) else value
        return found

    def _build(self, attributes: dict[str, Any], conflicts: tuple[str, ...]) -> TurnContext:
        if not attributes and not conflicts:
            return EMPTY_TURN_CONTEXT
        key = _key_of(attributes, conflicts)
        if key is None:
            return self._checked(attributes, conflicts)
        built = self._remembered.get(key)
        if built is None:
            built = self._checked(attributes, conflicts)
            if len(self._remembered) >= _REMEMBERED:
                self._remembered.clear()
            self._remembered[key] = built
        return built

    def _checked(self, attributes: dict[str, Any], conflicts: tuple[str, ...]) -> TurnContext:
        # The catalog reads each unit present (checking that its spellings agree and the ID is
        # well formed); units with no attribute here are skipped rather than read in vain.
        bare = EvaluationContext(None, attributes)
        ids: dict[str, str] = {}
        for unit in {self._unit_of[name] for name in attributes if name in self._unit_of}:
            key = self.catalog.read(unit, bare)
            if isinstance(key, UnitKey):
                ids[unit.name] = key.value
        targeting = self._targeting_unit
        targeting_key = ids.get(targeting.name) if targeting is not None else None
        return TurnContext(
            attributes,
            EvaluationContext(targeting_key, attributes),
            ids,
            ids.get(StandardUnit.CONVERSATION.value),
            conflicts,
        )


def _key_of(attributes: Mapping[str, Any], conflicts: tuple[str, ...]) -> _Key | None:
    """What a built context is remembered by; None when a value is not a string (``1`` and
    ``True`` are equal keys, but the catalog reads them differently)."""
    items: list[tuple[str, str]] = []
    for name, value in attributes.items():
        if value.__class__ is not str:
            return None
        items.append((name, value))
    return tuple(items), conflicts
