"""redis-server processes on loopback with their own working directory: a single server with
extra settings, and a Redis Cluster of three masters and three replicas built from them.

Everything a server writes (AOF, RDB, ``nodes.conf``) goes to its own directory under the test's
temporary path, never the repository. Servers listen on free loopback ports; the cluster bus
uses port + 10000, so ports are picked where both are free.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
REDIS_CLI = shutil.which("redis-cli") or "/usr/bin/redis-cli"


def _free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def cluster_ports(count: int) -> list[int]:
    """``count`` ports, each free along with its cluster bus port (port + 10000)."""
    ports: list[int] = []
    while len(ports) < count:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port + 10000 < 65536 and port not in ports and _free(port + 10000):
            ports.append(port)
    return ports


def wait_until(condition: Callable[[], bool], timeout: float = 30.0, step: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if condition():
                return True
        except redis.RedisError:
            pass
        if time.monotonic() > deadline:
            return False
        time.sleep(step)


class RedisProcess:
    """One redis-server on ``port`` with ``directory`` as its working directory."""

    def __init__(self, port: int, directory: Path, settings: Sequence[str] = ()) -> None:
        self.port = port
        self.directory = directory
        self.settings = list(settings)
        self._process: subprocess.Popen[bytes] | None = None
        directory.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis(
            host="127.0.0.1",
            port=self.port,
            socket_timeout=2,
            socket_connect_timeout=2,
            retry=Retry(NoBackoff(), 0),
        )

    def start(self) -> RedisProcess:
        """Start the server and wait until it answers.

        The port was free when it was picked, but anything on the machine (another test run,
        a parallel job) can bind it before redis-server does, and redis-server then exits at
        once. That is a race of the test set-up, not of the ledger: the node moves to another
        free port (with its bus port) and starts again, at most three times.
        """
        for _ in range(3):
            self._process = subprocess.Popen(
                [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--dir",
                 str(self.directory), "--daemonize", "no", "--loglevel", "warning",
                 *self.settings],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )  # fmt: skip
            if self._answers():
                return self
            if self._process.poll() is None:
                break  # running but silent: not a lost port
            self.port = cluster_ports(1)[0]
        raise RuntimeError(f"redis-server on port {self.port} did not start")

    def _answers(self) -> bool:
        process, client = self._process, self.client()
        assert process is not None
        try:
            return (
                wait_until(lambda: process.poll() is not None or bool(client.ping()), timeout=10)
                and process.poll() is None
            )
        finally:
            client.close()

    def kill(self) -> None:
        """SIGKILL: the process dies with whatever it had not written."""
        process, self._process = self._process, None
        if process is not None:
            process.kill()
            process.wait(10)

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


class LocalCluster:
    """Three masters and three replicas on loopback (``redis-cli --cluster create``).

    Args:
        root: A directory for the nodes' files.
        node_timeout: ``cluster-node-timeout`` in ms: how long a master may be silent before
            its replica is promoted.
    """

    def __init__(self, root: Path, node_timeout: int = 1000) -> None:
        settings = [
            "--cluster-enabled", "yes",
            "--cluster-node-timeout", str(node_timeout),
            "--save", "",
            "--appendonly", "no",
            "--repl-diskless-sync-delay", "0",
        ]  # fmt: skip
        self.nodes = [
            RedisProcess(port, root / f"node-{port}", settings) for port in cluster_ports(6)
        ]

    @property
    def url(self) -> str:
        return self.nodes[0].url

    def node_on(self, port: int) -> RedisProcess:
        return next(node for node in self.nodes if node.port == port)

    def start(self) -> LocalCluster:
        for node in self.nodes:
            node.start()
        addresses = [f"127.0.0.1:{node.port}" for node in self.nodes]
        subprocess.run(
            [REDIS_CLI, "--cluster", "create", *addresses, "--cluster-replicas", "1",
             "--cluster-yes"],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=60,
        )  # fmt: skip
        if not wait_until(lambda: self.healthy() and self.replicas_in_sync()):
            raise RuntimeError("the cluster did not become healthy")
        return self

    def replicas_in_sync(self) -> bool:
        """Every replica has finished its first sync (a replica that never synced is never
        promoted)."""
        for node in self.nodes:
            client = node.client()
            try:
                info = client.info("replication")
            except redis.ConnectionError:
                continue
            finally:
                client.close()
            if info.get("role") == "slave" and info.get("master_link_status") != "up":
                return False
        return True

    def healthy(self) -> bool:
        """Every live node sees every slot covered and three masters."""
        for node in self.nodes:
            client = node.client()
            try:
                info = client.execute_command("CLUSTER", "INFO")
                text = info.decode() if isinstance(info, bytes) else str(info)
                if "cluster_state:ok" not in text or "cluster_size:3" not in text:
                    return False
            except redis.ConnectionError:
                continue  # a node that is down
            finally:
                client.close()
        return True

    def masters(self) -> list[int]:
        """Ports of the current masters, as a live node sees them."""
        for node in self.nodes:
            client = node.client()
            try:
                slots = client.execute_command("CLUSTER", "SLOTS")
                return sorted({int(entry[2][1]) for entry in slots})
            except redis.ConnectionError:
                continue
            finally:
                client.close()
        raise RuntimeError("no node answers")

    def master_of(self, key: str) -> int:
        """The port of the master serving ``key``'s slot."""
        for node in self.nodes:
            client = node.client()
            try:
                slot = int(client.execute_command("CLUSTER", "KEYSLOT", key))
                for start, end, master, *_ in client.execute_command("CLUSTER", "SLOTS"):
                    if int(start) <= slot <= int(end):
                        return int(master[1])
            except redis.ConnectionError:
                continue
            finally:
                client.close()
        raise RuntimeError("no node answers")

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()

    def __enter__(self) -> LocalCluster:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
