"""The start-up check of the Redis behind the ledger: eviction and persistence settings that can
lose assignments without an error are named, on a real redis-server configured each way."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from featbit_experiments.continuity import Risk, read_redis_durability, redis_durability_problems
from tests.support.redis_cluster import RedisProcess
from tests.support.redis_server import free_port


@pytest.fixture
def admin(tmp_path: Path) -> Iterator[redis.Redis]:
    server = RedisProcess(free_port(), tmp_path, ["--save", "", "--appendonly", "no"]).start()
    client = server.client()
    yield client
    while client.info("persistence").get("aof_rewrite_in_progress"):
        time.sleep(0.01)  # a server stopped mid-rewrite takes seconds to exit
    client.close()
    server.stop()


def durable(client: redis.Redis) -> None:
    client.config_set("appendonly", "yes")
    client.config_set("appendfsync", "everysec")
    client.config_set("maxmemory-policy", "noeviction")


def test_a_durable_redis_has_no_problem(admin: redis.Redis) -> None:
    durable(admin)
    assert redis_durability_problems(admin) == []


def test_no_persistence_means_a_restart_empties_the_ledger(admin: redis.Redis) -> None:
    [problem] = redis_durability_problems(admin)  # the throwaway server keeps nothing on disk
    assert "persistence is off" in problem and "appendonly yes" in problem


def test_snapshots_alone_lose_what_came_after_the_last_one(admin: redis.Redis) -> None:
    admin.config_set("save", "3600 1")
    [problem] = redis_durability_problems(admin)
    assert "RDB snapshots only" in problem


def test_an_eviction_policy_under_a_memory_limit_can_evict_ledger_entries(
    admin: redis.Redis,
) -> None:
    durable(admin)
    admin.config_set("maxmemory", "64mb")
    admin.config_set("maxmemory-policy", "volatile-lru")  # ledger keys all have a TTL
    [problem] = redis_durability_problems(admin)
    assert "'volatile-lru'" in problem and "noeviction" in problem


def test_an_eviction_policy_without_a_memory_limit_evicts_nothing(admin: redis.Redis) -> None:
    durable(admin)
    admin.config_set("maxmemory-policy", "allkeys-lru")
    assert redis_durability_problems(admin) == []


def test_a_redis_that_refuses_config_get_is_reported_as_unchecked(admin: redis.Redis) -> None:
    admin.acl_setuser(
        "ledger", enabled=True, passwords=["+secret"], keys=["*"], commands=["+@all", "-config"]
    )
    host, port = (
        admin.connection_pool.connection_kwargs["host"],
        admin.connection_pool.connection_kwargs["port"],
    )
    limited = redis.Redis(host=host, port=port, username="ledger", password="secret")
    [problem] = redis_durability_problems(limited)
    limited.close()
    assert "cannot read its configuration" in problem and "NoPermission" in problem


def test_an_unreachable_redis_is_reported_not_raised() -> None:
    client = redis.Redis(port=free_port(), socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0))
    [problem] = redis_durability_problems(client)
    assert "cannot be reached" in problem and "ConnectionError" in problem


def test_appendfsync_no_can_lose_the_last_assignments_in_a_crash(admin: redis.Redis) -> None:
    durable(admin)
    admin.config_set("appendfsync", "no")
    [problem] = read_redis_durability(admin).risks()
    assert problem.risk is Risk.LAX_FSYNC and "appendfsync everysec" in problem.detail


def test_the_reading_keeps_what_the_server_said(admin: redis.Redis) -> None:
    durable(admin)
    admin.config_set("save", "3600 1")
    [server] = read_redis_durability(admin).servers
    assert (server.name, server.appendonly, server.appendfsync) == ("", True, "everysec")
    assert (server.save, server.maxmemory, server.maxmemory_policy) == ("3600 1", 0, "noeviction")
