"""What the resolver knows of one flag version before any evaluation: its view, what the unit
policy declares for it, and what the experiment's unit makes of its rollouts and targets.

Computed once per flag version by :class:`~featbit_experiments.resolver.FlagResolver`. Pure:
no FeatBit calls, no events (the resolver reports what a plan finds).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from .flag_view import FlagView
from .policy import Declaration, Refusal, UnitPolicy
from .units import StandardUnit


class FlagPlan(NamedTuple):
    """One flag version as the resolver uses it.

    Attributes:
        view: The flag as read from FeatBit's store.
        declaration: The policy's declaration, its refusal, or None for an ordinary flag.
        dispatch_mismatch: Why the experiment is refused because a rollout buckets on another
            attribute than its unit, or None.
        unit_id_attributes: The exact attribute names the rollouts bucket on that name the
            unit (any spelling): the FeatBit user carries the unit ID under each.
        unreachable_targets: Why the flag's individual targets cannot match (the FeatBit key
            is another unit's ID), or None.
    """

    view: FlagView
    declaration: Declaration | Refusal | None
    dispatch_mismatch: str | None = None
    unit_id_attributes: tuple[str, ...] = ()
    unreachable_targets: str | None = None


def plan_flag(flag: Mapping[str, Any], policy: UnitPolicy) -> FlagPlan:
    view = FlagView.of(flag)
    declaration = policy.declaration_for(view.key, view.tags)
    if not isinstance(declaration, Declaration):
        return FlagPlan(view, declaration)
    return FlagPlan(
        view,
        declaration,
        _dispatch_mismatch(view, declaration),
        view.unit_id_attributes(declaration.unit.attribute_names),
        _unreachable_targets(view, declaration),
    )


def _dispatch_mismatch(view: FlagView, declaration: Declaration) -> str | None:
    unit = declaration.unit
    mismatches = view.dispatch_mismatches(unit.attribute_names)
    if not mismatches:
        return None
    where = ", ".join(f"{r.where} buckets on {r.dispatch_key!r}" for r in mismatches)
    return (
        f"experiment {declaration.experiment.experiment_key!r} randomizes by {unit.name} "
        f"({unit.attribute}) but FeatBit's {where}; refusing rather than bucketing on another "
        "attribute"
    )


def _unreachable_targets(view: FlagView, declaration: Declaration) -> str | None:
    """FeatBit's individual targeting matches the FeatBit key, which is the unit's ID: a user
    key listed in ``targetUsers`` never equals a conversation ID."""
    unit = declaration.unit
    if not view.has_targets or unit.name == StandardUnit.USER.value:
        return None
    return (
        f"flag {view.key!r} targets individual users, but experiment "
        f"{declaration.experiment.experiment_key!r} gives FeatBit the {unit.name} ID as the user "
        f"key, so those overrides match only a {unit.name} ID listed there; to target users, "
        "use a rule on the 'userId' attribute"
    )
