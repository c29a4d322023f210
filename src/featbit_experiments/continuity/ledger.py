"""The continuity policy: which variation an experiment unit gets, given what it got before.

:class:`AssignmentLedger` wraps the FeatBit evaluation step of an experiment evaluation
(:class:`~featbit_experiments.featbit_evaluation.FeatBitEvaluation`):

* ``finish_active``: a unit already in the ledger keeps its variation (served without asking
  FeatBit) until it ends or idles past its TTL; a new unit gets FeatBit's variation, claimed
  atomically so instances racing on it agree. A flag turned off still wins when the experiment's
  ``kill_switch_wins`` says so.
* ``contain``: FeatBit's current variation applies; a unit that moves is recorded as a
  ``variant_switched`` guardrail so the analysis can leave it out.
* A stored variation is never re-randomized: if FeatBit errors, the ledger's variation is
  served; if the flag no longer has it, or nothing is known, the caller gets the default with
  a ``fallback_used`` guardrail.
* The unit an experiment run was started with is recorded; evaluating it under another unit is
  refused with a ``unit_changed`` guardrail until the experiment gets a new run id or key
  (``run_units``).
* A store that fails never breaks an evaluation, and a store that lost what it held never moves
  a unit silently: see ``recovery`` (``store_unavailable``, ``ledger_lost``, ``ledger_at_risk``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import FlagResolutionDetails

from ..featbit_evaluation import FeatBitEvaluation
from ..flag_view import FlagView
from ..guardrails import EventFanout, Guardrail
from ..policy import Declaration, Experiment, RollbackMode
from ..results import LEDGER_REASON, Result, Served, error_result
from ..units import UnitKey
from .recovery import Recovery, unit_attributes
from .run_units import RunUnits
from .store import AssignmentStore, LedgerEntry, LedgerKey, StoreUnavailable

logger = logging.getLogger("featbit_experiments")

#: Builds the unit's FeatBit user, when FeatBit has to be asked (a ledger hit never does).
UserOf = Callable[[], dict[str, str]]

#: Default minimum seconds between two ``store_unavailable`` (or ``ledger_lost``) guardrails.
DEFAULT_OUTAGE_REPORT_INTERVAL = 10.0


class AssignmentLedger:
    """Keeps experiment units on the variation they were first given, per the experiment's
    rollback mode.

    Args:
        store: Where assignments are kept.
        featbit: FeatBit's evaluation step. With a remote store a new unit costs one round
            trip: FeatBit is asked first, its insight held back, and the variation claimed
            (or the unit's existing one learnt) in one call.
        events: Where guardrails go.
        outage_report_interval: Minimum seconds between two ``store_unavailable`` (or two
            ``ledger_lost``) guardrails.
    """

    def __init__(
        self,
        store: AssignmentStore,
        featbit: FeatBitEvaluation,
        events: EventFanout,
        *,
        outage_report_interval: float = DEFAULT_OUTAGE_REPORT_INTERVAL,
    ) -> None:
        self.store = store
        self._featbit = featbit
        self._events = events
        self._remote = store.is_remote
        #: A remote store's local copy, answered without a round trip (see ``_ledger_cache``).
        self._cached: Callable[[LedgerKey], LedgerEntry | None] | None = getattr(
            store, "cached", None
        )
        self.recovery = Recovery(store, events, outage_report_interval)
        self._runs = RunUnits(store, events, self.recovery)

    # -- public -------------------------------------------------------------------------

    def assign(
        self, view: FlagView, declaration: Declaration, unit_key: UnitKey, user: UserOf
    ) -> Result:
        """The variation for one experiment unit; never raises."""
        experiment = declaration.experiment
        key = LedgerKey(experiment.experiment_key, experiment.run_id, unit_key.unit, unit_key.value)
        refusal = self._runs.refusal(key, view)
        if refusal is not None:
            return refusal
        if experiment.rollback is RollbackMode.CONTAIN:
            return self._contain(view, key, user)
        return self._finish_active(view, experiment, key, user)

    def held(self, view: FlagView, declaration: Declaration, unit_key: UnitKey) -> Served | None:
        """The unit's variation when the ledger can say it at once, without FeatBit or a round
        trip: a ``finish_active`` run whose unit is on record, a flag not switched off under
        ``kill_switch_wins``, the unit's entry at hand (a local store's, or a remote store's
        local copy) with a variation the flag still has. None: ask :meth:`assign`."""
        experiment = declaration.experiment
        if experiment.rollback is RollbackMode.CONTAIN or (
            not view.enabled and experiment.kill_switch_wins
        ):
            return None
        if self._runs.recorded(experiment.experiment_key, experiment.run_id) != unit_key.unit:
            return None
        key = LedgerKey(experiment.experiment_key, experiment.run_id, unit_key.unit, unit_key.value)
        if self._remote:
            entry = None if self._cached is None else self._cached(key)
        else:
            try:
                entry = self.store.touch(key)
            except StoreUnavailable:
                return None  # assign() asks again, and reports it
        if entry is None or entry.variation_id not in view.raw_values:
            return None
        return Served(entry.variation_id, LEDGER_REASON)

    def end_unit(self, unit: str, unit_id: str) -> bool:
        """Release a unit's assignments (and this instance's memory of it); False when it had
        none or the store is unavailable."""
        self.recovery.forget_unit(unit, unit_id)
        try:
            ended = self.store.end_unit(unit, unit_id)
        except StoreUnavailable as error:
            self.recovery.unavailable(error, operation="end_unit", assignmentUnit=unit)
            return False
        self.recovery.answered()
        return ended

    def close(self) -> None:
        """Stop this ledger's upkeep and record pending ``ledger_lost`` counts (the store is
        closed by its owner). For ``FeatBitProvider.shutdown``."""
        self.recovery.close()

    # -- rollback modes -----------------------------------------------------------------

    def _finish_active(
        self, view: FlagView, experiment: Experiment, key: LedgerKey, user: UserOf
    ) -> Result:
        if not view.enabled and experiment.kill_switch_wins:
            return self._ask_featbit(view, user)
        if self._remote:
            pending = self._featbit.deferred(view.key, user(), view.source)
            if pending is not None:
                return self._claim_evaluated(view, key, *pending)
        try:
            entry = self.store.touch(key)
        except StoreUnavailable as error:
            self.recovery.unavailable(error, **unit_attributes(view, key))
            return self._without_store(view, key, user)
        if self._remote:  # a local store always answers: nothing to note
            self.recovery.answered()
        if entry is not None:
            return self._serve_entry(view, key, entry, contain=False)
        restored = self.recovery.restore(view, key, None)
        if restored is not None:
            return restored
        served = self._ask_featbit(view, user)
        if not isinstance(served, Served):
            return self._no_variant(view, key, served)
        try:
            winner, _ = self.store.claim(key, _entry(key, served, view))
        except StoreUnavailable as error:
            self.recovery.unavailable(error, **unit_attributes(view, key))
            self.recovery.remember(key, served.variation_id, store_answered=False)
            return served
        if winner.variation_id != served.variation_id:
            return self._serve_entry(view, key, winner, contain=False)
        self.recovery.remember(key, served.variation_id)
        return served

    def _claim_evaluated(
        self, view: FlagView, key: LedgerKey, served: Served, record_insight: Callable[[], None]
    ) -> Result:
        """One round trip: claim FeatBit's variation, or learn the unit's existing one."""
        try:
            winner, created = self.store.claim(key, _entry(key, served, view))
        except StoreUnavailable as error:
            self.recovery.unavailable(error, **unit_attributes(view, key))
            remembered = self.recovery.remembered(view, key)
            if remembered is not None and remembered.variation_id != served.variation_id:
                return remembered
            record_insight()
            if remembered is None:
                self.recovery.remember(key, served.variation_id, store_answered=False)
            return served
        self.recovery.answered()
        if not created:
            return self._serve_entry(view, key, winner, contain=False)
        restored = self.recovery.restore(view, key, served)
        if restored is not None:
            return restored
        record_insight()
        self.recovery.remember(key, served.variation_id)
        return served

    def _without_store(self, view: FlagView, key: LedgerKey, user: UserOf) -> Result:
        """The store did not answer: what this instance served the unit, else FeatBit's."""
        remembered = self.recovery.remembered(view, key)
        if remembered is not None:
            return remembered
        served = self._ask_featbit(view, user)
        if not isinstance(served, Served):
            return self._no_variant(view, key, served)
        self.recovery.remember(key, served.variation_id, store_answered=False)
        return served

    def _contain(self, view: FlagView, key: LedgerKey, user: UserOf) -> Result:
        served = self._ask_featbit(view, user)
        if not isinstance(served, Served):
            try:
                entry = self.store.touch(key)
            except StoreUnavailable as error:
                self.recovery.unavailable(error, **unit_attributes(view, key))
                return self.recovery.remembered(view, key) or self._no_variant(view, key, served)
            if entry is None:
                return self._no_variant(view, key, served)
            return self._serve_entry(view, key, entry, contain=True)
        try:
            previous = self.store.replace(key, _entry(key, served, view))
        except StoreUnavailable as error:
            self.recovery.unavailable(error, **unit_attributes(view, key))
            before = self.recovery.remembered(view, key)
            if before is not None and before.variation_id != served.variation_id:
                self.recovery.switched(
                    view, key, before.variation_id, served.variation_id, contain=True
                )
            self.recovery.remember(key, served.variation_id, store_answered=False)
            return served
        self.recovery.answered()
        if previous is None:
            self.recovery.moved(view, key, served.variation_id, contain=True)
            return served
        if previous.variation_id != served.variation_id:
            self.recovery.switched(
                view, key, previous.variation_id, served.variation_id, contain=True
            )
        self.recovery.remember(key, served.variation_id)
        return served

    # -- outcomes -------------------------------------------------------------------------

    def _serve_entry(
        self, view: FlagView, key: LedgerKey, entry: LedgerEntry, *, contain: bool
    ) -> Result:
        """The ledger's variation for the unit, or the default when the flag lost it.
        ``contain``: the experiment's rollback mode, named in a ``variant_switched`` report."""
        if entry.variation_id in view.raw_values:
            if self.recovery.served is not None:  # a remote store: note what was served
                self.recovery.moved(view, key, entry.variation_id, contain=contain)
            return Served(entry.variation_id, LEDGER_REASON)
        message = (
            f"a {key.unit} was assigned variation {entry.variation_id!r} of "
            f"experiment {key.experiment_key!r}, which flag {view.key!r} no longer has; serving "
            "the default rather than re-randomizing an active unit"
        )
        self._events.guardrail(
            Guardrail.FALLBACK_USED,
            message,
            variationId=entry.variation_id,
            **unit_attributes(view, key),
        )
        return error_result(None, ErrorCode.GENERAL, message)

    def _no_variant(
        self, view: FlagView, key: LedgerKey, failure: FlagResolutionDetails[Any]
    ) -> FlagResolutionDetails[Any]:
        self._events.guardrail(
            Guardrail.FALLBACK_USED,
            f"no variation is known for this {key.unit} in experiment "
            f"{key.experiment_key!r} ({failure.error_message}); serving the default",
            errorCode=failure.error_code.value if failure.error_code else None,
            **unit_attributes(view, key),
        )
        return failure

    def _ask_featbit(self, view: FlagView, user: UserOf) -> Result:
        """FeatBit's evaluation (which records its insight); an exception the SDK lets escape
        becomes an error result, so an active unit can still get its ledger variation."""
        try:
            return self._featbit.evaluate(view.key, user(), view.source)
        except Exception as error:
            logger.exception("FeatBit evaluation of %r failed", view.key)
            return error_result(None, ErrorCode.GENERAL, f"FeatBit evaluation failed: {error}")


def _entry(key: LedgerKey, served: Served, view: FlagView) -> LedgerEntry:
    now = time.time()
    return LedgerEntry(served.variation_id, key.unit, now, now, view.version)
