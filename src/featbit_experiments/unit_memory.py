"""A bounded, expiring map from unit IDs to small values: the per-unit memory kept next to the
assignment ledger (exposure deduplication, the units an instance has served).

A service holds one entry per active unit, so the layout is chosen for memory: two generations
of plain dicts and nothing else per entry (no timestamp, no linked-list node; the unit ID
string is the caller's own). A lookup moves an entry into the current generation;
:meth:`UnitMemory.expire` drops the older generation once the current one is ``ttl`` seconds
old, so an idle unit is forgotten between ``ttl`` and ``2 * ttl`` after it was last seen; and
when the current generation grows past half of ``max_units`` it is rotated early, so at most
about ``max_units`` entries are held. Values that are small ints (the common case) cost nothing
beyond the dict slot, since CPython shares them.

Not thread-safe: callers hold their own lock. It does no I/O and never calls back.
"""

from __future__ import annotations

from typing import Generic, TypeVar

V = TypeVar("V")


class UnitMemory(Generic[V]):
    """Unit ID -> value, forgotten when idle past ``ttl`` or pushed out by ``max_units``.

    Args:
        max_units: About the most entries held at once.
        ttl: Seconds between two rotations (the idle time after which a unit may be forgotten).
        now: The current time in seconds (monotonic), when the first generation starts.
    """

    __slots__ = ("_current", "_max_current", "_previous", "_started", "ttl")

    def __init__(self, max_units: int, ttl: float, now: float) -> None:
        if max_units < 1:
            raise ValueError("max_units must be at least 1")
        self._current: dict[str, V] = {}
        self._previous: dict[str, V] = {}
        self._max_current = max(1, max_units // 2)
        self._started = now
        self.ttl = ttl

    def __len__(self) -> int:
        return len(self._current) + len(self._previous)

    def get(self, unit_id: str) -> V | None:
        """The unit's value (and the unit counts as seen now), or None."""
        value = self._current.get(unit_id)
        if value is None:
            value = self._previous.pop(unit_id, None)
            if value is not None:
                self._add(unit_id, value)
        return value

    def peek(self, unit_id: str) -> V | None:
        """The unit's value if it was seen in the current generation, else None, changing
        nothing: one dict read, which callers may do without their lock (a miss is not an
        answer; they ask :meth:`get` under the lock)."""
        return self._current.get(unit_id)

    def put(self, unit_id: str, value: V) -> None:
        if unit_id in self._current:
            self._current[unit_id] = value
            return
        self._previous.pop(unit_id, None)
        self._add(unit_id, value)

    def pop(self, unit_id: str) -> V | None:
        """Forget a unit; its value, or None when it was not held."""
        value = self._current.pop(unit_id, None)
        held_before = self._previous.pop(unit_id, None)
        return value if value is not None else held_before

    def expire(self, now: float) -> int:
        """Rotate when the current generation is ``ttl`` old; how many entries were dropped."""
        if now - self._started < self.ttl:
            return 0
        return self._rotate(now)

    def clear(self) -> None:
        self._current = {}
        self._previous = {}

    def _add(self, unit_id: str, value: V) -> None:
        self._current[unit_id] = value
        if len(self._current) > self._max_current:
            self._rotate(self._started)

    def _rotate(self, started: float) -> int:
        dropped = len(self._previous)
        self._previous = self._current
        self._current = {}
        self._started = started
        return dropped
