"""The embedded assignment store: a bounded, thread-safe map in this process.

Units are kept in least-recently-seen order. A unit idle longer than its unit's TTL is forgotten
when it is next looked at (and swept from the old end as new units arrive); when the store holds
more than ``max_entries`` assignments, the least recently seen units are evicted whole. So memory
stays bounded however many distinct conversations pass through.

Every operation takes one short lock and never blocks on I/O, so it is safe to call from threads
and from asyncio code alike. It is not shared between processes: use a remote store for that.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping

from ..errors import ConfigurationError
from .store import FALLBACK_TTL_SECONDS, LedgerEntry, LedgerKey, unit_ttls

#: Default bound on the number of assignments held (all units and experiments together).
DEFAULT_MAX_ENTRIES = 100_000

#: Every this many new assignments, up to this many expired units are swept from the old end.
_SWEEP_EVERY = 16

_UnitRef = tuple[str, str]
_RunRef = tuple[str, str]


class _Unit:
    """One unit's assignments, by (experiment key, run id), and when it was last seen.

    Most units are in one experiment, so the first assignment sits in two slots and a dict
    is made only for a second one: a dict per unit would double the store's memory.
    """

    __slots__ = ("entry", "last_seen", "more", "run")

    def __init__(self, last_seen: float) -> None:
        self.last_seen = last_seen
        self.run: _RunRef | None = None
        self.entry: LedgerEntry | None = None
        self.more: dict[_RunRef, LedgerEntry] | None = None

    def __len__(self) -> int:
        return (self.run is not None) + (len(self.more) if self.more else 0)

    def get(self, run: _RunRef) -> LedgerEntry | None:
        if self.run == run:
            return self.entry
        return None if self.more is None else self.more.get(run)

    def put(self, run: _RunRef, entry: LedgerEntry) -> bool:
        """Store ``entry`` for ``run``; True when the unit had no entry for it."""
        if self.run is None or self.run == run:
            added = self.run is None
            self.run, self.entry = run, entry
            return added
        if self.more is None:
            self.more = {}
        added = run not in self.more
        self.more[run] = entry
        return added


class InMemoryStore:
    """A bounded in-process assignment store (the provider's default).

    Args:
        max_entries: The most assignments held at once; beyond it the least recently seen
            units are evicted.
        ttl_seconds: Idle TTL per unit name, merged over
            :data:`~featbit_experiments.continuity.DEFAULT_TTL_SECONDS`.
        clock: Seconds since the epoch; injectable so TTLs can be tested without waiting.
    """

    is_remote = False

    def __init__(
        self,
        *,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        ttl_seconds: Mapping[str, float] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if max_entries < 1:
            raise ConfigurationError(f"max_entries must be at least 1, got {max_entries!r}")
        self.max_entries = max_entries
        self.ttl_seconds = unit_ttls(ttl_seconds)
        self._clock = clock
        self._lock = threading.Lock()
        self._units: OrderedDict[_UnitRef, _Unit] = OrderedDict()
        self._markers: dict[_RunRef, str] = {}
        self._runs: dict[_RunRef, _RunRef] = {}
        self._size = 0
        self._claims = 0

    def __len__(self) -> int:
        """The number of assignments held."""
        return self._size

    # -- AssignmentStore ----------------------------------------------------------------

    def touch(self, key: LedgerKey) -> LedgerEntry | None:
        now = self._clock()
        ref = (key.unit, key.unit_id)
        with self._lock:
            unit = self._live_unit(ref, now)
            if unit is None:
                return None
            entry = unit.get((key.experiment_key, key.run_id))
            if entry is None:
                return None
            entry.last_seen = unit.last_seen = now
            self._units.move_to_end(ref)
            return entry

    def claim(self, key: LedgerKey, entry: LedgerEntry) -> tuple[LedgerEntry, bool]:
        now = self._clock()
        ref = (key.unit, key.unit_id)
        with self._lock:
            run = self._run_ref(key)
            unit = self._live_unit(ref, now)
            if unit is None:
                unit = self._units[ref] = _Unit(now)
            else:
                unit.last_seen = now
                self._units.move_to_end(ref)
            existing = unit.get(run)
            if existing is not None:
                existing.last_seen = now
                return existing, False
            unit.put(run, entry)
            self._size += 1
            self._make_room(now)
            return entry, True

    def replace(self, key: LedgerKey, entry: LedgerEntry) -> LedgerEntry | None:
        now = self._clock()
        ref = (key.unit, key.unit_id)
        with self._lock:
            run = self._run_ref(key)
            unit = self._live_unit(ref, now)
            if unit is None:
                unit = self._units[ref] = _Unit(now)
            else:
                unit.last_seen = now
                self._units.move_to_end(ref)
            previous = unit.get(run)
            if previous is None:
                unit.put(run, entry)
                self._size += 1
                self._make_room(now)
                return None
            seen_before = previous.last_seen
            if previous.variation_id == entry.variation_id:
                previous.last_seen = now
            else:
                unit.put(run, entry)
            return LedgerEntry(
                previous.variation_id,
                previous.unit,
                previous.assigned_at,
                seen_before,
                previous.flag_version,
            )

    def end_unit(self, unit: str, unit_id: str) -> bool:
        with self._lock:
            record = self._units.pop((unit, unit_id), None)
            if record is None:
                return False
            self._size -= len(record)
            return len(record) > 0

    def record_unit(self, experiment_key: str, run_id: str, unit: str) -> str:
        with self._lock:
            return self._markers.setdefault((experiment_key, run_id), unit)

    def close(self) -> None:
        with self._lock:
            self._units.clear()
            self._size = 0

    # -- maintenance --------------------------------------------------------------------

    def purge_expired(self) -> int:
        """Forget every unit idle past its TTL; returns how many assignments were dropped."""
        now = self._clock()
        dropped = 0
        with self._lock:
            for ref, unit in list(self._units.items()):
                if self._expired(ref, unit, now):
                    dropped += self._drop(ref, unit)
        return dropped

    # -- internals (called with the lock held) ------------------------------------------

    def _expired(self, ref: _UnitRef, unit: _Unit, now: float) -> bool:
        return now - unit.last_seen > self.ttl_seconds.get(ref[0], FALLBACK_TTL_SECONDS)

    def _live_unit(self, ref: _UnitRef, now: float) -> _Unit | None:
        unit = self._units.get(ref)
        if unit is not None and self._expired(ref, unit, now):
            self._drop(ref, unit)
            return None
        return unit

    def _drop(self, ref: _UnitRef, unit: _Unit) -> int:
        del self._units[ref]
        self._size -= len(unit)
        return len(unit)

    def _run_ref(self, key: LedgerKey) -> _RunRef:
        """One shared (experiment key, run id) tuple per run, rather than one per unit."""
        run = (key.experiment_key, key.run_id)
        return self._runs.setdefault(run, run)

    def _make_room(self, now: float) -> None:
        """Evict down to the bound; every few claims also sweep expired units off the old end."""
        self._claims += 1
        if self._claims % _SWEEP_EVERY == 0:
            for _ in range(_SWEEP_EVERY):
                ref = next(iter(self._units), None)
                if ref is None or not self._expired(ref, self._units[ref], now):
                    break
                self._drop(ref, self._units[ref])
        while self._size > self.max_entries and self._units:
            _, unit = self._units.popitem(last=False)
            self._size -= len(unit)
