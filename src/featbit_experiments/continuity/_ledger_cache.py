"""This instance's copy of the ledger entries it read from Redis, kept true by Redis itself: a
repeat turn is answered here, without a round trip, for as long as Redis can tell this
instance that an entry changed.

How it stays true. A listener thread holds one connection with server-assisted client-side
caching in broadcast mode (``CLIENT TRACKING on REDIRECT <itself> BCAST PREFIX <prefix>{``,
then ``SUBSCRIBE __redis__:invalidate``; RESP2, so any Redis 6+ and any redis-py will do):
Redis sends it the name of every unit hash any instance writes, deletes or lets expire
(``contain`` switches, ``end_unit``, TTLs), and a flush. Each name drops the entries of that
unit here. An entry is kept only from a read that wrote nothing (the store's scripts refresh a
unit's TTL only when it is due, see ``_redis_scripts``), and only if no invalidation of its
unit and no reconnect of the listener happened while the read was on its way
(:meth:`LedgerCache.begin` / :meth:`LedgerCache.fill`), so an invalidation can never be
overtaken by the value it invalidates.

When it is not true, it is not used. The listener pings every ``PING_INTERVAL``; entries are
answered only while the channel was heard from within ``SERVE_WINDOW``. A channel that fails
(a dropped connection, a restart, an answer that does not come within ``DEAD_AFTER``) drops
every entry at once and is counted in :attr:`LedgerCache.drops` (the ledger reports each as a
``ledger_cache_dropped`` guardrail); evaluations go to Redis until the listener is back.

Not used with Redis Cluster (each node would need its own listener, kept in step with the
slot map); there every evaluation asks Redis, as without a cache. Private to ``redis_store``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

from .store import LedgerEntry, LedgerKey

logger = logging.getLogger("featbit_experiments")

#: Seconds between two pings on the invalidation channel.
PING_INTERVAL = 0.5
#: Entries are served only while the channel was heard from this recently.
SERVE_WINDOW = 1.5
#: A channel silent this long is treated as lost.
DEAD_AFTER = 3.0
#: Seconds between two attempts to (re)open the channel.
RECONNECT_INTERVAL = 1.0
#: Entries held at most (the oldest are dropped beyond it).
DEFAULT_MAX_ENTRIES = 100_000

_CHANNEL = "__redis__:invalidate"
#: The invalidation channel's connection name (``CLIENT LIST``).
CLIENT_NAME = "featbit-experiments-ledger-cache"


class _Held(LedgerEntry):
    """One unit's entries: the first run's is the record itself (the common case), any further
    runs' are in ``more``. Small on purpose: an instance holds one per active unit."""

    __slots__ = ("experiment_key", "more", "refresh_at", "run_id")

    def __init__(self, key: LedgerKey, entry: LedgerEntry, refresh_at: float) -> None:
        super().__init__(
            entry.variation_id, entry.unit, entry.assigned_at, entry.last_seen, entry.flag_version
        )
        self.experiment_key = key.experiment_key
        self.run_id = key.run_id
        self.refresh_at = refresh_at
        self.more: dict[tuple[str, str], tuple[LedgerEntry, float]] | None = None

    def find(self, key: LedgerKey) -> tuple[LedgerEntry, float] | None:
        if self.experiment_key == key.experiment_key and self.run_id == key.run_id:
            return self, self.refresh_at
        more = self.more
        return None if more is None else more.get((key.experiment_key, key.run_id))

    def keep(self, key: LedgerKey, entry: LedgerEntry, refresh_at: float) -> int:
        """Hold ``entry`` for ``key``'s run; 1 when that run is new here, else 0."""
        if self.experiment_key == key.experiment_key and self.run_id == key.run_id:
            self.variation_id, self.assigned_at = entry.variation_id, entry.assigned_at
            self.last_seen, self.flag_version = entry.last_seen, entry.flag_version
            self.refresh_at = refresh_at
            return 0
        if self.more is None:
            self.more = {}
        run = (key.experiment_key, key.run_id)
        added = 0 if run in self.more else 1
        self.more[run] = (entry, refresh_at)
        return added

    def __len__(self) -> int:
        return 1 + (len(self.more) if self.more else 0)


class LedgerCache:
    """Ledger entries by key, valid while the invalidation channel is.

    Args:
        connect: Opens a new, unpooled connection to the store's Redis (RESP2).
        key_prefix: The store's key prefix; unit hashes are ``<prefix>{<shard>}<unit>:<id>``.
        max_entries: The most entries held (the units held longest are dropped beyond it).
        wall_clock: Seconds since the epoch (when an entry's TTL refresh falls due).
    """

    def __init__(
        self,
        connect: Callable[[], Any],
        key_prefix: str,
        *,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._connect = connect
        self._prefix = key_prefix + "{"
        self._max_entries = max_entries
        self._wall_clock = wall_clock
        #: unit name -> unit ID -> the unit's entries (dicts keep arrival order: oldest first).
        self._units: dict[str, dict[str, _Held]] = {}
        self._size = 0
        self._variations: dict[str, str] = {}  # one string per variation id, shared
        self._pending: dict[str, object] = {}
        self._lock = threading.Lock()
        self._epoch = 0
        self._heard = -1e18  # monotonic time the channel last answered; never yet
        self._live = False
        #: Times the cache was dropped because the invalidation channel failed.
        self.drops = 0
        self.last_drop_reason = ""
        #: Why Redis refused the invalidation channel (the copy is then off for good), or None.
        self.refused: str | None = None
        self._stopped = threading.Event()
        self._thread = threading.Thread(
            target=self._listen, name="featbit-experiments-ledger-cache", daemon=True
        )
        self._thread.start()

    # -- lookups (any thread) ---------------------------------------------------------------

    def get(self, key: LedgerKey) -> LedgerEntry | None:
        """The entry, if held, not due for its TTL refresh, and the channel is alive."""
        table = self._units.get(key.unit)
        held = None if table is None else table.get(key.unit_id)
        found = None if held is None else held.find(key)
        if found is None or time.monotonic() - self._heard > SERVE_WINDOW:
            return None
        entry, refresh_at = found
        return None if self._wall_clock() >= refresh_at else entry

    def begin(self, name: str) -> tuple[object, int] | None:
        """Before a read of unit hash ``name`` whose answer may be kept: a ticket for
        :meth:`fill`, or None when nothing may be kept now (the channel is down)."""
        if not self._live:
            return None
        ticket = object()
        self._pending[name] = ticket
        return ticket, self._epoch

    def fill(
        self,
        ticket: tuple[object, int] | None,
        key: LedgerKey,
        name: str,
        entry: LedgerEntry,
        refresh_at: float,
    ) -> None:
        """Keep ``entry`` read under ``ticket``, unless ``name`` was invalidated or the
        channel reconnected meanwhile."""
        if ticket is None:
            return
        token, epoch = ticket
        with self._lock:
            if self._pending.get(name) is not token or epoch != self._epoch or not self._live:
                return
            del self._pending[name]
            variation = self._variations.setdefault(entry.variation_id, entry.variation_id)
            entry.variation_id = variation
            table = self._units.get(key.unit)
            if table is None:
                table = self._units[key.unit] = {}
            held = table.get(key.unit_id)
            if held is None:
                table[key.unit_id] = _Held(key, entry, refresh_at)
                self._size += 1
            else:
                self._size += held.keep(key, entry, refresh_at)
            while self._size > self._max_entries:
                self._drop_oldest()

    def forget(self, name: str) -> None:
        """Drop a unit's entries (this instance wrote to it)."""
        with self._lock:
            self._invalidate(name)

    @property
    def size(self) -> int:
        """Entries held."""
        return self._size

    @property
    def live(self) -> bool:
        """Whether the invalidation channel is open (entries may be kept and served)."""
        return self._live and time.monotonic() - self._heard <= SERVE_WINDOW

    def close(self) -> None:
        self._stopped.set()
        self._thread.join(timeout=2 * PING_INTERVAL + 1)

    # -- the invalidation channel (listener thread) -----------------------------------------

    def _listen(self) -> None:
        while not self._stopped.is_set():
            connection = None
            try:
                connection = self._connect()
                self._subscribe(connection)
                self._receive(connection)
            except _Refused as refused:
                logger.warning(
                    "assignment store: local copy of the ledger off, Redis refused its "
                    "invalidation channel (%s); every turn asks Redis",
                    refused,
                )
                self._lost(None)
                self.refused = str(refused)
                return
            except Exception as error:
                self._lost(f"{type(error).__name__}: {error}")
            finally:
                if connection is not None:
                    try:
                        connection.disconnect()
                    except Exception:
                        logger.debug("closing the ledger cache's connection failed", exc_info=True)
            self._stopped.wait(RECONNECT_INTERVAL)

    def _subscribe(self, connection: Any) -> None:
        try:
            connection.send_command("CLIENT", "SETNAME", CLIENT_NAME)
            connection.read_response()
            connection.send_command("CLIENT", "ID")
            client_id = connection.read_response()
            connection.send_command(
                "CLIENT", "TRACKING", "on", "REDIRECT", client_id, "BCAST", "PREFIX", self._prefix
            )
            connection.read_response()
            connection.send_command("SUBSCRIBE", _CHANNEL)
            connection.read_response()
        except Exception as error:  # an error reply (old Redis, ACLs) is final; others retry
            if any(cls.__name__ == "ResponseError" for cls in type(error).__mro__):
                raise _Refused(str(error)) from error
            raise
        with self._lock:
            self._clear()
            self._epoch += 1
            self._live = True
            self._heard = time.monotonic()

    def _receive(self, connection: Any) -> None:
        pinged = time.monotonic()
        while not self._stopped.is_set():
            if connection.can_read(timeout=PING_INTERVAL / 2):
                message = connection.read_response()
                self._heard = time.monotonic()
                if (
                    isinstance(message, list)
                    and len(message) == 3
                    and message[0] in (b"message", "message")  # decode_responses may be on
                ):
                    self._invalidated(message[2])
            now = time.monotonic()
            if now - pinged >= PING_INTERVAL:
                connection.send_command("PING")
                pinged = now
            if now - self._heard > DEAD_AFTER:
                raise TimeoutError(f"the invalidation channel was silent for {DEAD_AFTER:g}s")

    def _invalidated(self, names: Any) -> None:
        with self._lock:
            if names is None:  # FLUSHDB / FLUSHALL: everything
                self._clear()
                return
            for raw in names:
                name = raw.decode() if isinstance(raw, bytes) else str(raw)
                if name.endswith("}ledger"):  # a shard's marker was (re)written: start over
                    self._clear()
                    return
                self._invalidate(name)

    def _lost(self, reason: str | None) -> None:
        """The channel failed: no entry is served until it is back, and none is kept."""
        with self._lock:
            was_live, self._live = self._live, False
            self._heard = -1e18
            self._epoch += 1
            self._clear()
            if was_live and reason is not None:
                self.drops += 1
                self.last_drop_reason = reason

    # -- internals (lock held) --------------------------------------------------------------

    def _invalidate(self, name: str) -> None:
        """Drop the entries of the unit hash ``name`` (``<prefix>{<shard>}<unit>:<id>``)."""
        self._pending.pop(name, None)
        unit, separator, unit_id = name.partition("}")[2].partition(":")
        table = self._units.get(unquote(unit)) if separator else None
        held = None if table is None else table.pop(unit_id, None)
        if held is not None:
            self._size -= len(held)

    def _drop_oldest(self) -> None:
        table = max(self._units.values(), key=len)
        held = table.pop(next(iter(table)))
        self._size -= len(held)

    def _clear(self) -> None:
        self._units.clear()
        self._size = 0
        self._pending.clear()


class _Refused(Exception):
    """Redis refused ``CLIENT TRACKING`` (too old, or the command is not allowed)."""
