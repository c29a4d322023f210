"""The shared assignment store on Redis, for services that run on many instances.

Layout: one hash per unit, ``<prefix>{<unit>:<unit id>}``, with a field per experiment run holding
``assigned_at|flag_version|variation_id`` and a ``s:<field>`` field holding when the unit was last
seen there. Redis keeps the unit's idle TTL (``PEXPIRE`` on every touch), ending a unit is one
``DEL``, and the braces make the key a cluster hash tag. Each ledger operation is one Lua script
call, so it is atomic (two instances racing on a new conversation get the same winner) and costs
one round trip. The experiment run's unit is a plain ``SET NX GET`` key.

Failures never escape as Redis errors: a call that fails raises :class:`StoreUnavailable`. After
``failure_threshold`` failures in a row, calls fail at once for ``retry_interval`` seconds
instead of each waiting for a timeout; then the next call tries Redis again, so the store
recovers by itself. A single slow answer does not open this breaker. ``redis`` is an
optional dependency (``featbit-experiments[redis]``), imported when a store is created.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar
from urllib.parse import quote

from ..errors import ConfigurationError
from .store import FALLBACK_TTL_SECONDS, LedgerEntry, LedgerKey, StoreUnavailable, unit_ttls

DEFAULT_KEY_PREFIX = "featbit-experiments:"

_T = TypeVar("_T")

# KEYS[1] unit hash; ARGV: field, now, ttl ms.
_TOUCH = """
local v = redis.call('HGET', KEYS[1], ARGV[1])
if not v then return false end
redis.call('HSET', KEYS[1], 's:' .. ARGV[1], ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return v
"""

# ARGV: field, now, ttl ms, packed new entry. Returns {created, packed entry in force}.
_CLAIM = """
local v = redis.call('HGET', KEYS[1], ARGV[1])
local created = 0
if not v then
  v = ARGV[4]
  created = 1
  redis.call('HSET', KEYS[1], ARGV[1], v, 's:' .. ARGV[1], ARGV[2])
else
  redis.call('HSET', KEYS[1], 's:' .. ARGV[1], ARGV[2])
end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return {created, v}
"""

# ARGV: field, now, ttl ms, packed new entry, new variation id. Returns the previous entry.
_REPLACE = """
local v = redis.call('HGET', KEYS[1], ARGV[1])
if (not v) or string.match(v, '^[^|]*|[^|]*|(.*)$') ~= ARGV[5] then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[4])
end
redis.call('HSET', KEYS[1], 's:' .. ARGV[1], ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return v
"""


def _pack(entry: LedgerEntry) -> str:
    return f"{entry.assigned_at!r}|{entry.flag_version}|{entry.variation_id}"


def _unpack(raw: bytes, unit: str, last_seen: float) -> LedgerEntry:
    assigned_at, version, variation_id = raw.decode().split("|", 2)
    return LedgerEntry(variation_id, unit, float(assigned_at), last_seen, int(version))


class RedisStore:
    """Assignment store on a Redis server shared by every instance of a service.

    Args:
        url: ``redis://host:port/db`` (``rediss://`` for TLS).
        key_prefix: Prepended to every key; use one per environment (and per test).
        ttl_seconds: Idle TTL per unit name, merged over
            :data:`~featbit_experiments.continuity.DEFAULT_TTL_SECONDS`.
        socket_timeout: Seconds to wait for Redis on each call; keep it small, since an
            evaluation waits this long before going on without the ledger (100 ms leaves
            room for a loaded host: loopback calls measured up to ~60 ms at load 5 on 2 cores).
        connect_timeout: Seconds to wait for a new connection.
        failure_threshold: Failures in a row that open the breaker.
        retry_interval: Once the breaker is open, seconds during which calls fail at once.
        clock: Seconds since the epoch, for ``assigned_at``/``last_seen``.
        connection_options: Extra keyword arguments for ``redis.ConnectionPool``.
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
        clock: Callable[[], float] = time.time,
        **connection_options: Any,
    ) -> None:
        try:
            import redis
            from redis.backoff import NoBackoff
            from redis.connection import parse_url
            from redis.retry import Retry
        except ImportError as error:  # pragma: no cover - depends on the installed extras
            raise ConfigurationError(
                "RedisStore needs the redis package: pip install 'featbit-experiments[redis]'"
            ) from error
        self.key_prefix = key_prefix
        self.ttl_seconds = unit_ttls(ttl_seconds)
        self.failure_threshold = max(1, failure_threshold)
        self.retry_interval = retry_interval
        self._clock = clock
        self._errors: tuple[type[BaseException], ...] = (redis.RedisError, OSError)
        self._round_trips = _Counter()
        base = parse_url(url).get("connection_class", redis.Connection)  # type: ignore[no-untyped-call]
        pool = redis.ConnectionPool.from_url(
            url,
            connection_class=_counting_connection(base),
            round_trips=self._round_trips,
            socket_timeout=socket_timeout,
            socket_connect_timeout=connect_timeout,
            retry=Retry(NoBackoff(), 0),
            **connection_options,
        )
        self._redis = redis.Redis(connection_pool=pool)
        self._touch = self._redis.register_script(_TOUCH)
        self._claim = self._redis.register_script(_CLAIM)
        self._replace = self._redis.register_script(_REPLACE)
        self._down_until = 0.0
        self._failures = 0
        self._last_error = ""
        self._fields: dict[tuple[str, str], str] = {}

    @property
    def client(self) -> Any:
        """The ``redis.Redis`` client, for read-only checks of the server's configuration
        (:func:`~featbit_experiments.continuity.redis_config.read_redis_durability`)."""
        return self._redis

    @property
    def round_trips(self) -> int:
        """Requests sent to Redis so far (every command, script call and handshake)."""
        return self._round_trips.value

    # -- AssignmentStore ----------------------------------------------------------------

    def touch(self, key: LedgerKey) -> LedgerEntry | None:
        now = self._clock()
        keys, args = self._where(key, now)
        raw = self._call(lambda: self._touch(keys=keys, args=args))
        return None if raw is None else _unpack(raw, key.unit, now)

    def claim(self, key: LedgerKey, entry: LedgerEntry) -> tuple[LedgerEntry, bool]:
        now = self._clock()
        keys, args = self._where(key, now)
        args.append(_pack(entry))
        created, raw = self._call(lambda: self._claim(keys=keys, args=args))
        if created:
            return entry, True
        return _unpack(raw, key.unit, now), False

    def replace(self, key: LedgerKey, entry: LedgerEntry) -> LedgerEntry | None:
        now = self._clock()
        keys, args = self._where(key, now)
        args += (_pack(entry), entry.variation_id)
        raw = self._call(lambda: self._replace(keys=keys, args=args))
        return None if raw is None else _unpack(raw, key.unit, now)

    def end_unit(self, unit: str, unit_id: str) -> bool:
        name = self._unit_key(unit, unit_id)
        return bool(self._call(lambda: self._redis.delete(name)))

    def record_unit(self, experiment_key: str, run_id: str, unit: str) -> str:
        key = f"{self.key_prefix}unit-of:{quote(experiment_key, safe='')}:{quote(run_id, safe='')}"
        previous = self._call(lambda: self._redis.set(key, unit, nx=True, get=True))
        if previous is None:
            return unit
        return previous.decode() if isinstance(previous, bytes) else str(previous)

    def close(self) -> None:
        self._redis.close()
        self._redis.connection_pool.disconnect()

    # -- keys ---------------------------------------------------------------------------

    def _unit_key(self, unit: str, unit_id: str) -> str:
        return f"{self.key_prefix}{{{quote(unit, safe='')}:{unit_id}}}"

    def _where(self, key: LedgerKey, now: float) -> tuple[list[str], list[Any]]:
        """A script's KEYS (the unit's hash) and leading ARGV (field, now, TTL in ms)."""
        run = (key.experiment_key, key.run_id)
        field = self._fields.get(run)
        if field is None:
            field = self._fields[run] = f"{quote(run[0], safe='')}:{quote(run[1], safe='')}"
        ttl_ms = int(self.ttl_seconds.get(key.unit, FALLBACK_TTL_SECONDS) * 1000)
        return [self._unit_key(key.unit, key.unit_id)], [field, now, ttl_ms]

    def _call(self, operation: Callable[[], _T]) -> _T:
        """Run one Redis call; a failure becomes StoreUnavailable, and enough of them in a
        row open the breaker for ``retry_interval``."""
        if self._down_until and time.monotonic() < self._down_until:
            raise StoreUnavailable(f"Redis unavailable (retrying shortly): {self._last_error}")
        try:
            result = operation()
        except self._errors as error:
            self._last_error = f"{type(error).__name__}: {error}"
            self._failures += 1
            if self._failures >= self.failure_threshold:
                self._down_until = time.monotonic() + self.retry_interval
            raise StoreUnavailable(f"Redis unavailable: {self._last_error}") from error
        self._failures = 0
        self._down_until = 0.0
        return result


class _Counter:
    """A thread-safe request counter shared by a pool's connections."""

    def __init__(self) -> None:
        self.value = 0
        self._lock = threading.Lock()

    def add(self) -> None:
        with self._lock:
            self.value += 1


def _counting_connection(base: type[Any]) -> type[Any]:
    """``base`` (``redis.Connection``) counting every request it sends: one per round trip."""

    class CountingConnection(base):  # type: ignore[misc]
        def __init__(self, *, round_trips: _Counter, **options: Any) -> None:
            super().__init__(**options)
            self._round_trips = round_trips

        def send_packed_command(self, command: Any, check_health: bool = True) -> None:
            self._round_trips.add()
            super().send_packed_command(command, check_health)

    return CountingConnection
