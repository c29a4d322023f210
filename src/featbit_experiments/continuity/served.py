"""What this instance has served each unit, next to a remote ledger: the memory that keeps a
unit on its variant when the shared ledger cannot say.

The ledger in Redis is the source of truth, but it can be unreachable (an outage) or lose what
it held (a restart with no persistence, a flush, failover to an empty replica). Then the one
thing an instance still knows is what it served each unit itself. :class:`ServedUnits` keeps
that, with the store's generation of the unit's shard at the time (see ``RedisStore.generation``):
a unit that is missing from the ledger although this instance served it at an older generation
was lost, not expired or ended; one served while the store did not answer is treated the same
way, since nobody can say.

Memory per unit is one dict slot and (almost always) a shared small int, in a
:class:`~featbit_experiments.unit_memory.UnitMemory` per experiment run: bounded, and forgotten
with the unit's idle TTL. Local stores need none of this: they lose nothing they do not mean to.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import NamedTuple

from ..unit_memory import UnitMemory
from .store import FALLBACK_TTL_SECONDS, LedgerKey

#: Units remembered per experiment run by default.
DEFAULT_MAX_UNITS = 100_000
#: Generation code meaning "served while the store did not answer".
_UNKNOWN = 0
#: A unit's value packs (generation code, variation number) as code * _SLOTS + number, which
#: stays a shared small int for the usual two to four variations and early generations.
_SLOTS = 64


class Recalled(NamedTuple):
    """What this instance served a unit.

    ``lost``: the unit's shard was found emptied since. ``unconfirmed``: it was served while
    the store did not answer, so the ledger may never have held it.
    """

    variation_id: str
    lost: bool
    unconfirmed: bool

    @property
    def in_doubt(self) -> bool:
        """The ledger may not hold what this instance served."""
        return self.lost or self.unconfirmed


class _Run:
    __slots__ = ("numbers", "unit", "units", "variations")

    def __init__(self, unit: str, units: UnitMemory[int]) -> None:
        self.unit = unit
        self.units = units
        self.variations: list[str] = []
        self.numbers: dict[str, int] = {}

    def number(self, variation_id: str) -> int:
        number = self.numbers.get(variation_id)
        if number is None:
            number = self.numbers[variation_id] = len(self.variations)
            self.variations.append(variation_id)
        return number


class ServedUnits:
    """The variation this instance last served each unit of each run.

    Args:
        generation: The store's generation of a unit's shard, ``(unit, unit id) -> int``.
        ttl_seconds: Idle TTL per unit name (the store's).
        max_units: How many units to remember per experiment run.
        clock: Monotonic seconds.
    """

    def __init__(
        self,
        generation: Callable[[str, str], int],
        ttl_seconds: Mapping[str, float],
        *,
        max_units: int = DEFAULT_MAX_UNITS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._generation = generation
        self._ttls = dict(ttl_seconds)
        self._max_units = max_units
        self._clock = clock
        self._runs: dict[tuple[str, str], _Run] = {}
        self._lock = threading.Lock()

    def remember(self, key: LedgerKey, variation_id: str, *, store_answered: bool) -> None:
        """Note what was served; ``store_answered`` is False when the ledger could not be asked."""
        code = self._generation(key.unit, key.unit_id) + 1 if store_answered else _UNKNOWN
        with self._lock:
            run = self._run(key)
            number = run.number(variation_id)
            if number >= _SLOTS:
                return  # a flag with this many variations is not remembered
            run.units.put(key.unit_id, code * _SLOTS + number)

    def recall(self, key: LedgerKey) -> Recalled | None:
        """What this instance last served the unit, or None when it does not know."""
        with self._lock:
            run = self._runs.get((key.experiment_key, key.run_id))
            value = None if run is None else run.units.get(key.unit_id)
            if run is None or value is None:
                return None
            code, number = divmod(value, _SLOTS)
            variation_id = run.variations[number]
        if code == _UNKNOWN:
            return Recalled(variation_id, lost=False, unconfirmed=True)
        lost = code != self._generation(key.unit, key.unit_id) + 1
        return Recalled(variation_id, lost=lost, unconfirmed=False)

    def forget_unit(self, unit: str, unit_id: str) -> None:
        with self._lock:
            for run in self._runs.values():
                if run.unit == unit:
                    run.units.pop(unit_id)

    def expire(self) -> int:
        """Forget units idle past their TTL; how many."""
        now = self._clock()
        with self._lock:
            return sum(run.units.expire(now) for run in self._runs.values())

    def __len__(self) -> int:
        with self._lock:
            return sum(len(run.units) for run in self._runs.values())

    def _run(self, key: LedgerKey) -> _Run:
        run = self._runs.get((key.experiment_key, key.run_id))
        if run is None:
            ttl = self._ttls.get(key.unit, FALLBACK_TTL_SECONDS)
            run = _Run(key.unit, UnitMemory(self._max_units, ttl, self._clock()))
            self._runs[(key.experiment_key, key.run_id)] = run
        return run
