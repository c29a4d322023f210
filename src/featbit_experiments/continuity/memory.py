"""The embedded assignment store: a bounded, thread-safe map in this process.

A unit idle longer than its unit's TTL is forgotten when it is next looked at, and a periodic
sweep on the upkeep thread (see ``upkeep``) drops idle units without waiting for traffic; when
the store holds more than ``max_entries`` assignments, the least recently seen units are evicted
whole (approximately: see ``_unit_table`` for the layout and the clock order that keep a held
unit small). So memory stays bounded however many distinct conversations pass through, and
follows them down.

A lookup of a unit that has not expired takes no lock; every other operation takes one short
lock. Nothing blocks on I/O, so it is safe to call from threads and from asyncio code alike. It
is not shared between processes: use a remote store for that. Eviction and expiry are expected
here, not losses: this store never reports a lost ledger.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping

from ..errors import ConfigurationError
from ..upkeep import UPKEEP
from ._unit_table import Held, RunRef, UnitTable
from .store import FALLBACK_TTL_SECONDS, LedgerEntry, LedgerKey, unit_ttls

#: Default bound on the number of assignments held (all units and experiments together).
DEFAULT_MAX_ENTRIES = 100_000

#: Default seconds between two sweeps of idle units.
DEFAULT_SWEEP_INTERVAL = 60.0

#: Most units looked at per lock hold while sweeping, so evaluations never wait long.
_SWEEP_CHUNK = 1_000


class InMemoryStore:
    """A bounded in-process assignment store (the provider's default).

    Args:
        max_entries: The most assignments held at once; beyond it the least recently seen
            units are evicted.
        ttl_seconds: Idle TTL per unit name, merged over
            :data:`~featbit_experiments.continuity.DEFAULT_TTL_SECONDS`.
        clock: Seconds since the epoch; injectable so TTLs can be tested without waiting.
        sweep_interval: Seconds between two sweeps of idle units on the upkeep thread (None:
            only as units are looked at).
    """

    is_remote = False

    def __init__(
        self,
        *,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        ttl_seconds: Mapping[str, float] | None = None,
        clock: Callable[[], float] = time.time,
        sweep_interval: float | None = DEFAULT_SWEEP_INTERVAL,
    ) -> None:
        if max_entries < 1:
            raise ConfigurationError(f"max_entries must be at least 1, got {max_entries!r}")
        self.max_entries = max_entries
        self.ttl_seconds = unit_ttls(ttl_seconds)
        self._clock = clock
        self._lock = threading.Lock()
        self._units: dict[str, UnitTable] = {}
        self._markers: dict[RunRef, str] = {}
        self._runs: dict[RunRef, RunRef] = {}
        self._size = 0
        self._sweep = UPKEEP.every(sweep_interval, self.purge_expired) if sweep_interval else None

    def __len__(self) -> int:
        """The number of assignments held."""
        return self._size

    # -- AssignmentStore ----------------------------------------------------------------

    def touch(self, key: LedgerKey) -> LedgerEntry | None:
        """Without the lock unless the unit has expired: a hit or a miss is a few dict reads
        (each atomic), so concurrent turns never queue here. A unit evicted meanwhile may
        still answer once, as if it had been looked at just before."""
        now = self._clock()
        table = self._units.get(key.unit)
        held = None if table is None else table.by_id.get(key.unit_id)
        if held is None:
            return None
        if now - held.seen <= self.ttl_seconds.get(key.unit, FALLBACK_TTL_SECONDS):
            entry = held.get((key.experiment_key, key.run_id))
            if entry is not None:
                entry.last_seen = held.seen = now
                held.recent = True
            return entry
        with self._lock:
            held = self._live(key.unit, key.unit_id, now)
            if held is None:
                return None
            entry = held.get((key.experiment_key, key.run_id))
            if entry is None:
                return None
            entry.last_seen = held.seen = now
            held.recent = True
            return entry

    def claim(self, key: LedgerKey, entry: LedgerEntry) -> tuple[LedgerEntry, bool]:
        now = self._clock()
        with self._lock:
            run = self._run_ref(key)
            held = self._live(key.unit, key.unit_id, now)
            if held is None:
                return self._add_unit(key, run, entry, now), True
            held.seen, held.recent = now, True
            existing = held.get(run)
            if existing is not None:
                existing.last_seen = now
                return existing, False
            self._add_run(held, run, entry)
            return entry, True

    def replace(self, key: LedgerKey, entry: LedgerEntry) -> LedgerEntry | None:
        now = self._clock()
        with self._lock:
            run = self._run_ref(key)
            held = self._live(key.unit, key.unit_id, now)
            if held is None:
                self._add_unit(key, run, entry, now)
                return None
            held.seen, held.recent = now, True
            previous = held.get(run)
            if previous is None:
                self._add_run(held, run, entry)
                return None
            before = LedgerEntry(
                previous.variation_id,
                previous.unit,
                previous.assigned_at,
                previous.last_seen,
                previous.flag_version,
            )
            if previous.variation_id == entry.variation_id:
                previous.last_seen = now
            else:
                previous.variation_id = entry.variation_id
                previous.assigned_at = entry.assigned_at
                previous.flag_version = entry.flag_version
                previous.last_seen = now
            return before

    def end_unit(self, unit: str, unit_id: str) -> bool:
        with self._lock:
            table = self._units.get(unit)
            held = None if table is None else table.pop(unit_id)
            if held is None:
                return False
            self._size -= len(held)
            return True

    def record_unit(self, experiment_key: str, run_id: str, unit: str) -> str:
        with self._lock:
            return self._markers.setdefault((experiment_key, run_id), unit)

    def close(self) -> None:
        if self._sweep is not None:
            self._sweep.cancel()
        with self._lock:
            self._units.clear()
            self._size = 0

    # -- maintenance --------------------------------------------------------------------

    def purge_expired(self) -> int:
        """Forget every unit idle past its TTL; returns how many assignments were dropped.
        Looks at every unit once, a chunk per lock hold (the upkeep thread calls this)."""
        dropped = 0
        for unit, table in list(self._units.items()):
            idle_before = self._clock() - self.ttl_seconds.get(unit, FALLBACK_TTL_SECONDS)
            remaining = len(table.order)
            while remaining > 0:
                with self._lock:
                    chunk, looked = table.sweep(idle_before, min(remaining, _SWEEP_CHUNK))
                    self._size -= chunk
                dropped += chunk
                remaining = remaining - looked if looked else 0
        return dropped

    # -- internals (called with the lock held) ------------------------------------------

    def _live(self, unit: str, unit_id: str, now: float) -> Held | None:
        table = self._units.get(unit)
        held = None if table is None else table.by_id.get(unit_id)
        if held is not None and now - held.seen > self.ttl_seconds.get(unit, FALLBACK_TTL_SECONDS):
            table.pop(unit_id)  # type: ignore[union-attr]
            self._size -= len(held)
            return None
        return held

    def _add_unit(self, key: LedgerKey, run: RunRef, entry: LedgerEntry, now: float) -> Held:
        held = Held(run, entry, now)
        table = self._units.get(key.unit)
        if table is None:
            table = self._units[key.unit] = UnitTable()
        table.add(key.unit_id, held)
        self._size += 1
        self._evict_beyond_bound()
        return held

    def _add_run(self, held: Held, run: RunRef, entry: LedgerEntry) -> None:
        held.add(run, entry)
        self._size += 1
        self._evict_beyond_bound()

    def _run_ref(self, key: LedgerKey) -> RunRef:
        """One shared (experiment key, run id) tuple per run, rather than one per unit."""
        run = (key.experiment_key, key.run_id)
        return self._runs.setdefault(run, run)

    def _evict_beyond_bound(self) -> None:
        """Evict down to the bound, from the unit name whose oldest unit was seen longest ago."""
        while self._size > self.max_entries:
            oldest: UnitTable | None = None
            oldest_seen = 0.0
            for table in self._units.values():
                seen = table.oldest_seen()
                if seen is not None and (oldest is None or seen < oldest_seen):
                    oldest, oldest_seen = table, seen
            held = None if oldest is None else oldest.evict()
            if held is None:
                return
            self._size -= len(held)
