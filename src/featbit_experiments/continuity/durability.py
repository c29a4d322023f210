"""Whether a Redis server keeps what the assignment ledger writes to it.

The ledger needs every unit's entry for as long as the unit is active. Redis can drop entries
three ways without an error: evicting keys when it reaches ``maxmemory`` (any policy but
``noeviction``, since every ledger key has a TTL), coming back empty after a restart (no
persistence), or coming back from an older snapshot (RDB only, no AOF). The ledger notices an
emptied shard (see ``redis_store``), but not a single evicted unit or a partial rollback, so these
settings are checked up front, where ``CONFIG GET`` is allowed (managed services often refuse it).

This module only reads configuration; it changes nothing and never raises.
"""

from __future__ import annotations

from typing import Any

#: What the README asks of a Redis that holds the ledger.
RECOMMENDED = "maxmemory-policy noeviction, appendonly yes, appendfsync everysec (or always)"


def redis_durability_problems(client: Any) -> list[str]:
    """What could make the Redis behind ``client`` (a ``redis.Redis`` or
    ``redis.cluster.RedisCluster``) lose ledger entries, one sentence each; empty when nothing
    is known to be wrong. A server whose configuration cannot be read is reported as such."""
    problems: list[str] = []
    try:
        nodes = _nodes(client)
    except Exception as error:  # a cluster whose topology cannot be read
        return [f"Redis: cannot reach it to check eviction and persistence ({error})"]
    for name, node in nodes:
        where = f"Redis {name}: " if name else "Redis: "
        try:
            config = _config(node)
        except Exception as error:  # ResponseError (CONFIG disabled, NOPERM), timeouts, ...
            problems.append(
                f"{where}cannot read its configuration to check eviction and persistence "
                f"({type(error).__name__}: {error}); make sure it has {RECOMMENDED}"
            )
            continue
        problems.extend(where + problem for problem in _problems(config))
    return problems


def _problems(config: dict[str, str]) -> list[str]:
    problems: list[str] = []
    policy = config.get("maxmemory-policy", "noeviction")
    if config.get("maxmemory", "0") not in ("0", "") and policy != "noeviction":
        problems.append(
            f"maxmemory-policy is {policy!r} with maxmemory {config['maxmemory']}: when full, "
            "Redis evicts ledger entries and those units silently look new; set "
            "maxmemory-policy noeviction (writes then fail, which the ledger reports)"
        )
    if config.get("appendonly", "no") != "yes":
        if config.get("save", "").strip():
            problems.append(
                f"persistence is RDB snapshots only (save {config['save']!r}): after a restart, "
                "assignments made since the last snapshot are gone without the ledger noticing; "
                "set appendonly yes"
            )
        else:
            problems.append(
                "persistence is off (no AOF, no RDB snapshots): a restart empties the ledger "
                "(reported as ledger_lost; units no instance remembers are assigned again); set "
                "appendonly yes"
            )
    elif config.get("appendfsync") == "no":
        problems.append(
            "appendfsync is 'no': a crash can lose the last ~30 s of assignments; set "
            "appendfsync everysec"
        )
    return problems


def _nodes(client: Any) -> list[tuple[str, Any]]:
    """(name, plain client) for each node to check: the masters of a cluster, or the one
    server."""
    get_nodes = getattr(client, "get_nodes", None)
    if get_nodes is None:
        return [("", client)]
    return [(node.name, client.get_redis_connection(node)) for node in get_nodes()]


def _config(node: Any) -> dict[str, str]:
    config: dict[str, str] = {}
    for parameter in ("maxmemory", "maxmemory-policy", "appendonly", "appendfsync", "save"):
        for name, value in node.config_get(parameter).items():
            config[_text(name)] = _text(value)
    return config


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
