"""The assignment store's Redis client and connections, each step bounded by its own timeout.

redis-py bounds the TCP connect by ``socket_connect_timeout`` and each read by
``socket_timeout``, but a TLS handshake waits ``socket_timeout`` per read on top of the connect,
every new TLS connection builds a fresh ``ssl`` context (loading the system's CA bundle, about
30 ms of CPU under the GIL, so 16 threads reconnecting to a stalled server queue for half a
second), and a caller that passed the breaker before it opened still opens a new connection.
The connection class built here:

* finishes TCP connect and TLS handshake together within ``connect_timeout``;
* builds its TLS context once per store, when the store is created;
* refuses to open a connection once the store's breaker is open (unless its caller is the
  breaker's probe), so callers already on their way fail at once too;
* counts every request it sends (one per round trip).

Commands are still bounded by ``socket_timeout`` per read, as redis-py does. :func:`store_client`
builds the client (plain or cluster) on this class, without retries (the store's breaker
decides) or ``CLIENT SETINFO``. Private: this module imports ``redis`` and is only loaded when a
``RedisStore`` is created.
"""

from __future__ import annotations

import inspect
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.connection import AbstractConnection, Connection, parse_url
from redis.retry import Retry

from .breaker import CircuitBreaker

#: What a failed call raises (RedisClusterException is not a RedisError).
ERRORS: tuple[type[BaseException], ...] = (
    redis.RedisError,
    redis.exceptions.RedisClusterException,
    OSError,
)


def store_client(
    url: str,
    *,
    cluster: bool,
    socket_timeout: float,
    connect_timeout: float,
    breaker: CircuitBreaker,
    round_trips: RoundTrips,
    options: dict[str, Any],
) -> Any:
    """A ``redis.Redis`` (or ``RedisCluster``) for one store: bounded connections, no retries
    (the breaker decides), no ``CLIENT SETINFO`` round trips."""
    base = parse_url(url).get("connection_class", redis.Connection)  # type: ignore[no-untyped-call]
    connection_class = bounded_connection_class(
        base, connect_timeout=connect_timeout, breaker=breaker, round_trips=round_trips
    )
    settings: dict[str, Any] = {
        "connection_class": connection_class,
        "socket_timeout": socket_timeout,
        "socket_connect_timeout": connect_timeout,
        **_without_client_setinfo(),
        **options,
    }
    if cluster:
        from redis.cluster import RedisCluster

        return RedisCluster.from_url(url, retry=Retry(NoBackoff(), 0), **settings)
    pool = redis.ConnectionPool.from_url(url, retry=Retry(NoBackoff(), 0), **settings)
    pool.connection_class.prepare(pool.connection_kwargs)
    return redis.Redis(connection_pool=pool)


def unpooled_connection(client: Any) -> Any:
    """A new connection to ``client``'s server, outside its pool, speaking RESP2 (the ledger
    cache's invalidation channel): same address, credentials and timeouts, not counted as a
    ledger round trip, not held back by the store's breaker."""
    pool = client.connection_pool
    options = {
        name: value
        for name, value in pool.connection_kwargs.items()
        if not name.startswith(_POOL_ONLY_OPTIONS)  # redis-py 7+: a RESP3 pool's own
    }
    options["protocol"] = 2
    connection = pool.connection_class.plain(**options)
    connection.connect()
    return connection


_POOL_ONLY_OPTIONS = ("maint_notifications", "orig_", "himport_registry")


def _without_client_setinfo() -> dict[str, Any]:
    """Options that stop redis-py sending ``CLIENT SETINFO`` on every new connection (two more
    round trips before the first command, each waiting ``socket_timeout`` on a stalled server)."""
    if "driver_info" in inspect.signature(AbstractConnection.__init__).parameters:
        return {"driver_info": None}
    return {"lib_name": None, "lib_version": None}


class BreakerOpen(redis.RedisError):
    """The store's breaker opened while this caller was on its way to Redis."""


class RoundTrips:
    """A thread-safe count of the ledger's requests, shared by a store's connections
    (administration, such as the durability check, is left out with :meth:`uncounted`)."""

    def __init__(self) -> None:
        self.value = 0
        self._lock = threading.Lock()
        self._caller = threading.local()

    def add(self) -> None:
        if getattr(self._caller, "uncounted", False):
            return
        with self._lock:
            self.value += 1

    @contextmanager
    def uncounted(self) -> Iterator[None]:
        """Requests this thread sends meanwhile are not the ledger's."""
        self._caller.uncounted = True
        try:
            yield
        finally:
            self._caller.uncounted = False


def bounded_connection_class(
    base: type[Any], *, connect_timeout: float, breaker: CircuitBreaker, round_trips: RoundTrips
) -> type[Any]:
    """A subclass of ``base`` (``redis.Connection`` or ``redis.SSLConnection``) bound to one
    store's breaker and round-trip count."""
    tls = _TlsContext()
    uses_tls = issubclass(base, redis.SSLConnection)

    class StoreConnection(base):  # type: ignore[misc]
        #: The redis-py class this one extends (for connections outside the store's pool).
        plain = base

        @classmethod
        def prepare(cls, options: dict[str, Any]) -> None:
            """Build the TLS context now, from the pool's options, rather than on the first
            connection (which would wait for it)."""
            if uses_tls and not _wants_ocsp(options):
                tls.for_connection(cls(**options))

        def connect(self) -> None:
            if getattr(self, "_sock", None) is None and not breaker.allows_connect():
                raise BreakerOpen(f"Redis unavailable (retrying shortly): {breaker.last_error}")
            super().connect()

        def _connect(self) -> Any:
            if not uses_tls or _wants_ocsp(self):
                return super()._connect()
            context = tls.for_connection(self)  # built once per store, before the clock starts
            deadline = time.monotonic() + connect_timeout
            sock = Connection._connect(self)  # type: ignore[no-untyped-call]  # TCP, bounded
            try:
                sock.settimeout(max(deadline - time.monotonic(), 0.001))
                wrapped = context.wrap_socket(sock, server_hostname=self.host)
                wrapped.settimeout(self.socket_timeout)
            except BaseException:
                sock.close()
                raise
            return wrapped

        def send_packed_command(self, command: Any, check_health: bool = True) -> None:
            round_trips.add()
            super().send_packed_command(command, check_health)

    return StoreConnection


def _wants_ocsp(connection: Any) -> bool:
    """OCSP validation needs redis-py's own TLS path (and its extra connection)."""
    options = connection if isinstance(connection, dict) else connection.__dict__
    return bool(options.get("ssl_validate_ocsp") or options.get("ssl_validate_ocsp_stapled"))


class _TlsContext:
    """One ``ssl.SSLContext`` per store, built from the first connection's TLS options (they
    are the same for every connection of a pool)."""

    def __init__(self) -> None:
        self._context: ssl.SSLContext | None = None
        self._lock = threading.Lock()

    def for_connection(self, connection: Any) -> ssl.SSLContext:
        context = self._context
        if context is None:
            with self._lock:
                if self._context is None:
                    self._context = _build_context(connection)
                context = self._context
        return context


def _build_context(connection: Any) -> ssl.SSLContext:
    """The context redis-py would build for ``connection``, built once."""
    option = connection.__dict__.get
    context = ssl.create_default_context()
    context.check_hostname = bool(option("check_hostname", False))
    context.verify_mode = option("cert_reqs", ssl.CERT_REQUIRED)
    for flag in option("ssl_include_verify_flags") or ():
        context.verify_flags |= flag
    for flag in option("ssl_exclude_verify_flags") or ():
        context.verify_flags &= ~flag
    if option("certfile") or option("keyfile"):
        context.load_cert_chain(
            certfile=option("certfile"),
            keyfile=option("keyfile"),
            password=option("certificate_password"),
        )
    if option("ca_certs") or option("ca_path") or option("ca_data"):
        context.load_verify_locations(
            cafile=option("ca_certs"), capath=option("ca_path"), cadata=option("ca_data")
        )
    if option("ssl_min_version") is not None:
        context.minimum_version = option("ssl_min_version")
    if option("ssl_ciphers"):
        context.set_ciphers(option("ssl_ciphers"))
    return context
