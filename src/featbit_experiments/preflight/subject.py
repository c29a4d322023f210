"""One experiment as every preflight check sees it: the policy's declaration in force, the
FeatBit flag (raw and as the resolver views it), the team's plan for it, and the policy's
metrics that belong to it.

Also what the checks read from a flag's rollouts that :class:`~featbit_experiments.flag_view.
FlagView` does not keep: which variations are served at all, and the fallthrough's weights.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..flag_view import FlagView
from ..policy import Declaration, Experiment, Metric, UnitPolicy
from ..units import Unit
from .plan import ExperimentPlan

__all__ = ["Subject", "fallthrough_weights", "served_variation_ids", "targeted_keys"]


@dataclass(frozen=True)
class Subject:
    """An experiment flag whose declaration the policy accepts."""

    declaration: Declaration
    flag: Mapping[str, Any]
    view: FlagView
    plan: ExperimentPlan
    policy: UnitPolicy

    @property
    def experiment(self) -> Experiment:
        return self.declaration.experiment

    @property
    def unit(self) -> Unit:
        return self.declaration.unit

    @property
    def metrics(self) -> list[Metric]:
        """The policy's metrics declared for this experiment."""
        key = self.experiment.experiment_key
        return [m for m in self.policy.metrics.values() if key in m.experiments]

    def variant_of(self, variation_id: str) -> str:
        return self.view.variant_name(variation_id, self.experiment.variant_names)


def _widths(served: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    widths: dict[str, float] = {}
    for item in served:
        bounds = item.get("rollout")
        if isinstance(bounds, Sequence) and len(bounds) == 2:
            width = float(bounds[1]) - float(bounds[0])
            if width > 0:
                widths[str(item.get("id"))] = widths.get(str(item.get("id")), 0.0) + width
    return widths


def fallthrough_weights(flag: Mapping[str, Any]) -> dict[str, float]:
    """The fallthrough's share of traffic per variation id (only those it serves)."""
    return _widths((flag.get("fallthrough") or {}).get("variations") or [])


def served_variation_ids(flag: Mapping[str, Any]) -> set[str]:
    """Variations some unit can be given while the flag is on: by the fallthrough, a rule or
    individual targeting."""
    served = set(fallthrough_weights(flag))
    for rule in flag.get("rules") or []:
        served.update(_widths(rule.get("variations") or []))
    for target in flag.get("targetUsers") or []:
        if target.get("keyIds"):
            served.add(str(target.get("variationId")))
    return served


def targeted_keys(flag: Mapping[str, Any]) -> int:
    """How many keys FeatBit's individual targeting lists."""
    return sum(len(target.get("keyIds") or []) for target in flag.get("targetUsers") or [])
