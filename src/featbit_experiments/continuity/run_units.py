"""The unit each experiment run was started with, and the refusal of a run whose unit changed.

Changing an experiment's unit mid-run (conversation to user, say) would mix two randomizations
in one analysis, so the first unit an experiment run is evaluated with is recorded in the store,
shared by every instance, and an evaluation under another unit is refused with a
``unit_changed`` guardrail until the experiment gets a new run id or key. The unit on record is
cached in this process after the store first answers; a store that does not answer is checked
again on the next evaluation.
"""

from __future__ import annotations

from typing import Any

from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import FlagResolutionDetails

from ..flag_view import FlagView
from ..guardrails import EventFanout, Guardrail
from ..results import error_result
from .recovery import Recovery, unit_attributes
from .store import AssignmentStore, LedgerKey, StoreUnavailable


class RunUnits:
    """Records and checks each experiment run's unit.

    Args:
        store: Where the unit on record is kept (shared by every instance).
        events: Where ``unit_changed`` guardrails go.
        recovery: Reports the store being unavailable.
    """

    def __init__(self, store: AssignmentStore, events: EventFanout, recovery: Recovery) -> None:
        self._store = store
        self._events = events
        self._recovery = recovery
        self._on_record: dict[tuple[str, str], str] = {}

    def recorded(self, experiment_key: str, run_id: str) -> str | None:
        """The run's unit on record as this process knows it (None: not known yet)."""
        return self._on_record.get((experiment_key, run_id))

    def refusal(self, key: LedgerKey, view: FlagView) -> FlagResolutionDetails[Any] | None:
        """None when ``key``'s unit is the run's unit on record, else the refusal to serve."""
        run = (key.experiment_key, key.run_id)
        on_record = self._on_record.get(run)
        if on_record is None:
            try:
                on_record = self._store.record_unit(key.experiment_key, key.run_id, key.unit)
            except StoreUnavailable as error:
                self._recovery.unavailable(error, **unit_attributes(view, key))
                return None  # checked again on the next evaluation
            self._on_record[run] = on_record
        if on_record == key.unit:
            return None
        run_text = f" run {key.run_id!r}" if key.run_id else ""
        message = (
            f"experiment {key.experiment_key!r}{run_text} was started with unit {on_record!r} "
            f"and is now declared with unit {key.unit!r}; changing the unit is a new experiment: "
            "give it a new run_id or experiment key (evaluations are refused until then)"
        )
        self._events.guardrail(
            Guardrail.UNIT_CHANGED, message, recordedUnit=on_record, **unit_attributes(view, key)
        )
        return error_result(None, ErrorCode.GENERAL, message)
