"""Cutting a urllib3 pool's open connections from another thread.

A POST to an endpoint that accepts and then never answers blocks its thread for the whole read
timeout (10 s by default for ``fbclient``'s HTTP settings), and nothing in urllib3 interrupts
it. :class:`OpenConnections` keeps the connections a pool manager has open and shuts their
sockets down on :meth:`~OpenConnections.cut`: the blocked read ends at once with an error the
caller already handles, so its thread can finish when the owner stops. A connection opened after
the cut is shut down as soon as it is established. (The TCP socket is caught in urllib3's
``_new_conn``, in 1.26 and 2.x alike: the one place it exists before a TLS handshake, which a
stalled host may never finish.)

It only tracks and cuts sockets: what is sent, retried or counted is the caller's business. A
thread still inside the TCP connect when the cut comes (a host that drops packets) is not
interrupted; it ends at the connect timeout.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import weakref
from typing import Any

__all__ = ["OpenConnections"]


class OpenConnections:
    """The connections a urllib3 ``PoolManager`` has open, ready to be cut at once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: weakref.WeakSet[Any] = weakref.WeakSet()
        self._cut = False

    def track(self, manager: Any) -> None:
        """Make ``manager`` (a ``PoolManager`` or ``ProxyManager`` with no pool yet) open
        connections this object can cut."""
        manager.pool_classes_by_scheme = {
            scheme: self._tracking_pool(pool)
            for scheme, pool in manager.pool_classes_by_scheme.items()
        }

    def cut(self) -> int:
        """Shut down every open connection's socket, and every one opened from now on;
        returns how many were open."""
        with self._lock:  # a connection closes only after leaving the set
            self._cut = True
            connections = list(self._open)
            for connection in connections:
                _shut(connection)
        return len(connections)

    def __len__(self) -> int:
        with self._lock:
            return len(self._open)

    # -- called by the tracking connections ------------------------------------------------

    def _opened(self, connection: Any) -> None:
        with self._lock:
            self._open.add(connection)
            if self._cut:
                _shut(connection)

    def _closed(self, connection: Any) -> None:
        with self._lock:
            self._open.discard(connection)

    def _tracking_pool(self, pool: type[Any]) -> type[Any]:
        connection_class = type(
            f"Tracked{pool.ConnectionCls.__name__}",
            (_Tracked, pool.ConnectionCls),
            {"_connections": self},
        )
        return type(f"Tracked{pool.__name__}", (pool,), {"ConnectionCls": connection_class})


class _Tracked:
    """Mixed into a urllib3 connection class: keeps a duplicate of each connection's TCP socket
    from the moment it connects. The TLS handshake that follows takes the socket over (the
    original object is detached), so the duplicate is the one handle to it; it is closed with
    the connection."""

    _connections: OpenConnections
    tcp_socket: socket.socket | None = None

    def _new_conn(self) -> socket.socket:
        sock: socket.socket = super()._new_conn()  # type: ignore[misc]
        self._release()
        with contextlib.suppress(OSError):
            self.tcp_socket = sock.dup()
        self._connections._opened(self)
        return sock

    def close(self) -> None:
        self._connections._closed(self)
        self._release()
        super().close()  # type: ignore[misc]

    def _release(self) -> None:
        held, self.tcp_socket = self.tcp_socket, None
        if held is not None:
            held.close()


def _shut(connection: Any) -> None:
    """Shut the connection's TCP socket down both ways: a thread reading it (a response, a TLS
    handshake) gets an end of stream at once. Closing it stays with urllib3."""
    sock = getattr(connection, "tcp_socket", None)
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
