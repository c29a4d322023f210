"""A read-only view of one FeatBit flag as ``fbclient`` stores it.

The provider needs more than ``variation_detail`` tells: the variation type (to refuse a type
mismatch before an exposure is sent), the rollouts and their ``dispatchKey`` (to catch a rollout
that buckets on another attribute than the experiment's unit), parsed variation values and the
flag version. A view is built once per flag version and cached by the provider.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from openfeature.flag_evaluation import FlagType

#: ``dispatchKey`` values that mean "bucket on the FeatBit user key".
KEY_DISPATCH = frozenset({"", "keyid", "key"})

_TYPES_FOR_FLAG_TYPE: Mapping[FlagType, str] = {
    FlagType.BOOLEAN: "boolean",
    FlagType.STRING: "string",
    FlagType.INTEGER: "number",
    FlagType.FLOAT: "number",
    FlagType.OBJECT: "json",
}


class ValueParseError(ValueError):
    """A variation value that does not parse as the flag's declared type."""


@dataclass(frozen=True)
class Rollout:
    """One place a flag can split traffic: the fallthrough or a rule."""

    where: str
    dispatch_key: str | None
    is_split: bool


@dataclass(frozen=True)
class FlagView:
    key: str
    version: int
    variation_type: str
    enabled: bool
    tags: tuple[str, ...]
    variation_names: Mapping[str, str]
    raw_values: Mapping[str, str]
    rollouts: tuple[Rollout, ...]
    has_targets: bool
    disabled_variation_id: str
    #: The flag exactly as FeatBit's store holds it (what FeatBit's evaluator is given).
    source: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def of(cls, flag: Mapping[str, Any]) -> FlagView:
        variations: Sequence[Mapping[str, Any]] = flag.get("variations") or []
        rollouts = [_rollout("fallthrough", flag.get("fallthrough") or {})]
        rollouts += [
            _rollout(f"rule {rule.get('name') or rule.get('id')!r}", rule)
            for rule in flag.get("rules") or []
        ]
        tags = flag.get("tags") or []
        return cls(
            key=str(flag.get("key") or flag.get("id")),
            version=int(flag.get("timestamp") or 0),
            variation_type=str(flag.get("variationType", "string")),
            enabled=bool(flag.get("isEnabled", False)),
            tags=tuple(t for t in tags if isinstance(t, str)),
            variation_names={str(v["id"]): str(v["name"]) for v in variations if v.get("name")},
            raw_values={str(v["id"]): str(v.get("value", "")) for v in variations},
            rollouts=tuple(rollouts),
            has_targets=any(t.get("keyIds") for t in flag.get("targetUsers") or []),
            disabled_variation_id=str(flag.get("disabledVariationId", "")),
            source=flag,
        )

    def accepts(self, flag_type: FlagType) -> bool:
        """Whether a caller asking for ``flag_type`` can be served by this flag at all."""
        return _TYPES_FOR_FLAG_TYPE[flag_type] == self.variation_type

    @property
    def has_rules(self) -> bool:
        return len(self.rollouts) > 1

    @property
    def is_static(self) -> bool:
        """One value for everyone: no targets, no rules, a fallthrough without a split."""
        return not self.has_targets and not self.has_rules and not self.rollouts[0].is_split

    @property
    def splits(self) -> tuple[Rollout, ...]:
        return tuple(r for r in self.rollouts if r.is_split)

    def rule_match_is_split(self) -> bool:
        """True when every rule splits traffic, so a rule match is a percentage assignment."""
        rules = self.rollouts[1:]
        return bool(rules) and all(r.is_split for r in rules)

    def dispatch_mismatches(self, unit_attributes: Sequence[str]) -> list[Rollout]:
        """Split rollouts that bucket on something other than the experiment's unit ID.

        The unit ID is the FeatBit key (``keyId``/``key``, which fbclient matches in any case);
        a rollout may also bucket on one of the unit's attribute names in any spelling, since
        the provider writes the ID under that exact name (see :meth:`unit_id_attributes`).
        """
        accepted = {name.lower() for name in unit_attributes}
        return [
            r
            for r in self.splits
            if (r.dispatch_key or "").lower() not in KEY_DISPATCH
            and (r.dispatch_key or "").lower() not in accepted
        ]

    def unit_id_attributes(self, unit_attributes: Sequence[str]) -> tuple[str, ...]:
        """The exact attribute names the split rollouts bucket on that name the unit.

        ``fbclient`` looks custom attributes up case-sensitively and hashes a missing one as
        ``""``, so the FeatBit user must carry the unit ID under each of these spellings
        (``thread_id``, ``ConversationId``, ...), not only under the canonical attribute.
        """
        accepted = {name.lower() for name in unit_attributes}
        names = {
            r.dispatch_key
            for r in self.splits
            if r.dispatch_key and r.dispatch_key.lower() in accepted
        }
        return tuple(sorted(names))

    def value_of(self, variation_id: str) -> Any:
        """The parsed value of a variation, typed by the flag's variation type."""
        raw = self.raw_values[variation_id]
        return parse_value(self.variation_type, raw, self.key)

    def variant_name(self, variation_id: str, configured: Mapping[str, str]) -> str:
        """A readable variant: configured name, else FeatBit's name, else the string value,
        else the variation id. A name given in FeatBit wins over a string value: it is the
        identifier the flag's owner chose (a prompt text makes a poor variant)."""
        raw = self.raw_values.get(variation_id)
        if variation_id in configured:
            return configured[variation_id]
        if raw is not None and raw in configured:
            return configured[raw]
        if variation_id in self.variation_names:
            return self.variation_names[variation_id]
        if self.variation_type == "string" and raw:
            return raw
        return variation_id


def _rollout(where: str, raw: Mapping[str, Any]) -> Rollout:
    variations = raw.get("variations") or []
    widths = [
        float(v["rollout"][1]) - float(v["rollout"][0])
        for v in variations
        if isinstance(v.get("rollout"), Sequence) and len(v["rollout"]) == 2
    ]
    is_split = sum(1 for w in widths if w > 0) > 1
    dispatch = raw.get("dispatchKey")
    return Rollout(where, dispatch if isinstance(dispatch, str) else None, is_split)


def parse_value(variation_type: str, raw: str, flag_key: str) -> Any:
    """Parse a wire value (always a string) into the flag type's Python value."""
    try:
        if variation_type == "boolean":
            lowered = raw.strip().lower()
            if lowered not in ("true", "false"):
                raise ValueError(f"{raw!r} is not a boolean")
            return lowered == "true"
        if variation_type == "number":
            number = float(raw)
            return (
                int(number)
                if number.is_integer() and "." not in raw and "e" not in raw.lower()
                else number
            )
        if variation_type == "json":
            value = json.loads(raw)
            if not isinstance(value, (dict, list)):
                raise ValueError("JSON value is not an object or array")
            return value
        return raw
    except ValueError as error:
        raise ValueParseError(
            f"flag {flag_key!r}: variation value does not parse as {variation_type}: {error}"
        ) from error
