"""What the resolver knows of one flag version before any evaluation: its view, what the unit
policy declares for it, what the experiment's unit makes of its rollouts and targets, and what
each variation serves (see ``flag_results``).

Computed once per flag version by :class:`~featbit_experiments.flag_plans.FlagPlans`. Pure:
no FeatBit calls, no events (``flag_plans`` reports what a plan finds).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from . import metadata_keys as meta
from .flag_results import FlagResults
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
        results: What each variation serves, and the reasons.
        metadata: An experiment's ``flag_metadata`` entries for an error (no variation).
        source: The flag exactly as read from FeatBit's store: the plan holds while the store
            holds this very object (the store replaces a flag's dict on every update).
    """

    view: FlagView
    declaration: Declaration | Refusal | None
    dispatch_mismatch: str | None
    unit_id_attributes: tuple[str, ...]
    unreachable_targets: str | None
    results: FlagResults
    metadata: Mapping[str, str | int]
    source: Mapping[str, Any]


def plan_flag(flag: Mapping[str, Any], policy: UnitPolicy) -> FlagPlan:
    view = FlagView.of(flag)
    declaration = policy.declaration_for(view.key, view.tags)
    if not isinstance(declaration, Declaration):
        return FlagPlan(view, declaration, None, (), None, FlagResults(view), {}, flag)
    experiment = declaration.experiment
    metadata: dict[str, str | int] = {
        meta.EXPERIMENT_KEY: experiment.experiment_key,
        meta.ASSIGNMENT_UNIT: declaration.unit.name,
    }
    if experiment.run_id:
        metadata[meta.RUN_ID] = experiment.run_id
    return FlagPlan(
        view,
        declaration,
        _dispatch_mismatch(view, declaration),
        view.unit_id_attributes(declaration.unit.attribute_names),
        _unreachable_targets(view, declaration),
        FlagResults(view, experiment.variant_names, metadata),
        metadata,
        flag,
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
