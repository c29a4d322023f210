"""The embedded assignment store: a bounded, thread-safe map in this process.

Units are kept per unit name in least-recently-seen order. A unit idle longer than its unit's
TTL is forgotten when it is next looked at, and a periodic sweep on the upkeep thread (see
``upkeep``) drops idle units from the old end without waiting for traffic; when the store holds
more than ``max_entries`` assignments, the least recently seen units are evicted whole. So
memory stays bounded however many distinct conversations pass through, and follows them down.

Memory per unit is what the bound multiplies, so a unit's first assignment is its record
(:class:`_Held`, a :class:`LedgerEntry` with three more slots) and a dict is made only for a
second experiment; units are keyed by their ID string alone, in one ordered map per unit name.

Every operation takes one short lock and never blocks on I/O, so it is safe to call from threads
and from asyncio code alike. It is not shared between processes: use a remote store for that.
Eviction and expiry are expected here, not losses: this store never reports a lost ledger.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping

from ..errors import ConfigurationError
from ..upkeep import UPKEEP
from .store import FALLBACK_TTL_SECONDS, LedgerEntry, LedgerKey, unit_ttls

#: Default bound on the number of assignments held (all units and experiments together).
DEFAULT_MAX_ENTRIES = 100_000

#: Default seconds between two sweeps of idle units.
DEFAULT_SWEEP_INTERVAL = 60.0

#: Most units dropped per lock hold while sweeping, so evaluations never wait long.
_SWEEP_CHUNK = 1_000

_RunRef = tuple[str, str]


class _Held(LedgerEntry):
    """A unit's first assignment, which is also the unit's record: its run, any further
    runs' entries, and when the unit was last seen in any of them."""

    __slots__ = ("more", "run", "seen")

    def __init__(self, run: _RunRef, entry: LedgerEntry) -> None:
        super().__init__(
            entry.variation_id, entry.unit, entry.assigned_at, entry.last_seen, entry.flag_version
        )
        self.run = run
        self.more: dict[_RunRef, LedgerEntry] | None = None
        self.seen = entry.last_seen

    def __len__(self) -> int:
        return 1 + (len(self.more) if self.more else 0)

    def get(self, run: _RunRef) -> LedgerEntry | None:
        if self.run == run:
            return self
        return None if self.more is None else self.more.get(run)


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
        self._units: dict[str, OrderedDict[str, _Held]] = {}
        self._markers: dict[_RunRef, str] = {}
        self._runs: dict[_RunRef, _RunRef] = {}
        self._size = 0
        self._sweep = UPKEEP.every(sweep_interval, self.purge_expired) if sweep_interval else None

    def __len__(self) -> int:
        """The number of assignments held."""
        return self._size

    # -- AssignmentStore ----------------------------------------------------------------

    def touch(self, key: LedgerKey) -> LedgerEntry | None:
        now = self._clock()
        with self._lock:
            held = self._live(key.unit, key.unit_id, now)
            if held is None:
                return None
            entry = held.get((key.experiment_key, key.run_id))
            if entry is None:
                return None
            entry.last_seen = held.seen = now
            self._units[key.unit].move_to_end(key.unit_id)
            return entry

    def claim(self, key: LedgerKey, entry: LedgerEntry) -> tuple[LedgerEntry, bool]:
        now = self._clock()
        with self._lock:
            run = self._run_ref(key)
            held = self._live(key.unit, key.unit_id, now)
            if held is None:
                return self._add_unit(key, run, entry, now), True
            self._seen(key, held, now)
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
            self._seen(key, held, now)
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
            units = self._units.get(unit)
            held = None if units is None else units.pop(unit_id, None)
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
        Units are in least-recently-seen order, so only expired ones are looked at."""
        dropped = 0
        for unit in list(self._units):
            ttl = self.ttl_seconds.get(unit, FALLBACK_TTL_SECONDS)
            while True:
                with self._lock:
                    chunk = self._drop_idle(unit, self._clock() - ttl)
                dropped += chunk
                if chunk < _SWEEP_CHUNK:
                    break
        return dropped

    # -- internals (called with the lock held) ------------------------------------------

    def _drop_idle(self, unit: str, seen_before: float) -> int:
        units = self._units.get(unit)
        dropped = 0
        for _ in range(_SWEEP_CHUNK):
            if not units:
                break
            unit_id, held = next(iter(units.items()))
            if held.seen >= seen_before:
                break
            del units[unit_id]
            dropped += len(held)
        self._size -= dropped
        return dropped

    def _live(self, unit: str, unit_id: str, now: float) -> _Held | None:
        units = self._units.get(unit)
        held = None if units is None else units.get(unit_id)
        if held is not None and now - held.seen > self.ttl_seconds.get(unit, FALLBACK_TTL_SECONDS):
            del units[unit_id]  # type: ignore[union-attr]
            self._size -= len(held)
            return None
        return held

    def _seen(self, key: LedgerKey, held: _Held, now: float) -> None:
        held.seen = now
        self._units[key.unit].move_to_end(key.unit_id)

    def _add_unit(self, key: LedgerKey, run: _RunRef, entry: LedgerEntry, now: float) -> _Held:
        held = _Held(run, entry)
        held.seen = now
        units = self._units.get(key.unit)
        if units is None:
            units = self._units[key.unit] = OrderedDict()
        units[key.unit_id] = held
        self._size += 1
        self._evict_beyond_bound()
        return held

    def _add_run(self, held: _Held, run: _RunRef, entry: LedgerEntry) -> None:
        if held.more is None:
            held.more = {}
        held.more[run] = entry
        self._size += 1
        self._evict_beyond_bound()

    def _run_ref(self, key: LedgerKey) -> _RunRef:
        """One shared (experiment key, run id) tuple per run, rather than one per unit."""
        run = (key.experiment_key, key.run_id)
        return self._runs.setdefault(run, run)

    def _evict_beyond_bound(self) -> None:
        """Evict the least recently seen units (across unit names) down to the bound."""
        while self._size > self.max_entries:
            oldest: OrderedDict[str, _Held] | None = None
            oldest_seen = 0.0
            for units in self._units.values():
                if units:
                    seen = next(iter(units.values())).seen
                    if oldest is None or seen < oldest_seen:
                        oldest, oldest_seen = units, seen
            if oldest is None:
                return
            _, held = oldest.popitem(last=False)
            self._size -= len(held)
