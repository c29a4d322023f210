"""The shared assignment store on Redis or Redis Cluster, for services that run on many instances.

Layout: units are spread over :data:`SHARDS` ledger shards by a hash of the unit. One hash per
unit, ``<prefix>{<shard>}<unit>:<unit id>``, holds a field per experiment run, and one marker per
shard, ``<prefix>{<shard>}ledger``, holds the token of the store that first wrote to the shard.
The braces make the shard the cluster hash tag, so a unit's hash and its shard's marker share a
slot and every script (see ``_redis_scripts``) stays in one slot. Redis keeps each unit's idle
TTL (``PEXPIRE``); ending a unit is one ``DEL``; each ledger operation is one Lua script call, so
it is atomic and costs one round trip. The experiment run's unit is a plain ``SET NX GET`` key.

Repeat turns: on a single Redis (not a cluster) the store keeps a local copy of the entries it
read, invalidated by Redis itself (see ``_ledger_cache``), so a unit's later turns cost no round
trip. A unit's TTL is refreshed once per :data:`REFRESH_FRACTION` of the TTL rather than on
every turn (a unit idle past 98% to 100% of its TTL expires): a write on every turn would also
invalidate every other instance's copy of the unit. ``local_cache=False`` asks Redis on every
evaluation.

Loss: the markers never expire. A marker that vanished or changed (Redis restarted empty,
``FLUSHDB``, failover to an empty replica, eviction of the marker itself) means the shard lost
what it held, which a unit expiring never does. The store counts each such shard in
:attr:`RedisStore.losses_seen` and bumps the shard's :meth:`~RedisStore.generation`, so the ledger
can tell "this unit was lost" from "this unit is new or expired". What it cannot see: eviction of
single units (``maxmemory-policy`` other than ``noeviction``) and a restart from an older snapshot;
``durability.redis_durability_problems`` warns about both.

Failures never escape as Redis errors: a call that fails raises :class:`StoreUnavailable`, after
at most ``connect_timeout`` to connect (TLS included) plus ``socket_timeout`` per read. After
``failure_threshold`` failures in a row the breaker opens (see ``breaker``) and calls fail at once.
``redis`` is an optional dependency (``featbit-experiments[redis]``), imported when a store is
created.
"""

from __future__ import annotations

import threading
import time
import uuid
import zlib
from collections.abc import Callable, Mapping
from typing import Any, TypeVar
from urllib.parse import quote

from ..errors import ConfigurationError
from . import _redis_scripts as scripts
from ._ledger_cache import LedgerCache
from .breaker import CircuitBreaker
from .durability import redis_durability_problems
from .store import FALLBACK_TTL_SECONDS, LedgerEntry, LedgerKey, StoreUnavailable, unit_ttls

DEFAULT_KEY_PREFIX = "featbit-experiments:"
#: Ledger shards: each is one cluster hash slot and one loss marker.
SHARDS = 1024
#: A unit's TTL (and its last-seen time) is refreshed once this share of the TTL has passed.
REFRESH_FRACTION = 0.01

_T = TypeVar("_T")


def _pack(entry: LedgerEntry) -> str:
    return f"{entry.assigned_at!r}|{entry.flag_version}|{entry.variation_id}"


def _unpack(raw: bytes, unit: str, last_seen: float) -> LedgerEntry:
    assigned_at, version, variation_id = raw.decode().split("|", 2)
    return LedgerEntry(variation_id, unit, float(assigned_at), last_seen, int(version))


def shard_of(unit: str, unit_id: str) -> int:
    """The ledger shard a unit lives in."""
    return zlib.crc32(f"{unit}:{unit_id}".encode()) % SHARDS


class RedisStore:
    """Assignment store on a Redis server (or cluster) shared by every instance of a service.

    Args:
        url: ``redis://host:port/db`` (``rediss://`` for TLS); with ``cluster``, any node.
        key_prefix: Prepended to every key; use one per environment (and per test). It may not
            contain braces, which would change the cluster hash slot.
        ttl_seconds: Idle TTL per unit name, merged over
            :data:`~featbit_experiments.continuity.DEFAULT_TTL_SECONDS`.
        socket_timeout: Seconds to wait for each read from Redis; keep it small, since an
            evaluation waits this long before going on without the ledger (100 ms leaves
            room for a loaded host: loopback calls measured up to ~60 ms at load 5 on 2 cores).
        connect_timeout: Seconds for a new connection, TCP connect and TLS handshake together.
        failure_threshold: Failures in a row that open the breaker.
        retry_interval: Once the breaker is open, seconds during which calls fail at once.
        cluster: Talk to a Redis Cluster (``redis.cluster.RedisCluster``); the local cache is
            not used there.
        local_cache: Answer a unit's repeat turns from a local copy kept valid by Redis's
            client-side caching invalidations (needs Redis 6+ and ``CLIENT TRACKING``; off
            by itself when Redis refuses it).
        clock: Seconds since the epoch, for ``assigned_at``/``last_seen``.
        connection_options: Extra keyword arguments for the connection pool.
    """

    is_remote = True

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        key_prefix: str = DEFAULT_KEY_PREFIX,
        ttl_seconds: Mapping[str, float] | None = None,
        socket_timeout: float = 0.1,
        connect_timeout: float = 0.1,
        failure_threshold: int = 3,
        retry_interval: float = 1.0,
        cluster: bool = False,
        local_cache: bool = True,
        clock: Callable[[], float] = time.time,
        **connection_options: Any,
    ) -> None:
        try:
            from . import _redis_connection as connection
        except ImportError as error:  # pragma: no cover - depends on the installed extras
            raise ConfigurationError(
                "RedisStore needs the redis package: pip install 'featbit-experiments[redis]'"
            ) from error
        if "{" in key_prefix or "}" in key_prefix:
            raise ConfigurationError(f"key_prefix may not contain braces: {key_prefix!r}")
        self.key_prefix = key_prefix
        self.ttl_seconds = unit_ttls(ttl_seconds)
        self._clock = clock
        self._breaker = CircuitBreaker(failure_threshold, retry_interval)
        self._errors = connection.ERRORS
        self._breaker_open = connection.BreakerOpen
        self._round_trips = connection.RoundTrips()
        self._redis: Any = connection.store_client(
            url,
            cluster=cluster,
            socket_timeout=socket_timeout,
            connect_timeout=connect_timeout,
            breaker=self._breaker,
            round_trips=self._round_trips,
            options=connection_options,
        )
        self._touch = self._redis.register_script(scripts.TOUCH)
        self._claim = self._redis.register_script(scripts.CLAIM)
        self._replace = self._redis.register_script(scripts.REPLACE)
        self._fields: dict[tuple[str, str], str] = {}
        self._token = uuid.uuid4().hex[:16].encode()
        self._markers: list[bytes | None] = [None] * SHARDS
        self._generations = [0] * SHARDS
        self._marker_lock = threading.Lock()
        #: Ledger shards this store has found emptied since it was created.
        self.losses_seen = 0
        self._cache: LedgerCache | None = None
        if local_cache and not cluster:
            client = self._redis
            self._cache = LedgerCache(
                lambda: connection.unpooled_connection(client), key_prefix, wall_clock=clock
            )

    @property
    def round_trips(self) -> int:
        """Requests the ledger sent to Redis so far (every command, script call and handshake;
        not the start-up durability check)."""
        return self._round_trips.value

    @property
    def breaker(self) -> CircuitBreaker:
        return self._breaker

    @property
    def cache_drops(self) -> int:
        """Times the local cache was dropped because its invalidation channel failed."""
        return 0 if self._cache is None else self._cache.drops

    @property
    def cache_drop_reason(self) -> str:
        return "" if self._cache is None else self._cache.last_drop_reason

    @property
    def local_cache(self) -> LedgerCache | None:
        """The local copy of ledger entries (None on a cluster or when turned off)."""
        return self._cache

    def cached(self, key: LedgerKey) -> LedgerEntry | None:
        """The unit's entry from the local copy, without a round trip; None when this store
        cannot answer locally (then ask :meth:`touch` or :meth:`claim`)."""
        return None if self._cache is None else self._cache.get(key)

    def generation(self, unit: str, unit_id: str) -> int:
        """How many times this store has found the unit's shard emptied: a unit remembered at
        an older generation that is now missing was lost, not expired."""
        return self._generations[shard_of(unit, unit_id)]

    # -- AssignmentStore ----------------------------------------------------------------

    def touch(self, key: LedgerKey) -> LedgerEntry | None:
        held = self.cached(key)
        if held is not None:
            return held
        now = self._clock()
        shard, keys, args = self._where(key, now)
        ticket = self._begin(keys[0])
        raw, marker, wrote = self._call(lambda: self._touch(keys=keys, args=args))
        self._observe(shard, marker)
        if raw is None:
            return None
        return self._keep(ticket, key, keys[0], _unpack(raw, key.unit, now), wrote)

    def claim(self, key: LedgerKey, entry: LedgerEntry) -> tuple[LedgerEntry, bool]:
        held = self.cached(key)
        if held is not None:
            return held, False
        now = self._clock()
        shard, keys, args = self._where(key, now)
        args.append(_pack(entry))
        ticket = self._begin(keys[0])
        created, raw, marker, wrote = self._call(lambda: self._claim(keys=keys, args=args))
        self._observe(shard, marker)
        if created:
            self._keep(None, key, keys[0], entry, wrote)
            return entry, True
        return self._keep(ticket, key, keys[0], _unpack(raw, key.unit, now), wrote), False

    def replace(self, key: LedgerKey, entry: LedgerEntry) -> LedgerEntry | None:
        held = self.cached(key)
        if held is not None and held.variation_id == entry.variation_id:
            return held
        now = self._clock()
        shard, keys, args = self._where(key, now)
        args += (_pack(entry), entry.variation_id)
        ticket = self._begin(keys[0])
        raw, marker, wrote = self._call(lambda: self._replace(keys=keys, args=args))
        self._observe(shard, marker)
        previous = None if raw is None else _unpack(raw, key.unit, now)
        if previous is not None:
            self._keep(ticket, key, keys[0], previous, wrote)
        elif self._cache is not None:
            self._cache.forget(keys[0])
        return previous

    def end_unit(self, unit: str, unit_id: str) -> bool:
        name = self.unit_key(unit, unit_id)
        if self._cache is not None:
            self._cache.forget(name)
        return bool(self._call(lambda: self._redis.delete(name)))

    def record_unit(self, experiment_key: str, run_id: str, unit: str) -> str:
        key = f"{self.key_prefix}unit-of:{quote(experiment_key, safe='')}:{quote(run_id, safe='')}"
        previous = self._call(lambda: self._redis.set(key, unit, nx=True, get=True))
        if previous is None:
            return unit
        return previous.decode() if isinstance(previous, bytes) else str(previous)

    def close(self) -> None:
        if self._cache is not None:
            self._cache.close()
        self._redis.close()
        pool = getattr(self._redis, "connection_pool", None)
        if pool is not None:
            pool.disconnect()

    @property
    def client(self) -> Any:
        """The underlying redis-py client (for administration)."""
        return self._redis

    def durability_problems(self) -> list[str]:
        """What could make this Redis lose ledger entries (see ``durability``)."""
        with self._round_trips.uncounted():
            return redis_durability_problems(self._redis)

    # -- keys and markers ---------------------------------------------------------------

    def unit_key(self, unit: str, unit_id: str) -> str:
        """The key of the hash holding one unit's assignments."""
        return self._unit_key(shard_of(unit, unit_id), unit, unit_id)

    def _unit_key(self, shard: int, unit: str, unit_id: str) -> str:
        return f"{self.key_prefix}{{{shard}}}{quote(unit, safe='')}:{unit_id}"

    def marker_key(self, shard: int) -> str:
        """The key of one shard's loss marker."""
        return f"{self.key_prefix}{{{shard}}}ledger"

    def _where(self, key: LedgerKey, now: float) -> tuple[int, list[str], list[Any]]:
        """The unit's shard, a script's KEYS (unit hash, shard marker) and leading ARGV (field,
        now, TTL in ms, this store's token, the TTL left below which it is refreshed)."""
        run = (key.experiment_key, key.run_id)
        field = self._fields.get(run)
        if field is None:
            field = self._fields[run] = f"{quote(run[0], safe='')}:{quote(run[1], safe='')}"
        ttl_ms = int(self.ttl_seconds.get(key.unit, FALLBACK_TTL_SECONDS) * 1000)
        refresh_below = ttl_ms - int(ttl_ms * REFRESH_FRACTION)
        shard = shard_of(key.unit, key.unit_id)
        keys = [self._unit_key(shard, key.unit, key.unit_id), self.marker_key(shard)]
        return shard, keys, [field, now, ttl_ms, self._token, refresh_below]

    def _begin(self, name: str) -> tuple[object, int] | None:
        return None if self._cache is None else self._cache.begin(name)

    def _keep(
        self,
        ticket: tuple[object, int] | None,
        key: LedgerKey,
        name: str,
        entry: LedgerEntry,
        wrote: int,
    ) -> LedgerEntry:
        """Keep what a read that wrote nothing answered; after a write, drop the local copy
        (the write's own invalidation is on its way)."""
        cache = self._cache
        if cache is not None:
            if wrote:
                cache.forget(name)
            else:
                ttl = self.ttl_seconds.get(key.unit, FALLBACK_TTL_SECONDS)
                cache.fill(ticket, key, name, entry, self._clock() + ttl * REFRESH_FRACTION)
        return entry

    def _observe(self, shard: int, marker: bytes) -> None:
        """Note the shard's marker; one this store did not expect means the shard was emptied."""
        if self._markers[shard] == marker:
            return
        with self._marker_lock:
            known = self._markers[shard]
            if known is not None and known != marker:
                self._generations[shard] += 1
                self.losses_seen += 1
            self._markers[shard] = marker

    def _call(self, operation: Callable[[], _T]) -> _T:
        """Run one Redis call; a failure becomes StoreUnavailable, and enough of them in a
        row open the breaker for ``retry_interval``."""
        probe = self._breaker.admit()
        if probe is None:
            raise StoreUnavailable(
                f"Redis unavailable (retrying shortly): {self._breaker.last_error}"
            )
        try:
            result = operation()
        except self._breaker_open as error:
            raise StoreUnavailable(str(error)) from error
        except self._errors as error:
            self._breaker.failed(f"{type(error).__name__}: {error}", probe=probe)
            raise StoreUnavailable(f"Redis unavailable: {type(error).__name__}: {error}") from error
        self._breaker.succeeded(probe=probe)
        return result
