"""The in-memory store's table of one unit name's units, laid out for memory.

A service holds one record per active unit, so every byte here is multiplied by the store's
bound. A unit's first assignment is its record (:class:`Held`, a :class:`LedgerEntry` with three
more slots), a dict is made only for a second experiment, and units are keyed by their ID string
alone. Recency is kept the way an operating system keeps it for pages ("clock", second chance):
a deque of IDs in arrival order and one bit per unit set when it is seen again, instead of a
linked list per unit; a lookup never reorders anything, and eviction passes over a unit seen
since its last pass once before evicting it.

Not thread-safe: the store holds its lock around every call. No I/O.
"""

from __future__ import annotations

from collections import deque

from .store import LedgerEntry

RunRef = tuple[str, str]


class Held(LedgerEntry):
    """A unit's first assignment, which is also the unit's record: its run (or every run's entry
    once it has several), when the unit was last seen in any of them, and its clock bit."""

    __slots__ = ("recent", "run", "seen")

    def __init__(self, run: RunRef, entry: LedgerEntry, now: float) -> None:
        super().__init__(
            entry.variation_id, entry.unit, entry.assigned_at, entry.last_seen, entry.flag_version
        )
        self.run: RunRef | dict[RunRef, LedgerEntry] = run
        self.seen = now
        self.recent = False

    def __len__(self) -> int:
        return len(self.run) if isinstance(self.run, dict) else 1

    def get(self, run: RunRef) -> LedgerEntry | None:
        if self.run == run:
            return self
        return self.run.get(run) if isinstance(self.run, dict) else None

    def add(self, run: RunRef, entry: LedgerEntry) -> None:
        """Hold ``entry`` for a further run."""
        if not isinstance(self.run, dict):
            self.run = {self.run: self}
        self.run[run] = entry


class UnitTable:
    """The units of one unit name: ID -> record, and their order of arrival."""

    __slots__ = ("by_id", "order")

    def __init__(self) -> None:
        self.by_id: dict[str, Held] = {}
        self.order: deque[str] = deque()

    def __len__(self) -> int:
        return len(self.by_id)

    def add(self, unit_id: str, held: Held) -> None:
        self.by_id[unit_id] = held
        self.order.append(unit_id)

    def pop(self, unit_id: str) -> Held | None:
        held = self.by_id.pop(unit_id, None)
        if len(self.order) > 2 * len(self.by_id) + 1024:  # IDs of units gone: rebuild
            self.order = deque(self.by_id)
        return held

    def oldest_seen(self) -> float | None:
        """When the unit at the head of the order was last seen (None when empty)."""
        while self.order:
            held = self.by_id.get(self.order[0])
            if held is not None:
                return held.seen
            self.order.popleft()
        return None

    def evict(self) -> Held | None:
        """Evict one unit: the first in order not seen since its last pass."""
        while self.order:
            unit_id = self.order.popleft()
            held = self.by_id.get(unit_id)
            if held is None:
                continue
            if held.recent:
                held.recent = False
                self.order.append(unit_id)
                continue
            del self.by_id[unit_id]
            return held
        return None

    def sweep(self, idle_before: float, limit: int) -> tuple[int, int]:
        """Look at up to ``limit`` units from the head, dropping those last seen before
        ``idle_before``; (assignments dropped, units looked at)."""
        dropped = looked = 0
        order, by_id = self.order, self.by_id
        while order and looked < limit:
            unit_id = order.popleft()
            looked += 1
            held = by_id.get(unit_id)
            if held is None:
                continue
            if held.seen < idle_before:
                del by_id[unit_id]
                dropped += len(held)
            else:
                order.append(unit_id)
        return dropped, looked
