"""The FeatBit user of an experiment evaluation that has to ask FeatBit, and the other unit
IDs its context carries: each built once per evaluation, and only when asked for (a ledger hit
asks for neither).

The FeatBit key is the unit's ID, never another unit's; the other IDs ride along as
attributes (for joins and audits, and for rules on ``userId``). Nothing here evaluates.
"""

from __future__ import annotations

from openfeature.evaluation_context import EvaluationContext

from .featbit_user import featbit_user
from .flag_plan import FlagPlan
from .units import UnitCatalog, UnitKey


class ExperimentUser:
    """What a turn that asks FeatBit builds, each part once: the unit's FeatBit user and the
    other unit IDs the context carries."""

    __slots__ = ("_context", "_ids", "_plan", "_unit_key", "_units")

    def __init__(
        self, units: UnitCatalog, plan: FlagPlan, unit_key: UnitKey, context: EvaluationContext
    ) -> None:
        self._units = units
        self._plan = plan
        self._unit_key = unit_key
        self._context = context
        self._ids: dict[str, str] | None = None

    def other_ids(self) -> dict[str, str]:
        if self._ids is None:
            self._ids = self._units.known_ids(self._context, self._unit_key)
        return self._ids

    def user(self) -> dict[str, str]:
        # The unit ID also goes under each exact spelling a rollout buckets on, since fbclient
        # hashes a custom attribute it cannot find (case-sensitively) as "".
        unit_key = self._unit_key
        extra = {
            **self.other_ids(),
            **dict.fromkeys(self._plan.unit_id_attributes, unit_key.value),
            "assignmentUnit": unit_key.unit,
        }
        return featbit_user(unit_key.value, self._context.attributes, extra=extra)
