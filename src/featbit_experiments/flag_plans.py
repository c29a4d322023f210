"""The plan of every flag the provider evaluates, kept per flag version.

A plan (see ``flag_plan``) is computed the first time a flag version is evaluated and reused
until FeatBit's store holds another version. Whether the plan still holds is one identity test
against the flag the store returns (the store replaces a flag's dict on every update), so an
evaluation reads the store once and does no other work for the flag. What a plan finds once
per version (individual targets an experiment cannot reach) is reported here, once.
"""

from __future__ import annotations

import threading
from typing import Any

from . import _sdk
from .flag_plan import FlagPlan, plan_flag
from .flag_view import FlagView
from .guardrails import EventFanout, Guardrail
from .policy import Declaration, UnitPolicy


class FlagPlans:
    """Plans of the flags in one FeatBit client's store, by flag key.

    Args:
        client: The FeatBit client whose store is read.
        policy: The unit key policy plans apply.
        events: Where ``targeting_unit_mismatch`` guardrails go.
    """

    def __init__(self, client: Any, policy: UnitPolicy, events: EventFanout) -> None:
        self._read_flag = _sdk.flag_reader(client)
        self._policy = policy
        self._events = events
        self._plans: dict[str, FlagPlan] = {}
        self._reported: set[tuple[str, int]] = set()
        self._lock = threading.Lock()

    def plan(self, flag_key: str) -> FlagPlan | None:
        """The plan of the flag's version in the store now, or None when FeatBit does not know
        the flag. A plain dict replace is atomic, so concurrent evaluations need no lock."""
        flag = self._read_flag(flag_key)
        if not flag:
            return None
        cached = self._plans.get(flag_key)
        if cached is not None and cached.source is flag:
            return cached
        plan = plan_flag(flag, self._policy)
        if plan.unreachable_targets is not None:
            self._report_unreachable_targets(plan)
        self._plans[flag_key] = plan
        return plan

    def view(self, flag_key: str) -> FlagView | None:
        """The current view of a flag, or None when FeatBit does not know it."""
        plan = self.plan(flag_key)
        return None if plan is None else plan.view

    def _report_unreachable_targets(self, plan: FlagPlan) -> None:
        """Once per flag version (not per evaluation)."""
        view, declaration = plan.view, plan.declaration
        assert isinstance(declaration, Declaration) and plan.unreachable_targets is not None
        with self._lock:
            if (view.key, view.version) in self._reported:
                return
            self._reported.add((view.key, view.version))
        self._events.guardrail(
            Guardrail.TARGETING_UNIT_MISMATCH,
            plan.unreachable_targets,
            flagKey=view.key,
            experimentKey=declaration.experiment.experiment_key,
            assignmentUnit=declaration.unit.name,
            flagVersion=view.version,
        )
