"""Exposure events: one record per experiment run, unit ID and variant.

An exposure says "this unit saw this variant". It is recorded from each
:class:`~featbit_experiments.assignment.Assignment` the resolver makes, but only the first time
for a given (experiment key, run id, unit ID, variant): repeated turns of one conversation do
not inflate the counts. A unit that is served a *different* variant gets a second exposure, so
an audit can see units that saw mixed variants instead of having them hidden.

In-process deduplication follows the units' lifetime: a unit is forgotten when it ends
(:meth:`ExposureRecorder.forget_unit`), when it has been idle past its unit's TTL (checked on the
upkeep thread, without traffic), or when a run holds more than ``max_units``; its memory is one
dict slot per unit (see ``unit_memory``). A forgotten unit that comes back may get one repeated
exposure, which analysis removes by the same key. Several instances can share deduplication
through a :class:`SeenKeys` store (set-if-absent, e.g. Redis ``SET NX``). This module also
remembers each unit's latest variant, which outcomes look up to join back to their exposure.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeAlias

from . import event_schema as schema
from .assignment import Assignment
from .continuity.store import FALLBACK_TTL_SECONDS, unit_ttls
from .guardrails import EventFanout, Guardrail, utc_now
from .privacy import Privacy
from .seen_keys import RedisSeenKeys, SeenKeys
from .unit_memory import UnitMemory
from .upkeep import UPKEEP

logger = logging.getLogger("featbit_experiments")

#: Units remembered per experiment run by default.
DEFAULT_MAX_UNITS = 100_000
#: Default seconds between two expiry checks of the units remembered.
DEFAULT_SWEEP_INTERVAL = 60.0
_SEPARATOR = "\x1f"  # cannot occur in a valid unit ID or experiment key

__all__ = ["ExposureRecorder", "RecordedVariant", "RedisSeenKeys", "SeenKeys", "exposure_record"]


@dataclass(frozen=True)
class RecordedVariant:
    """The variant a unit was last served in one experiment run."""

    variant: str
    variation_id: str


#: A unit's state in one run: the number of the only variant it has seen, or (the number of
#: its latest variant, a bit mask of every variant it has seen) once it has seen several.
_UnitState: TypeAlias = int | tuple[int, int]


class _RunUnits:
    """One experiment run's deduplication: its variants, numbered, and each unit's state."""

    __slots__ = ("numbers", "unit", "units", "variants")

    def __init__(self, unit: str, units: UnitMemory[_UnitState]) -> None:
        self.unit = unit
        self.units = units
        self.variants: list[RecordedVariant] = []
        self.numbers: dict[str, int] = {}

    def number(self, variant: str, variation_id: str) -> int:
        number = self.numbers.get(variation_id)
        if number is None:
            number = self.numbers[variation_id] = len(self.variants)
            self.variants.append(RecordedVariant(variant, variation_id))
        elif self.variants[number].variant != variant:  # the run renamed its variants
            self.variants[number] = RecordedVariant(variant, variation_id)
        return number


class ExposureRecorder:
    """Records exposures from assignments (register :meth:`record` as an assignment listener).

    Args:
        events: Where exposure records go (privacy is applied there).
        privacy: Protects the unit ID inside keys sent to a shared ``SeenKeys`` store.
        shared: Optional cross-instance deduplication store.
        max_units: How many units to remember per experiment run in this process.
        ttl_seconds: Idle time per unit name after which a unit is forgotten (between once and
            twice this), merged over the ledger's
            :data:`~featbit_experiments.continuity.DEFAULT_TTL_SECONDS`.
        sweep_interval: Seconds between two expiry checks on the upkeep thread.
        clock: Monotonic seconds (injectable for tests).
    """

    def __init__(
        self,
        events: EventFanout,
        *,
        privacy: Privacy | None = None,
        shared: SeenKeys | None = None,
        max_units: int = DEFAULT_MAX_UNITS,
        ttl_seconds: Mapping[str, float] | None = None,
        sweep_interval: float | None = DEFAULT_SWEEP_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_units < 1:
            raise ValueError("max_units must be at least 1")
        self._events = events
        self._privacy = privacy or Privacy()
        self._shared = shared
        self._max_units = max_units
        self._ttls = unit_ttls(ttl_seconds)
        self._clock = clock
        self._runs: dict[tuple[str, str], _RunUnits] = {}
        self._lock = threading.Lock()
        self._sweep = UPKEEP.every(sweep_interval, self.expire) if sweep_interval else None

    def exposed(
        self, experiment_key: str, run_id: str, unit_id: str, variation_id: str, variant: str
    ) -> bool:
        """Whether the unit's latest exposure in the run is to this variant, as recorded
        lately: a later turn on the same variant, which :meth:`record` would skip. Takes no
        lock (dict reads only), so concurrent turns never queue here; False means "ask
        :meth:`record`", which decides under the lock."""
        run = self._runs.get((experiment_key, run_id))
        if run is None:
            return False
        number = run.numbers.get(variation_id)
        return (
            number is not None
            and run.units.peek(unit_id) == number
            and run.variants[number].variant == variant
        )

    def record(self, assignment: Assignment) -> None:
        """Send an exposure unless this unit already had one for this variant."""
        experiment = assignment.experiment
        unit_id = assignment.unit_key.value
        with self._lock:
            run = self._run(experiment.experiment_key, experiment.run_id, experiment.unit)
            number = run.number(assignment.variant, assignment.variation_id)
            state = run.units.get(unit_id)
            if state is None:
                run.units.put(unit_id, number)
            elif isinstance(state, int):
                if state == number:
                    return  # the common case: another turn on the same variant
                run.units.put(unit_id, (number, (1 << state) | (1 << number)))
            else:
                latest, seen = state
                if latest == number:
                    return
                run.units.put(unit_id, (number, seen | (1 << number)))
                if seen >> number & 1:
                    return  # back on a variant it has already been exposed to
        if self._shared is not None and not self._first_across_instances(assignment):
            return
        self._events.emit(exposure_record(assignment))

    def variant_for(self, experiment_key: str, run_id: str, unit_id: str) -> RecordedVariant | None:
        """The variant this process last recorded for a unit, or None if unknown/forgotten."""
        with self._lock:
            run = self._runs.get((experiment_key, run_id))
            state = None if run is None else run.units.get(unit_id)
            if run is None or state is None:
                return None
            return run.variants[state if isinstance(state, int) else state[0]]

    def forget_unit(self, unit: str, unit_id: str) -> None:
        """Release everything remembered for one unit (it ended)."""
        with self._lock:
            for run in self._runs.values():
                if run.unit == unit:
                    run.units.pop(unit_id)

    def close(self) -> None:
        """Stop the periodic expiry (for ``FeatBitProvider.shutdown``)."""
        if self._sweep is not None:
            self._sweep.cancel()

    def forget(self) -> None:
        """Drop everything remembered (tests; a new run on the same process)."""
        with self._lock:
            for run in self._runs.values():
                run.units.clear()

    def expire(self) -> int:
        """Forget units idle past their TTL (the upkeep thread calls this); how many."""
        now = self._clock()
        with self._lock:
            return sum(run.units.expire(now) for run in self._runs.values())

    def __len__(self) -> int:
        """Units remembered, over every run."""
        with self._lock:
            return sum(len(run.units) for run in self._runs.values())

    def _run(self, experiment_key: str, run_id: str, unit: str) -> _RunUnits:
        run = self._runs.get((experiment_key, run_id))
        if run is None:
            ttl = self._ttls.get(unit, FALLBACK_TTL_SECONDS)
            memory: UnitMemory[_UnitState] = UnitMemory(self._max_units, ttl, self._clock())
            run = self._runs[(experiment_key, run_id)] = _RunUnits(unit, memory)
        return run

    def _first_across_instances(self, assignment: Assignment) -> bool:
        assert self._shared is not None
        key = self.shared_key(assignment)
        try:
            return bool(self._shared.first_time(key))
        except Exception as error:
            self._events.guardrail(
                Guardrail.STORE_UNAVAILABLE,
                f"exposure deduplication store failed ({type(error).__name__}); "
                "sending the exposure, which may repeat one from another instance",
                flagKey=assignment.flag_key,
                experimentKey=assignment.experiment_key,
                assignmentUnit=assignment.unit,
                unitId=assignment.unit_key.value,
            )
            return True

    def shared_key(self, assignment: Assignment) -> str:
        """The shared-store key: experiment, run, unit, (protected) unit ID and variation id.

        With hashing on the ID is pseudonymized here too; with omission on, the raw ID is
        used, since the store needs some key and sits in the application's own infrastructure.
        """
        unit_id = assignment.unit_key.value
        if not self._privacy.is_raw:
            unit_id = self._privacy.protect(unit_id) or unit_id
        experiment = assignment.experiment
        return _SEPARATOR.join(
            (
                "exposure",
                experiment.experiment_key,
                experiment.run_id,
                assignment.unit,
                unit_id,
                assignment.variation_id,
            )
        )


def exposure_record(assignment: Assignment) -> dict[str, Any]:
    """The exposure record for an assignment, with raw IDs (the event fanout protects them)."""
    experiment = assignment.experiment
    record: dict[str, Any] = {
        schema.EVENT: schema.EXPOSURE,
        schema.TIMESTAMP: utc_now(),
        schema.EXPERIMENT_KEY: experiment.experiment_key,
        schema.RUN_ID: experiment.run_id,
        schema.FLAG_KEY: experiment.flag_key,
        schema.FLAG_VERSION: assignment.flag_version,
        schema.ASSIGNMENT_UNIT: assignment.unit,
        schema.UNIT_ID: assignment.unit_key.value,
    }
    record.update(assignment.other_ids)
    record[schema.VARIATION] = assignment.variant
    record[schema.VARIATION_ID] = assignment.variation_id
    record[schema.REASON] = str(assignment.reason)
    return record
