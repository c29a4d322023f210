"""What the ledger does when the store cannot say what a unit was given: the store is down
(``store_unavailable``), it lost what it held (``ledger_lost``), or it may lose it (start-up
``ledger_at_risk``). In each case the rule is the same: a unit this instance has served keeps
what it was served, and anything that moves a unit is a guardrail, never silent.

:class:`Recovery` keeps the instance's memory of served units (only next to a remote store that
can tell a lost shard from an expired unit, see ``served``), turns the store's loss count into
throttled ``ledger_lost`` guardrails with counts, and runs its upkeep (flushing counts, expiring
memory, the start-up durability check) on the upkeep thread. It decides nothing about rollback
modes: ``ledger`` calls it at the points where the store failed, answered nothing, or answered
something other than what this instance served.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from .. import event_schema as schema
from ..flag_view import FlagView
from ..guardrails import CountedGuardrail, EventFanout, Guardrail, ThrottledGuardrail
from ..results import LEDGER_REASON, Served
from ..upkeep import UPKEEP
from .served import Recalled, ServedUnits
from .store import AssignmentStore, LedgerEntry, LedgerKey, StoreUnavailable, unit_ttls

logger = logging.getLogger("featbit_experiments")

#: Seconds between two expiry checks of the memory of served units.
EXPIRY_INTERVAL = 60.0

LOSS_MESSAGE = (
    "the assignment store lost what it held (Redis restarted empty, was flushed, or failed "
    "over to an empty replica): units this instance had served keep their variation "
    "(unitsRestored) or are reported as switched (unitsSwitched); units no instance remembers "
    "are assigned again by FeatBit"
)


def unit_attributes(view: FlagView, key: LedgerKey) -> dict[str, Any]:
    """The guardrail attributes naming one unit of one experiment run."""
    return {
        schema.FLAG_KEY: view.key,
        schema.EXPERIMENT_KEY: key.experiment_key,
        schema.RUN_ID: key.run_id or None,
        schema.ASSIGNMENT_UNIT: key.unit,
        schema.UNIT_ID: key.unit_id,
    }


class Recovery:
    """Outage and loss handling for one ledger.

    Args:
        store: The ledger's store.
        events: Where guardrails go.
        report_interval: Minimum seconds between two ``store_unavailable`` or two
            ``ledger_lost`` guardrails.
    """

    def __init__(self, store: AssignmentStore, events: EventFanout, report_interval: float) -> None:
        self._store = store
        self._events = events
        self._outage = ThrottledGuardrail(events, Guardrail.STORE_UNAVAILABLE, report_interval)
        self._losses = CountedGuardrail(events, Guardrail.LEDGER_LOST, report_interval)
        self._losses_seen = getattr(store, "losses_seen", 0)
        self._cache_drops = CountedGuardrail(
            events, Guardrail.LEDGER_CACHE_DROPPED, report_interval
        )
        self._cache_drops_seen = getattr(store, "cache_drops", 0)
        self._drops_lock = threading.Lock()
        generation = getattr(store, "generation", None)
        self.served: ServedUnits | None = None
        self._tasks = [
            UPKEEP.every(report_interval, self._losses.flush),
            UPKEEP.every(report_interval, self._note_cache_drops),
        ]
        if store.is_remote and callable(generation):
            ttls = getattr(store, "ttl_seconds", None) or unit_ttls()
            self.served = ServedUnits(generation, ttls)
            self._tasks.append(UPKEEP.every(EXPIRY_INTERVAL, self.served.expire))
        if callable(getattr(store, "durability_problems", None)):
            self._tasks.append(UPKEEP.soon(self.check_store))

    # -- the store's state ----------------------------------------------------------------

    def unavailable(self, error: StoreUnavailable, **attributes: Any) -> None:
        self._outage.report(
            f"assignment store unavailable, serving what this instance served before, else "
            f"FeatBit's variation: {error}",
            **attributes,
        )

    def answered(self) -> None:
        """The store answered: end any outage report, and count shards it found emptied."""
        suppressed = self._outage.recovered()
        if suppressed is not None:
            logger.warning("assignment store is back (%d outage reports suppressed)", suppressed)
        losses = getattr(self._store, "losses_seen", 0)
        if losses != self._losses_seen:
            shards, self._losses_seen = losses - self._losses_seen, losses
            self._losses.add(LOSS_MESSAGE, {"shardsLost": shards})
        if getattr(self._store, "cache_drops", 0) != self._cache_drops_seen:
            self._note_cache_drops()

    def _note_cache_drops(self) -> None:
        """The store's local copy was dropped (its invalidation channel failed): one
        ``ledger_cache_dropped`` guardrail per interval, counting the drops."""
        with self._drops_lock:
            drops = getattr(self._store, "cache_drops", 0)
            dropped, self._cache_drops_seen = drops - self._cache_drops_seen, drops
        if dropped:
            reason = getattr(self._store, "cache_drop_reason", "")
            self._cache_drops.add(
                "the assignment store's local copy of the ledger lost its invalidation channel "
                f"({reason}) and was dropped; evaluations ask Redis until the channel is back",
                {"cacheDrops": dropped},
            )
        self._cache_drops.flush()

    def check_store(self) -> list[str]:
        """Ask the store what could make it lose assignments; each problem is logged and
        recorded as a ``ledger_at_risk`` guardrail (run once, soon after start-up)."""
        check = getattr(self._store, "durability_problems", None)
        problems: list[str] = list(check()) if callable(check) else []
        for problem in problems:
            logger.warning("assignment ledger at risk: %s", problem)
            self._events.guardrail(Guardrail.LEDGER_AT_RISK, problem)
        return problems

    def loss_counts(self) -> dict[str, int]:
        return self._losses.totals()

    def close(self) -> None:
        """Stop the upkeep tasks and record the loss counts not recorded yet."""
        for task in self._tasks:
            task.cancel()
        self._losses.flush(force=True)
        self._cache_drops.flush(force=True)

    # -- what this instance served --------------------------------------------------------

    def remember(self, key: LedgerKey, variation_id: str, *, store_answered: bool = True) -> None:
        if self.served is not None:
            self.served.remember(key, variation_id, store_answered=store_answered)

    def remembered(self, view: FlagView, key: LedgerKey) -> Served | None:
        """What this instance served the unit, when the flag still has it."""
        recalled = self.served.recall(key) if self.served is not None else None
        if recalled is None or recalled.variation_id not in view.raw_values:
            return None
        return Served(recalled.variation_id, LEDGER_REASON)

    def forget_unit(self, unit: str, unit_id: str) -> None:
        if self.served is not None:
            self.served.forget_unit(unit, unit_id)

    # -- the ledger did not have, or had something else -----------------------------------

    def restore(self, view: FlagView, key: LedgerKey, claimed: Served | None) -> Served | None:
        """A unit missing from the ledger that this instance served while the ledger may not
        have held it: put its variation back and serve it. ``claimed``: the variation just
        claimed in its place, if any. None when there is nothing to put back."""
        recalled = self.served.recall(key) if self.served is not None else None
        if (
            recalled is None
            or not recalled.in_doubt
            or recalled.variation_id not in view.raw_values
        ):
            return None
        if claimed is not None and claimed.variation_id == recalled.variation_id:
            self._restored(view, key, recalled)
            self.remember(key, claimed.variation_id)
            return None  # the claim put it back already
        now = time.time()
        entry = LedgerEntry(recalled.variation_id, key.unit, now, now, view.version)
        try:
            if claimed is None:
                entry, _ = self._store.claim(key, entry)
            else:
                self._store.replace(key, entry)
        except StoreUnavailable as error:
            self.unavailable(error, **unit_attributes(view, key))
        if entry.variation_id != recalled.variation_id:
            # Another instance claimed the unit between this one's read and its claim: the
            # ledger's variation stands (finish_active), and the move is reported. None when
            # the flag lacks it: the ledger then serves the default and says so.
            self.moved(view, key, entry.variation_id, contain=False)
            if entry.variation_id not in view.raw_values:
                return None
            return Served(entry.variation_id, LEDGER_REASON)
        self._restored(view, key, recalled)
        self.remember(key, entry.variation_id)
        return Served(entry.variation_id, LEDGER_REASON)

    def _restored(self, view: FlagView, key: LedgerKey, recalled: Recalled) -> None:
        if recalled.lost:
            self._losses.add(LOSS_MESSAGE, {"unitsRestored": 1}, **unit_attributes(view, key))

    def moved(self, view: FlagView, key: LedgerKey, variation_id: str, *, contain: bool) -> None:
        """The unit is served ``variation_id`` (from the ledger, or FeatBit under ``contain``)
        and the ledger had no record of what this instance served before it: report a move
        the ledger cannot (a loss, or a variation served during an outage), then remember."""
        recalled = self.served.recall(key) if self.served is not None else None
        if recalled is not None and recalled.in_doubt:
            switched = recalled.variation_id != variation_id
            if recalled.lost:
                counts = {"unitsSwitched": 1} if switched else {"unitsRestored": 1}
                self._losses.add(LOSS_MESSAGE, counts, **unit_attributes(view, key))
            if switched:
                self.switched(view, key, recalled.variation_id, variation_id, contain=contain)
        self.remember(key, variation_id)

    def switched(
        self, view: FlagView, key: LedgerKey, before: str, after: str, *, contain: bool
    ) -> None:
        mode = "contain" if contain else "finish_active, after the ledger lost it or was down"
        self._events.guardrail(
            Guardrail.VARIANT_SWITCHED,
            f"a {key.unit} moved from variation {before!r} to {after!r} in experiment "
            f"{key.experiment_key!r} (rollback: {mode}); leave this unit out of the analysis",
            fromVariationId=before,
            toVariationId=after,
            **unit_attributes(view, key),
        )
