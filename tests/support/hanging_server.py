"""A TCP server on loopback that accepts connections and never answers: the stalled host that
a Redis behind a broken load balancer, a frozen VM or a full network buffer looks like.

It reads nothing and writes nothing, so a plain Redis client waits for its reply and a TLS
client waits for the server's half of the handshake. It counts the connections it accepted,
which tells a test how many callers actually went to the network.
"""

from __future__ import annotations

import selectors
import socket
import threading
from types import TracebackType


class HangingServer:
    """Accepts and holds every connection until stopped; ``accepted`` counts them."""

    def __init__(self) -> None:
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(256)
        self._listener.setblocking(False)
        self.port = int(self._listener.getsockname()[1])
        self._held: list[socket.socket] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._accept, name="hanging-server", daemon=True)

    @property
    def accepted(self) -> int:
        with self._lock:
            return len(self._held)

    def url(self, scheme: str = "redis") -> str:
        return f"{scheme}://127.0.0.1:{self.port}/0"

    def _accept(self) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(self._listener, selectors.EVENT_READ)
            while not self._stopping.is_set():
                if not selector.select(timeout=0.05):
                    continue
                try:
                    connection, _ = self._listener.accept()
                except BlockingIOError:
                    continue
                with self._lock:
                    self._held.append(connection)

    def __enter__(self) -> HangingServer:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stopping.set()
        self._thread.join(5)
        with self._lock:
            for connection in self._held:
                connection.close()
        self._listener.close()
