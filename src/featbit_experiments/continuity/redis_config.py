"""Whether a Redis server keeps the assignment ledger: persistence across a restart, and a
``maxmemory-policy`` that never evicts a unit's assignments to make room.

A ledger on a Redis that restarts empty or evicts under memory pressure loses units'
assignments; under ``finish_active`` those units then follow the current rollout. This module
only reads the server's settings (``CONFIG GET``, where the server allows it: managed services
often refuse it) and says what they mean; it changes nothing and is called at start-up or by the
preflight, never on the evaluation path.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["NON_EVICTING_POLICY", "RedisDurability", "read_redis_durability"]

#: The only ``maxmemory-policy`` that never evicts: every ledger key carries an idle TTL, so
#: the ``volatile-*`` policies evict them as readily as ``allkeys-*``.
NON_EVICTING_POLICY = "noeviction"


@dataclass(frozen=True)
class RedisDurability:
    """What a Redis server's configuration means for the ledger.

    Args:
        reachable: Whether the server answered at all.
        error: Why it could not be reached or its configuration read.
        save: The RDB snapshot schedule (``""`` when snapshots are off); None if unread.
        appendonly: Whether the append-only file is on; None if unread.
        maxmemory: The memory limit in bytes (0: none); None if unread.
        maxmemory_policy: What Redis does at the limit; None if unread.
    """

    reachable: bool
    error: str | None = None
    save: str | None = None
    appendonly: bool | None = None
    maxmemory: int | None = None
    maxmemory_policy: str | None = None

    @property
    def readable(self) -> bool:
        return self.save is not None and self.maxmemory_policy is not None

    @property
    def persistent(self) -> bool | None:
        """Whether the data survives a restart (RDB snapshots or AOF); None if unknown."""
        if self.save is None or self.appendonly is None:
            return None
        return bool(self.save.strip()) or self.appendonly

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

    def problems(self) -> list[str]:
        """One sentence per way this server can lose assignments (empty when none is known)."""
        if not self.reachable:
            return [f"the ledger's Redis cannot be reached: {self.error}"]
        found: list[str] = []
        if self.persistent is False:
            found.append(
                "Redis keeps no snapshot or append-only file (save '' and appendonly no): "
                "a restart comes back empty and every active unit loses its assignment"
            )
        if self.evicts:
            found.append(
                f"Redis evicts keys at its memory limit (maxmemory-policy "
                f"{self.maxmemory_policy}, maxmemory {self.maxmemory}): assignments can "
                f"vanish under memory pressure; use {NON_EVICTING_POLICY}"
            )
        return found


def read_redis_durability(client: Any) -> RedisDurability:
    """Read persistence and eviction settings through ``client`` (a ``redis.Redis``).

    Never raises for a Redis problem: an unreachable server or a refused ``CONFIG GET`` is
    described in the result.
    """
    import redis

    values: dict[str, str] = {}
    try:
        for name in ("save", "appendonly", "maxmemory", "maxmemory-policy"):
            answer = client.config_get(name)
            values[name] = _text(answer.get(name, answer.get(name.encode(), "")))
    except redis.ResponseError as error:  # NOPERM, or CONFIG renamed away by the host
        return RedisDurability(reachable=True, error=f"CONFIG GET refused: {error}")
    except (redis.RedisError, OSError) as error:
        return RedisDurability(reachable=False, error=f"{type(error).__name__}: {error}")
    return RedisDurability(
        reachable=True,
        save=values["save"],
        appendonly=values["appendonly"].strip().lower() == "yes",
        maxmemory=int(values["maxmemory"] or 0),
        maxmemory_policy=values["maxmemory-policy"].strip().lower(),
    )


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
