"""A throwaway ``redis-server`` on a free loopback port, for tests that stop and restart Redis.

The machine's main Redis (127.0.0.1:6379) is shared by other tests and must never be stopped;
this one is ours alone. It keeps nothing on disk (``--save "" --appendonly no``), so a restart
is the empty Redis a cache-mode production server comes back as. The port is chosen once and
reused by :meth:`ThrowawayRedis.start` after :meth:`ThrowawayRedis.stop`.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from types import TracebackType

import redis

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
MAIN_REDIS_URL = "redis://127.0.0.1:6379/0"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ThrowawayRedis:
    """A private Redis server process on loopback; ``stop()``/``start()`` keep the port."""

    def __init__(self) -> None:
        self.port = free_port()
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 5.0) -> ThrowawayRedis:
        if self._process is not None:
            return self
        self._process = subprocess.Popen(
            [
                REDIS_SERVER,
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--save", "",
                "--appendonly", "no",
                "--daemonize", "no",
                "--loglevel", "warning",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        client = redis.Redis.from_url(self.url, socket_timeout=0.2, socket_connect_timeout=0.2)
        deadline = time.monotonic() + timeout
        try:
            while True:
                try:
                    if client.ping():
                        return self
                except redis.RedisError:
                    if time.monotonic() > deadline:
                        raise
                time.sleep(0.02)
        finally:
            client.close()

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        process.terminate()
        try:
            process.wait(5.0)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5.0)

    def __enter__(self) -> ThrowawayRedis:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def delete_prefix(url: str, prefix: str) -> int:
    """Delete every key under ``prefix`` (test cleanup); returns how many were deleted."""
    client = redis.Redis.from_url(url)
    try:
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        return int(client.delete(*keys)) if keys else 0
    finally:
        client.close()
