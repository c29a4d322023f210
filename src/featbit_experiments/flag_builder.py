"""Flags in code: FeatBit flag data built from a few typed words, for offline mode and tests.

A FeatBit flag on the wire is ~50 lines of JSON (GUID ids, rollout ranges, a disabled
variation, ``exptRollout``...). :class:`Flag` builds that data from what a person means::

    Flag.string(
        "support-retrieval-test",
        ["control", "retrieval_profile_b"],
        split={"control": 50, "retrieval_profile_b": 50},
        tags=["unit:conversation"],
    )

and :meth:`FeatBitProvider.offline(flags=[...]) <featbit_experiments.FeatBitProvider.offline>`
serves it. Variations are named, and rules, targets and the disabled variation refer to them
by name; ids are GUIDs derived from the flag key and variation name (stable from run to run),
and ``updatedAt`` has microseconds, as FeatBit on PostgreSQL sends it. Every flag is checked by
:func:`~featbit_experiments.flag_validation.validate_flag` when it is built, so a flag that
FeatBit would refuse never reaches a test. This module builds data; it never talks to FeatBit.
"""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from .flag_validation import MULTI_VALUE_OPERATORS, FlagDataError, validate_flag

__all__ = ["Condition", "Flag", "Rule", "bootstrap_document", "when"]

#: Namespace of the GUIDs derived from flag keys and variation names.
ID_NAMESPACE = uuid.UUID("5b0e8f2e-3c1a-4f57-9d52-6f2b7c1e9a40")
#: The environment id given to built flags unless one is passed.
OFFLINE_ENV_ID = str(uuid.uuid5(ID_NAMESPACE, "offline-environment"))


@dataclass(frozen=True)
class Condition:
    """One condition of a targeting rule (FeatBit's property, operator and string value).

    Build it with :func:`when`, which encodes a list for ``IsOneOf`` / ``NotOneOf``.
    """

    property: str
    op: str
    value: str = ""


def when(property: str, op: str, value: Any = "") -> Condition:
    """A rule condition: ``when("accountId", "IsOneOf", ["acct-1", "acct-2"])``,
    ``when("plan", "Equal", "enterprise")``, ``when("beta", "IsTrue")``."""
    if op in MULTI_VALUE_OPERATORS or isinstance(value, (list, tuple)):
        return Condition(property, op, json.dumps([str(v) for v in value]))
    return Condition(property, op, value if isinstance(value, str) else json.dumps(value))


@dataclass(frozen=True)
class Rule:
    """A targeting rule: when every condition matches, serve one variation or split.

    Args:
        name: The rule's name (its id is derived from it).
        conditions: All must match.
        serve: The variation served to everyone matching (by name).
        split: Percentages by variation name, summing to 100, instead of ``serve``.
        dispatch_key: The attribute the split buckets on (FeatBit's user key by default).
    """

    name: str
    conditions: Sequence[Condition]
    serve: str | None = None
    split: Mapping[str, float] | None = None
    dispatch_key: str | None = None


class Flag:
    """One FeatBit flag's data, checked as FeatBit would check it.

    Build one with :meth:`boolean`, :meth:`string`, :meth:`number` or :meth:`json`, or wrap
    existing FeatBit JSON with ``Flag(data)``. Raises :class:`FlagDataError` listing every
    problem when FeatBit would refuse the flag.
    """

    def __init__(self, data: Mapping[str, Any]) -> None:
        validate_flag(data)
        self._data: dict[str, Any] = copy.deepcopy(dict(data))

    @property
    def key(self) -> str:
        return str(self._data["key"])

    def to_featbit(self) -> dict[str, Any]:
        """The flag as FeatBit sends it in ``data-sync`` (a fresh copy)."""
        return copy.deepcopy(self._data)

    def __repr__(self) -> str:
        return f"Flag({self.key!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Flag) and other._data == self._data

    def __hash__(self) -> int:
        return hash(json.dumps(self._data, sort_keys=True))

    # -- typed constructors -------------------------------------------------------------

    @classmethod
    def boolean(cls, key: str, *, serve: bool | None = None, **options: Any) -> Flag:
        """A boolean flag with variations named ``"true"`` and ``"false"``: on, it serves
        ``serve`` (True by default) unless ``split`` says otherwise; off, it serves False."""
        named = {"true": "true", "false": "false"}
        served = None if serve is None else ("true" if serve else "false")
        options.setdefault("off", "false")
        return cls._build(key, "boolean", named, serve=served, **options)

    @classmethod
    def string(
        cls, key: str, variations: Sequence[str] | Mapping[str, str], **options: Any
    ) -> Flag:
        """A string flag; ``variations`` is a list of values (each its own name) or a
        mapping from variation name to value."""
        named = dict(variations) if isinstance(variations, Mapping) else {v: v for v in variations}
        return cls._build(key, "string", named, **options)

    @classmethod
    def number(cls, key: str, variations: Mapping[str, float], **options: Any) -> Flag:
        """A number flag; ``variations`` maps variation names to numbers."""
        named = {name: json.dumps(value) for name, value in variations.items()}
        return cls._build(key, "number", named, **options)

    @classmethod
    def json(cls, key: str, variations: Mapping[str, Any], **options: Any) -> Flag:
        """A JSON flag; ``variations`` maps variation names to JSON-serializable values."""
        named = {name: json.dumps(value) for name, value in variations.items()}
        return cls._build(key, "json", named, **options)

    @classmethod
    def _build(
        cls,
        key: str,
        variation_type: str,
        variations: Mapping[str, str],
        *,
        serve: str | None = None,
        split: Mapping[str, float] | None = None,
        dispatch_key: str | None = None,
        off: str | None = None,
        enabled: bool = True,
        rules: Sequence[Rule] = (),
        targets: Mapping[str, Iterable[str]] | None = None,
        tags: Iterable[str] = (),
        name: str | None = None,
        env_id: str = OFFLINE_ENV_ID,
        updated_at: datetime | None = None,
    ) -> Flag:
        """Args (shared by the typed constructors):
        serve: The variation everyone gets by default (the first one unless ``split``).
        split: Percentages by variation name, summing to 100.
        dispatch_key: The attribute the default split buckets on (the user key by default).
        off: The variation served while the flag is disabled (the first one by default).
        enabled: Whether the flag is on.
        rules: Targeting rules, in order.
        targets: User keys by the name of the variation they are given.
        tags: FeatBit tags (``unit:conversation`` declares an experiment's unit).
        name: The flag's display name (the key by default).
        env_id: The environment id.
        updated_at: When the flag last changed (now by default), kept to the microsecond.
        """
        ids = {variation: _guid(key, "variation", variation) for variation in variations}

        def id_of(variation: str, where: str) -> str:
            if variation not in ids:
                raise FlagDataError(
                    f"flag {key!r}: {where} names unknown variation {variation!r}; "
                    f"variations: {', '.join(ids)}"
                )
            return ids[variation]

        if serve is not None and split is not None:
            raise FlagDataError(f"flag {key!r}: give serve or split, not both")
        first = next(iter(variations), None)
        fallthrough = _served(split, serve or first, id_of, "the default rule")
        stamp = (updated_at or datetime.now(timezone.utc)).astimezone(timezone.utc)
        data: dict[str, Any] = {
            "id": _guid(key, "flag", ""),
            "envId": env_id,
            "key": key,
            "name": key if name is None else name,
            "variationType": variation_type,
            "variations": [
                {"id": ids[variation], "name": variation, "value": value}
                for variation, value in variations.items()
            ],
            "targetUsers": [
                {"variationId": id_of(variation, "targets"), "keyIds": list(keys)}
                for variation, keys in (targets or {}).items()
            ],
            "rules": [_rule(key, rule, id_of) for rule in rules],
            "isEnabled": enabled,
            "disabledVariationId": id_of(off or first or "", "off") if variations else "",
            "fallthrough": {
                "dispatchKey": dispatch_key,
                "includedInExpt": True,
                "variations": fallthrough,
            },
            "exptIncludeAllTargets": True,
            "tags": list(tags),
            "isArchived": False,
            "updatedAt": stamp.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        }
        return cls(data)


def _guid(key: str, kind: str, name: str) -> str:
    return str(uuid.uuid5(ID_NAMESPACE, f"{key}/{kind}/{name}"))


def _served(
    split: Mapping[str, float] | None, serve: str | None, id_of: Any, where: str
) -> list[dict[str, Any]]:
    """FeatBit's served variations: one at 100 %, or contiguous ranges from percentages."""
    if split is None:
        if serve is None:
            return []
        return [{"id": id_of(serve, where), "rollout": [0.0, 1.0], "exptRollout": 1.0}]
    served: list[dict[str, Any]] = []
    total, low = 0.0, 0.0
    for variation, percent in split.items():
        total += percent
        high = round(total / 100, 9)
        served.append({"id": id_of(variation, where), "rollout": [low, high], "exptRollout": 1.0})
        low = high
    return served


def _rule(key: str, rule: Rule, id_of: Any) -> dict[str, Any]:
    if (rule.serve is None) == (rule.split is None):
        raise FlagDataError(f"flag {key!r}: rule {rule.name!r} needs serve or split (one)")
    return {
        "id": _guid(key, "rule", rule.name),
        "name": rule.name,
        "dispatchKey": rule.dispatch_key,
        "includedInExpt": True,
        "conditions": [
            {
                "id": _guid(key, f"rule/{rule.name}/condition", str(index)),
                "property": condition.property,
                "op": condition.op,
                "value": condition.value,
            }
            for index, condition in enumerate(rule.conditions)
        ],
        "variations": _served(rule.split, rule.serve, id_of, f"rule {rule.name!r}"),
    }


def bootstrap_document(
    flags: Iterable[Flag | Mapping[str, Any]], segments: Iterable[Mapping[str, Any]] = ()
) -> dict[str, Any]:
    """FeatBit's ``data-sync`` envelope holding ``flags`` (as ``latest-all`` returns it), to
    write as a bootstrap file; raw flag mappings are checked like built ones."""
    built = [flag if isinstance(flag, Flag) else Flag(flag) for flag in flags]
    keys = [flag.key for flag in built]
    twice = sorted({key for key in keys if keys.count(key) > 1})
    if twice:
        raise FlagDataError(f"flag key(s) {', '.join(map(repr, twice))} appear twice")
    return {
        "messageType": "data-sync",
        "data": {
            "eventType": "full",
            "featureFlags": [flag.to_featbit() for flag in built],
            "segments": [dict(segment) for segment in segments],
        },
    }
