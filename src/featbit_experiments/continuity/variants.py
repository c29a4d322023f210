"""Where an outcome finds the variant its unit was served, on every instance.

An outcome often arrives on another instance than the one that assigned its unit (a feedback
request, a later turn behind a load balancer). The exposures this process recorded answer for
free when they know the unit; otherwise the shared assignment ledger does (one round trip), and
its variation is named the way the assignment named it (the experiment's variant names over the
flag's current view). Nothing here records anything; an unavailable store is reported by the
ledger and the outcome goes without a variant, as an unknown one would.
"""

from __future__ import annotations

from collections.abc import Callable

from ..exposures import ExposureRecorder, RecordedVariant
from ..flag_view import FlagView
from ..policy import Experiment
from .ledger import AssignmentLedger
from .store import LedgerKey, StoreUnavailable


class ServedVariants:
    """A :class:`~featbit_experiments.outcomes.VariantLookup` over this process's exposures,
    then the ledger.

    Args:
        exposures: This process's exposure recorder.
        ledger: The assignment ledger, or None when there is none.
        view: The current view of a flag by key (``FlagResolver.view``).
    """

    def __init__(
        self,
        exposures: ExposureRecorder,
        ledger: AssignmentLedger | None,
        view: Callable[[str], FlagView | None],
    ) -> None:
        self._exposures = exposures
        self._ledger = ledger
        self._view = view

    def variant_for(self, experiment: Experiment, unit_id: str) -> RecordedVariant | None:
        known = self._exposures.variant_for(experiment.experiment_key, experiment.run_id, unit_id)
        if known is not None or self._ledger is None:
            return known
        variation_id = self._ledger_variation(self._ledger, experiment, unit_id)
        view = self._view(experiment.flag_key)
        if variation_id is None or view is None:
            return None
        return RecordedVariant(
            view.variant_name(variation_id, experiment.variant_names), variation_id
        )

    @staticmethod
    def _ledger_variation(
        ledger: AssignmentLedger, experiment: Experiment, unit_id: str
    ) -> str | None:
        """The ledger's variation for the unit (one round trip with a remote store, which also
        marks the unit seen), else what this instance served it; None when neither knows or
        the store is unavailable (then a ``store_unavailable`` guardrail)."""
        key = LedgerKey(experiment.experiment_key, experiment.run_id, experiment.unit, unit_id)
        try:
            entry = ledger.store.touch(key)
        except StoreUnavailable as error:
            ledger.recovery.unavailable(error, experimentKey=key.experiment_key, unitId=unit_id)
            entry = None
        else:
            ledger.recovery.answered()
        if entry is not None:
            return entry.variation_id
        served = ledger.recovery.served
        recalled = served.recall(key) if served is not None else None
        return None if recalled is None else recalled.variation_id
