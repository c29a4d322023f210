"""Whether a Redis deployment keeps what the assignment ledger writes to it.

The ledger needs every unit's entry for as long as the unit is active. Redis can drop entries
four ways without an error: evicting keys when it reaches ``maxmemory`` (any policy but
``noeviction``, since every ledger key has a TTL), coming back empty after a restart (no
persistence), coming back from an older snapshot (RDB only, no AOF), or losing the last writes
in a crash (``appendfsync no``). The ledger notices an emptied shard (see ``redis_store``), but
not a single evicted unit or a partial rollback, so these settings are checked up front: by the
provider at start-up (``ledger_at_risk``) and by the preflight, both through
:func:`read_redis_durability`, with the same words.

It reads ``CONFIG GET`` on the server, or on every node a Redis Cluster reports (its masters,
and the replicas it lists, since a replica becomes a master in a failover), where the server
allows it (managed services often refuse it). It changes nothing, never raises for a Redis
problem and is never on the evaluation path.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

__all__ = [
    "NON_EVICTING_POLICY",
    "RECOMMENDED",
    "DurabilityProblem",
    "RedisDurability",
    "Risk",
    "ServerDurability",
    "read_redis_durability",
    "redis_durability_problems",
]

#: What the README asks of a Redis that holds the ledger.
RECOMMENDED = "maxmemory-policy noeviction, appendonly yes, appendfsync everysec (or always)"
#: The only ``maxmemory-policy`` that never evicts: every ledger key carries an idle TTL, so
#: the ``volatile-*`` policies evict them as readily as ``allkeys-*``.
NON_EVICTING_POLICY = "noeviction"
_SETTINGS = ("save", "appendonly", "appendfsync", "maxmemory", "maxmemory-policy")


class Risk(str, Enum):
    """A way a Redis can lose the ledger, or fail to say whether it can."""

    UNREACHABLE = "unreachable"
    UNCHECKED = "unchecked"  # it answers, but refuses CONFIG GET
    NO_PERSISTENCE = "no_persistence"
    SNAPSHOTS_ONLY = "snapshots_only"
    LAX_FSYNC = "lax_fsync"
    EVICTION = "eviction"


@dataclass(frozen=True)
class DurabilityProblem:
    """One risk on one server (``server`` is ``""`` for a single Redis), in one sentence."""

    risk: Risk
    server: str
    detail: str

    def __str__(self) -> str:
        return f"Redis {self.server}: {self.detail}" if self.server else f"Redis: {self.detail}"


@dataclass(frozen=True)
class ServerDurability:
    """What one Redis server's configuration means for the ledger.

    Args:
        name: ``host:port`` for a node of a cluster; ``""`` for a single server.
        reachable: Whether the server answered at all.
        error: Why it could not be reached or its configuration read.
        save: The RDB snapshot schedule (``""`` when snapshots are off); None if unread.
        appendonly: Whether the append-only file is on; None if unread.
        appendfsync: How often the append-only file is synced; None if unread.
        maxmemory: The memory limit in bytes (0: none); None if unread.
        maxmemory_policy: What Redis does at the limit; None if unread.
    """

    name: str = ""
    reachable: bool = True
    error: str | None = None
    save: str | None = None
    appendonly: bool | None = None
    appendfsync: str | None = None
    maxmemory: int | None = None
    maxmemory_policy: str | None = None

    @property
    def readable(self) -> bool:
        return self.reachable and self.appendonly is not None and self.maxmemory is not None

    @property
    def snapshots(self) -> bool:
        return bool((self.save or "").strip())

    @property
    def evicting_policy(self) -> bool | None:
        """Whether the policy may evict ledger keys once a limit is reached."""
        if self.maxmemory_policy is None:
            return None
        return self.maxmemory_policy != NON_EVICTING_POLICY

    @property
    def evicts(self) -> bool | None:
        """Whether ledger keys can be evicted now: an evicting policy with a memory limit."""
        if self.evicting_policy is None or self.maxmemory is None:
            return None
        return self.evicting_policy and self.maxmemory > 0

    def risks(self) -> list[DurabilityProblem]:
        """Every way this server can lose assignments, or why that is unknown."""
        if not self.reachable:
            return [self._problem(Risk.UNREACHABLE, f"cannot be reached ({self.error})")]
        if not self.readable:
            detail = f"cannot read its configuration ({self.error}); make sure it has {RECOMMENDED}"
            return [self._problem(Risk.UNCHECKED, detail)]
        found = [self._problem(risk, detail) for risk, detail in self._persistence()]
        if self.evicts:
            found.append(
                self._problem(
                    Risk.EVICTION,
                    f"maxmemory-policy is {self.maxmemory_policy!r} with maxmemory "
                    f"{self.maxmemory}: when full, Redis evicts ledger entries (all carry a "
                    "TTL) and those units silently look new; set maxmemory-policy noeviction "
                    "(writes then fail, which the ledger reports)",
                )
            )
        return found

    def _persistence(self) -> list[tuple[Risk, str]]:
        if not self.appendonly and self.snapshots:
            return [
                (
                    Risk.SNAPSHOTS_ONLY,
                    f"persistence is RDB snapshots only (save {self.save!r}): after a restart, "
                    "assignments made since the last snapshot are gone without the ledger "
                    "noticing; set appendonly yes",
                )
            ]
        if not self.appendonly:
            return [
                (
                    Risk.NO_PERSISTENCE,
                    "persistence is off (no AOF, no RDB snapshots): a restart comes back empty "
                    "and every active unit loses its assignment (reported as ledger_lost; units "
                    "no instance remembers are assigned again); set appendonly yes",
                )
            ]
        if self.appendfsync == "no":
            return [
                (
                    Risk.LAX_FSYNC,
                    "appendfsync is 'no': a crash can lose the last ~30 s of assignments; set "
                    "appendfsync everysec",
                )
            ]
        return []

    def _problem(self, risk: Risk, detail: str) -> DurabilityProblem:
        return DurabilityProblem(risk, self.name, detail)


@dataclass(frozen=True)
class RedisDurability:
    """What a Redis deployment's configuration means for the ledger: one
    :class:`ServerDurability` per server read (one, or every node of a cluster)."""

    servers: tuple[ServerDurability, ...]

    @classmethod
    def unreachable(cls, error: str) -> RedisDurability:
        return cls((ServerDurability(reachable=False, error=error),))

    @property
    def reachable(self) -> bool:
        return all(server.reachable for server in self.servers)

    def risks(self) -> list[DurabilityProblem]:
        """Every server's risks, in server order."""
        return [problem for server in self.servers for problem in server.risks()]

    def problems(self) -> list[str]:
        """One sentence per way this deployment can lose assignments (empty when none is
        known); a server that cannot be checked is one of them."""
        return [str(problem) for problem in self.risks()]


def read_redis_durability(client: Any) -> RedisDurability:
    """Read persistence and eviction settings through ``client`` (a ``redis.Redis``, or a
    ``redis.cluster.RedisCluster`` whose every node is read). Never raises for a Redis
    problem: an unreachable server or a refused ``CONFIG GET`` is described in the result."""
    try:
        nodes = _nodes(client)
    except Exception as error:  # a cluster whose topology cannot be read
        return RedisDurability.unreachable(_describe(error))
    return RedisDurability(tuple(_read(name, node) for name, node in nodes))


def redis_durability_problems(client: Any) -> list[str]:
    """``read_redis_durability(client).problems()``: what could make the Redis behind
    ``client`` lose ledger entries, one sentence each."""
    return read_redis_durability(client).problems()


def _nodes(client: Any) -> list[tuple[str, Any]]:
    """(name, plain client) for each server to check: every node a cluster reports, or the
    one server."""
    get_nodes = getattr(client, "get_nodes", None)
    if get_nodes is None:
        return [("", client)]
    return [(node.name, client.get_redis_connection(node)) for node in get_nodes()]


def _read(name: str, node: Any) -> ServerDurability:
    import redis

    values: dict[str, str] = {}
    try:
        for parameter in _SETTINGS:
            for key, value in node.config_get(parameter).items():
                values[_text(key)] = _text(value)
    except redis.ResponseError as error:  # NOPERM, or CONFIG renamed away by the host
        return ServerDurability(name, error=f"CONFIG GET refused: {_describe(error)}")
    except (redis.RedisError, OSError) as error:
        return ServerDurability(name, reachable=False, error=_describe(error))
    return ServerDurability(
        name,
        save=values.get("save", ""),
        appendonly=values.get("appendonly", "no").strip().lower() == "yes",
        appendfsync=values.get("appendfsync", "everysec").strip().lower(),
        maxmemory=int(values.get("maxmemory") or 0),
        maxmemory_policy=values.get("maxmemory-policy", NON_EVICTING_POLICY).strip().lower(),
    )


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
