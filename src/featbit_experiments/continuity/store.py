"""The assignment store contract: what the ledger remembers per unit and experiment run, and the
few atomic operations it needs from a store.

An entry is keyed by (experiment key, run id, unit, unit ID) and says which FeatBit variation the
unit was first given, when, and under which flag version. Stores group a unit's entries together,
so ending a unit releases all of its experiments at once, and they expire a unit that has been
idle longer than its unit's TTL.

A store raises :class:`StoreUnavailable` (and nothing else) when it cannot answer; the ledger turns
that into a guardrail and goes on without it. Nothing here evaluates flags.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import NamedTuple, Protocol, runtime_checkable

from ..errors import ConfigurationError

_HOUR = 3600.0
_DAY = 24 * _HOUR

#: Idle TTL per unit, in seconds: how long a unit keeps its assignments after it was last seen.
#: A request lives through its retries, a conversation for a working session, a user or an
#: account for a typical experiment window.
DEFAULT_TTL_SECONDS: Mapping[str, float] = MappingProxyType(
    {
        "request": 15 * 60.0,
        "conversation": 12 * _HOUR,
        "workflow": _DAY,
        "user": 30 * _DAY,
        "account": 30 * _DAY,
    }
)

#: Idle TTL for custom units that :data:`DEFAULT_TTL_SECONDS` does not name.
FALLBACK_TTL_SECONDS = _DAY


class LedgerKey(NamedTuple):
    """Which assignment: one unit in one run of one experiment."""

    experiment_key: str
    run_id: str
    unit: str
    unit_id: str


@dataclass(slots=True)
class LedgerEntry:
    """What the ledger remembers about one assignment.

    Mutable on purpose: a store marks an entry seen by updating ``last_seen`` in place, which
    keeps a ledger hit free of allocations. Treat entries a store returns as read-only.

    Args:
        variation_id: The FeatBit variation the unit was first given.
        unit: The unit's name (``"conversation"``).
        assigned_at: When it was first given, seconds since the epoch.
        last_seen: When the unit was last evaluated in this experiment.
        flag_version: FeatBit's flag version at the first assignment.
    """

    variation_id: str
    unit: str
    assigned_at: float
    last_seen: float
    flag_version: int


class StoreUnavailable(Exception):
    """The store could not answer (down, slow, restarting). The only error a store raises."""


@runtime_checkable
class AssignmentStore(Protocol):
    """Where the assignment ledger lives.

    Every operation is atomic per unit, so two instances sharing a store agree on one variant.
    Each call is at most one round trip for a remote store.
    """

    #: True when every call is network I/O: the ledger then evaluates FeatBit first and claims
    #: in a single call, and async callers keep the call off the event loop.
    is_remote: bool

    def touch(self, key: LedgerKey) -> LedgerEntry | None:
        """The unit's entry if it has one and has not expired; marks it seen now."""
        ...

    def claim(self, key: LedgerKey, entry: LedgerEntry) -> tuple[LedgerEntry, bool]:
        """Store ``entry`` unless the key already has one. Returns the entry in force and
        whether it is the one just stored; an existing entry is marked seen now."""
        ...

    def replace(self, key: LedgerKey, entry: LedgerEntry) -> LedgerEntry | None:
        """Make ``entry``'s variation the one in force, keeping the existing entry (and its
        ``assigned_at``) when the variation is unchanged. Returns the previous entry."""
        ...

    def end_unit(self, unit: str, unit_id: str) -> bool:
        """Release every assignment of one unit; True when there was something to release."""
        ...

    def record_unit(self, experiment_key: str, run_id: str, unit: str) -> str:
        """Record ``unit`` as the experiment run's unit unless one is recorded already.
        Returns the unit on record."""
        ...

    def close(self) -> None:
        """Release connections; the store is not used afterwards."""
        ...


def unit_ttls(overrides: Mapping[str, float] | None = None) -> dict[str, float]:
    """The default idle TTLs with ``overrides`` applied; a TTL that is not positive is a
    :class:`ConfigurationError`."""
    ttls = dict(DEFAULT_TTL_SECONDS)
    for unit, seconds in (overrides or {}).items():
        if not seconds > 0:
            raise ConfigurationError(f"TTL for unit {unit!r} must be positive, got {seconds!r}")
        ttls[unit] = float(seconds)
    return ttls
