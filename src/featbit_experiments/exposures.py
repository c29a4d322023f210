"""Exposure events: one record per experiment run, unit ID and variant.

An exposure says "this unit saw this variant". It is recorded from each
:class:`~featbit_experiments.assignment.Assignment` the resolver makes, but only the first time
for a given (experiment key, run id, unit ID, variant): repeated turns of one conversation do
not inflate the counts. A unit that is served a *different* variant gets a second exposure, so
an audit can see units that saw mixed variants instead of having them hidden.

In-process deduplication is bounded (least recently used units are forgotten first), so
memory stays flat on a long-running server; a forgotten unit may get one repeated exposure,
which analysis removes by the same key. Several instances can share deduplication through a
:class:`SeenKeys` store (set-if-absent, e.g. Redis ``SET NX``). This module also remembers each
unit's latest variant, which outcomes look up to join back to their exposure.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from . import event_schema as schema
from .assignment import Assignment
from .guardrails import EventFanout, Guardrail, utc_now
from .privacy import Privacy

logger = logging.getLogger("featbit_experiments")

#: Units remembered per recorder by default (a few MB at most).
DEFAULT_MAX_UNITS = 100_000
_SEPARATOR = "\x1f"  # cannot occur in a valid unit ID or experiment key


@runtime_checkable
class SeenKeys(Protocol):
    """A set-if-absent store shared by several processes, for cross-instance deduplication.

    ``first_time(key)`` records ``key`` and returns True only for the first caller ever (or
    within the store's retention); it may raise when the store is unreachable, in which case
    the exposure is sent anyway (a duplicate is recoverable, a lost exposure is not).
    """

    def first_time(self, key: str) -> bool: ...


class RedisSeenKeys:
    """:class:`SeenKeys` on a Redis server shared by every instance (``SET key 1 NX PX ttl``).

    Args:
        client: A ``redis.Redis`` client (give it a short ``socket_timeout``: an exposure
            that has not been seen locally waits for one round trip).
        key_prefix: Prepended to every key; one per environment.
        ttl_seconds: How long a key is remembered; after that a unit seen again gets one more
            exposure, which analysis removes by the same key.
    """

    def __init__(
        self,
        client: Any,
        *,
        key_prefix: str = "featbit-experiments:exposure:",
        ttl_seconds: float = 30 * 24 * 3600.0,
    ) -> None:
        self._client = client
        self._prefix = key_prefix
        self._ttl_ms = int(ttl_seconds * 1000)

    def first_time(self, key: str) -> bool:
        return bool(self._client.set(self._prefix + key, b"1", nx=True, px=self._ttl_ms))


@dataclass(frozen=True)
class RecordedVariant:
    """The variant a unit was last served in one experiment run."""

    variant: str
    variation_id: str


@dataclass
class _UnitState:
    latest: RecordedVariant
    seen: set[str] = field(default_factory=set)


class ExposureRecorder:
    """Records exposures from assignments (register :meth:`record` as an assignment listener).

    Args:
        events: Where exposure records go (privacy is applied there).
        privacy: Protects the unit ID inside keys sent to a shared ``SeenKeys`` store.
        shared: Optional cross-instance deduplication store.
        max_units: How many (experiment run, unit) pairs to remember in this process.
    """

    def __init__(
        self,
        events: EventFanout,
        *,
        privacy: Privacy | None = None,
        shared: SeenKeys | None = None,
        max_units: int = DEFAULT_MAX_UNITS,
    ) -> None:
        if max_units < 1:
            raise ValueError("max_units must be at least 1")
        self._events = events
        self._privacy = privacy or Privacy()
        self._shared = shared
        self._max_units = max_units
        self._units: OrderedDict[tuple[str, str, str], _UnitState] = OrderedDict()
        self._lock = threading.Lock()

    def record(self, assignment: Assignment) -> None:
        """Send an exposure unless this unit already had one for this variant."""
        experiment = assignment.experiment
        unit_id = assignment.unit_key.value
        unit = (experiment.experiment_key, experiment.run_id, unit_id)
        variation_id = assignment.variation_id
        with self._lock:
            state = self._units.get(unit)
            if state is not None:
                self._units.move_to_end(unit)
                if state.latest.variation_id == variation_id:
                    return  # the common case: another turn on the same variant
                state.latest = RecordedVariant(assignment.variant, variation_id)
                if variation_id in state.seen:
                    return
            else:
                state = _UnitState(RecordedVariant(assignment.variant, variation_id))
                self._units[unit] = state
                if len(self._units) > self._max_units:
                    self._units.popitem(last=False)
            state.seen.add(variation_id)
        if self._shared is not None and not self._first_across_instances(assignment):
            return
        self._events.emit(exposure_record(assignment))

    def variant_for(self, experiment_key: str, run_id: str, unit_id: str) -> RecordedVariant | None:
        """The variant this process last recorded for a unit, or None if unknown/forgotten."""
        with self._lock:
            state = self._units.get((experiment_key, run_id, unit_id))
            return state.latest if state is not None else None

    def forget(self) -> None:
        """Drop everything remembered (tests; a new run on the same process)."""
        with self._lock:
            self._units.clear()

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
