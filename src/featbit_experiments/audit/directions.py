"""Which way each metric is better: what the options say when they name a direction, else
what the outcome records say (``metricDirection``, written by the producers), else the
role's default (higher for the primary and secondary metrics, lower for guardrails).

Records that disagree with each other, or with the options, are a conflict the audit
reports; a deciding metric whose direction only the records could give, and they disagree,
cannot decide anything (see ``decision``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from .. import event_schema as schema
from .model import DirectionConflict
from .options import AuditOptions

__all__ = ["MetricDirection", "resolve_direction"]

_HIGHER = {schema.HIGHER_IS_BETTER: True, schema.LOWER_IS_BETTER: False}


@dataclass(frozen=True)
class MetricDirection:
    """A metric's role, direction and where the direction came from; ``conflict`` when the
    records disagree (``undecided`` when nothing settles it)."""

    role: str
    higher_is_better: bool
    source: str
    conflict: DirectionConflict | None
    undecided: bool


def resolve_direction(
    metric: str, logged: Mapping[str, int], options: AuditOptions
) -> MetricDirection:
    role, goal = options.goal_for(metric)
    default = goal.higher_is_better if goal is not None else True
    said = {_normal(value) for value in logged}
    known = {value for value in said if value in _HIGHER}

    def conflict(chosen: bool) -> DirectionConflict:
        name = schema.HIGHER_IS_BETTER if chosen else schema.LOWER_IS_BETTER
        return DirectionConflict(metric, dict(logged), name)

    if goal is not None and goal.explicit:
        disagrees = bool(said) and said != {_name(goal.higher_is_better)}
        return MetricDirection(
            role,
            goal.higher_is_better,
            "options",
            conflict(goal.higher_is_better) if disagrees else None,
            False,
        )
    if len(said) == 1 and known:
        return MetricDirection(role, _HIGHER[next(iter(known))], "log", None, False)
    if said:
        return MetricDirection(role, default, "default", conflict(default), True)
    return MetricDirection(role, default, "default", None, False)


def _normal(value: str) -> str:
    return value.strip().lower()


def _name(higher_is_better: bool) -> str:
    return schema.HIGHER_IS_BETTER if higher_is_better else schema.LOWER_IS_BETTER
