"""What one flag version serves, decided once per version rather than per evaluation: each
variation's value as every OpenFeature type the flag accepts, its readable variant name, the
OpenFeature reason for each FeatBit reason, and an experiment's ``flag_metadata`` per variation.

Built by ``flag_plan`` with the flag's view; the resolver only looks answers up. Pure: no
FeatBit calls, no events. A JSON value is parsed again on every lookup, so no caller ever
holds an object another caller could change.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, NamedTuple

from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import FlagType, Reason

from . import metadata_keys as meta
from .flag_view import FlagView, ValueParseError
from .results import LEDGER_REASON

_FLAG_TYPES_OF: Mapping[str, tuple[FlagType, ...]] = {
    "boolean": (FlagType.BOOLEAN,),
    "string": (FlagType.STRING,),
    "number": (FlagType.INTEGER, FlagType.FLOAT),
    "json": (FlagType.OBJECT,),
}


class Mismatch(NamedTuple):
    """Why a variation cannot be served as the type asked for."""

    code: ErrorCode
    message: str


class Variation(NamedTuple):
    """One variation of one flag version, as the resolver serves it.

    Attributes:
        variation_id: FeatBit's variation id.
        variant: The readable variant name (the experiment's names first).
        values: The value as each OpenFeature type the flag accepts, or why it cannot be.
        metadata: An experiment's ``flag_metadata`` for this variation, but the unit's own
            entries (empty for an ordinary flag).

    Plain dicts, shared by every evaluation of the flag version: read them, copy to change.
    """

    variation_id: str
    variant: str
    values: dict[FlagType, Any]
    metadata: dict[str, str | int]


class FlagResults:
    """Every variation of one flag version, and FeatBit's reasons as OpenFeature's.

    Args:
        view: The flag version.
        variant_names: The experiment's variant names (by variation id or value), if any.
        metadata: The experiment's ``flag_metadata`` entries shared by every variation.
    """

    __slots__ = ("_reasons", "accepted", "unservable", "variations", "view")

    def __init__(
        self,
        view: FlagView,
        variant_names: Mapping[str, str] | None = None,
        metadata: Mapping[str, str | int] | None = None,
    ) -> None:
        self.view = view
        self.accepted = frozenset(_FLAG_TYPES_OF.get(view.variation_type, ()))
        #: By variation id (treat as read-only: shared by every evaluation of this version).
        self.variations: dict[str, Variation] = {
            variation_id: _variation(view, variation_id, self.accepted, variant_names, metadata)
            for variation_id in view.raw_values
        }
        #: For each type some variation cannot be served as: the first such problem. An
        #: experiment is refused for that type before anyone is assigned, so no unit is claimed
        #: (and no FeatBit exposure sent) for an arm its caller would never see.
        self.unservable: dict[FlagType, Mismatch] = {}
        for variation in self.variations.values():
            for flag_type, value in variation.values.items():
                if isinstance(value, Mismatch):
                    self.unservable.setdefault(flag_type, value)
        self._reasons = _reasons(view)

    def reason(self, featbit_reason: str) -> str:
        """FeatBit's reason string as OpenFeature's :class:`Reason`."""
        return self._reasons.get(featbit_reason, Reason.UNKNOWN)

    def value(self, variation: Variation, flag_type: FlagType) -> Any:
        """The variation's value as ``flag_type`` (a fresh object for JSON), or a Mismatch."""
        value = variation.values[flag_type]
        if flag_type is FlagType.OBJECT and not isinstance(value, Mismatch):
            return json.loads(self.view.raw_values[variation.variation_id])
        return value


def _variation(
    view: FlagView,
    variation_id: str,
    accepted: frozenset[FlagType],
    variant_names: Mapping[str, str] | None,
    metadata: Mapping[str, str | int] | None,
) -> Variation:
    values = {flag_type: _typed(view, variation_id, flag_type) for flag_type in accepted}
    shared: dict[str, str | int] = (
        {}
        if metadata is None
        else {**metadata, meta.VARIATION_ID: variation_id, meta.FLAG_VERSION: view.version}
    )
    return Variation(
        variation_id, view.variant_name(variation_id, variant_names or {}), values, shared
    )


def _typed(view: FlagView, variation_id: str, flag_type: FlagType) -> Any:
    try:
        value = view.value_of(variation_id)
    except ValueParseError as error:
        return Mismatch(ErrorCode.PARSE_ERROR, str(error))
    return coerce(value, flag_type, view.key)


def coerce(value: Any, flag_type: FlagType, flag_key: str) -> Any:
    """``value`` as the Python type OpenFeature expects for ``flag_type``, or a Mismatch."""
    if (
        flag_type is FlagType.FLOAT
        and isinstance(value, (int, float))
        and not isinstance(value, bool)
    ):
        return float(value)
    if flag_type is FlagType.INTEGER and not isinstance(value, bool):
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        return Mismatch(
            ErrorCode.TYPE_MISMATCH, f"flag {flag_key!r} served {value!r}, not an integer"
        )
    return value


def _reasons(view: FlagView) -> dict[str, str]:
    """FeatBit's reason strings mapped to OpenFeature's, for this flag version."""
    if view.is_static:
        fallthrough: str = Reason.STATIC
    else:
        fallthrough = Reason.SPLIT if view.rollouts[0].is_split else Reason.DEFAULT
    return {
        LEDGER_REASON: Reason.CACHED,
        "flag off": Reason.DISABLED,
        "target match": Reason.TARGETING_MATCH,
        "rule match": Reason.SPLIT if view.rule_match_is_split() else Reason.TARGETING_MATCH,
        "fall through all rules": fallthrough,
    }
