"""The ledger on a real Redis Cluster (three masters, three replicas, started on loopback by the
test): every script stays in one hash slot, two instances agree on every unit, and the ledger
rides out a failover of one master under load with every evaluation answered, the outage
recorded, and each conversation on one variant. A master that comes back empty before its
replica takes over is a ledger loss, detected and repaired from what the instances served."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from openfeature.evaluation_context import EvaluationContext
from openfeature.flag_evaluation import Reason

from featbit_experiments import Experiment, FeatBitProvider, InMemorySink, UnitPolicy
from featbit_experiments.continuity import (
    LedgerEntry,
    LedgerKey,
    RedisStore,
    Risk,
    read_redis_durability,
)
from featbit_experiments.continuity.redis_store import SHARDS
from tests.support import flags as fl
from tests.support.load import Load, Tally
from tests.support.redis_cluster import REDIS_CLI, REDIS_SERVER, LocalCluster, wait_until

pytestmark = pytest.mark.skipif(
    not (Path(REDIS_SERVER).exists() and Path(REDIS_CLI).exists()),
    reason="redis-server and redis-cli are needed to start a local Redis Cluster",
)

FLAG = "reply-style"
CONTROL, TREATMENT = "concise", "detailed"
POLICY = UnitPolicy([Experiment(FLAG, "conversation")])
CONVERSATIONS = [f"c-{n}" for n in range(300)]

InstanceFactory = Callable[..., FeatBitProvider]


def experiment_flag(treatment: float) -> dict[str, Any]:
    return fl.flag(FLAG, [CONTROL, TREATMENT], weights=[1 - treatment, treatment])


def turn(conversation_id: str) -> EvaluationContext:
    return EvaluationContext(attributes={"conversationId": conversation_id})


def evaluate(provider: FeatBitProvider, conversation_id: str) -> Any:
    return provider.resolve_string_details(FLAG, "default", turn(conversation_id))


def make_cluster(tmp_path: Path, node_timeout: int) -> Iterator[LocalCluster]:
    with LocalCluster(tmp_path, node_timeout=node_timeout) as cluster:
        yield cluster


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[LocalCluster]:
    yield from make_cluster(tmp_path, node_timeout=1000)


@pytest.fixture
def slow_failover_cluster(tmp_path: Path) -> Iterator[LocalCluster]:
    """A cluster whose replicas wait 10 s before taking over a silent master."""
    yield from make_cluster(tmp_path, node_timeout=10_000)


def instances_on(
    cluster: LocalCluster, make_provider: Any, sink: InMemorySink
) -> tuple[InstanceFactory, list[RedisStore]]:
    stores: list[RedisStore] = []

    def make(treatment: float = 0.5, sinks: list[Any] | None = None) -> FeatBitProvider:
        store = RedisStore(cluster.url, cluster=True, key_prefix="ledger:", retry_interval=0.1)
        stores.append(store)
        return make_provider(
            [experiment_flag(treatment)], POLICY, store=store, sinks=sinks or [sink]
        )

    return make, stores


@pytest.fixture
def instance(
    cluster: LocalCluster, make_provider: Any, sink: InMemorySink
) -> Iterator[InstanceFactory]:
    make, stores = instances_on(cluster, make_provider, sink)
    yield make
    for store in stores:
        store.close()


def test_every_script_of_the_ledger_stays_in_one_slot(cluster: LocalCluster) -> None:
    store = RedisStore(cluster.url, cluster=True, key_prefix="slots:")
    now = time.time()
    for n in range(200):  # spread over every master: a cross-slot script would fail here
        key = LedgerKey("exp", "run-1", "conversation", f"c-{n}")
        _, created = store.claim(key, LedgerEntry("a", "conversation", now, now, 1))
        assert created and store.touch(key) is not None
        assert store.replace(key, LedgerEntry("b", "conversation", now, now, 1)) is not None
        assert store.end_unit("conversation", f"c-{n}")
    assert store.record_unit("exp", "run-1", "conversation") == "conversation"
    masters_used = {cluster.master_of(store.marker_key(shard)) for shard in range(0, SHARDS, 97)}
    store.close()
    assert masters_used == set(cluster.masters())


def test_the_durability_check_reads_every_master_and_names_each_one_at_risk(
    cluster: LocalCluster,
) -> None:
    store = RedisStore(cluster.url, cluster=True, key_prefix="durability:")
    durable = cluster.node_on(cluster.masters()[0])
    admin = durable.client()
    admin.config_set("appendonly", "yes")
    admin.close()
    durability = read_redis_durability(store.client)
    store.close()
    names = {server.name for server in durability.servers}
    # Every master, and the replicas the cluster reports (Redis lists one once it has synced).
    assert {f"127.0.0.1:{port}" for port in cluster.masters()} <= names
    assert names <= {f"127.0.0.1:{node.port}" for node in cluster.nodes}
    at_risk = {problem.server for problem in durability.risks()}
    assert at_risk == names - {f"127.0.0.1:{durable.port}"}
    assert {problem.risk for problem in durability.risks()} == {Risk.NO_PERSISTENCE}
    assert all(text.startswith("Redis 127.0.0.1:") for text in durability.problems())


def test_on_a_cluster_the_store_keeps_no_local_copy_and_asks_redis_every_turn(
    cluster: LocalCluster,
) -> None:
    store = RedisStore(cluster.url, cluster=True, key_prefix="no-copy:")
    now = time.time()
    key = LedgerKey("exp", "", "conversation", "c-1")
    store.claim(key, LedgerEntry("a", "conversation", now, now, 1))
    store.touch(key)  # loads the script
    trips = store.round_trips
    for _ in range(3):
        assert store.touch(key) is not None
    assert store.local_cache is None and store.cached(key) is None
    assert store.round_trips == trips + 3
    store.close()


def test_two_instances_on_the_cluster_agree_on_every_conversation(
    instance: InstanceFactory,
) -> None:
    all_control, all_treatment = instance(treatment=0.0), instance(treatment=1.0)
    first = {c: evaluate(all_control, c).value for c in CONVERSATIONS}
    second = {c: evaluate(all_treatment, c).value for c in CONVERSATIONS}
    assert first == second == dict.fromkeys(CONVERSATIONS, CONTROL)


def test_a_master_failing_over_under_load_reaches_no_caller_and_keeps_every_variant(
    cluster: LocalCluster, instance: InstanceFactory, sink: InMemorySink
) -> None:
    provider = instance(treatment=0.5)
    assigned = {c: evaluate(provider, c).value for c in CONVERSATIONS}
    assert set(assigned.values()) == {CONTROL, TREATMENT}
    victim = cluster.master_of(provider.store.unit_key("conversation", "c-1"))  # type: ignore[attr-defined]
    tally = Tally()
    calls = iter(range(10**9))
    lock = threading.Lock()

    def call(worker: int, n: int) -> tuple[str, Any]:
        with lock:
            conversation = CONVERSATIONS[next(calls) % len(CONVERSATIONS)]
        return conversation, evaluate(provider, conversation)

    with Load(tally, call, threads=4) as load:
        assert wait_until(lambda: tally.served > 1_000)
        cluster.node_on(victim).kill()
        assert wait_until(lambda: victim not in cluster.masters() and cluster.healthy())
        served_at_promotion = tally.served
        assert wait_until(lambda: tally.served > served_at_promotion + 3_000)
        assert load.stop(timeout=60)

    assert tally.exceptions == [] and tally.error_codes == {}
    assert {c: values for c, values in tally.by_unit.items()} == {
        c: {assigned[c]} for c in tally.by_unit
    }
    assert sink.guardrails("store_unavailable")
    assert sink.guardrails("ledger_lost") == []  # the replica had the data
    # Once the client has the new topology, every conversation is served from the ledger.
    assert wait_until(
        lambda: all(evaluate(provider, c).reason == Reason.CACHED for c in CONVERSATIONS)
    )


def test_a_graceful_failover_is_invisible_to_the_ledger(
    cluster: LocalCluster, instance: InstanceFactory, sink: InMemorySink
) -> None:
    provider = instance(treatment=0.5)
    assigned = {c: evaluate(provider, c).value for c in CONVERSATIONS}
    victim = cluster.master_of(provider.store.unit_key("conversation", "c-1"))  # type: ignore[attr-defined]
    replica = next(
        node
        for node in cluster.nodes
        if node.port != victim
        and f":{victim}@" in _text(node.client().execute_command("CLUSTER", "NODES"))
        and _replica_of(node, victim)
    )
    replica.client().execute_command("CLUSTER", "FAILOVER")
    assert wait_until(lambda: victim not in cluster.masters() and cluster.healthy())
    after = {c: evaluate(provider, c) for c in CONVERSATIONS}
    assert {c: d.value for c, d in after.items()} == assigned
    assert {d.reason for d in after.values()} == {Reason.CACHED}
    assert sink.guardrails("ledger_lost") == []


def test_a_master_back_empty_before_its_replica_took_over_is_a_detected_loss(
    slow_failover_cluster: LocalCluster, make_provider: Any, sink: InMemorySink
) -> None:
    make, stores = instances_on(slow_failover_cluster, make_provider, sink)
    provider = make(treatment=0.5)
    assigned = {c: evaluate(provider, c).value for c in CONVERSATIONS}
    victim = slow_failover_cluster.master_of(stores[0].unit_key("conversation", "c-1"))
    node = slow_failover_cluster.node_on(victim)
    node.kill()
    node.start()  # its nodes.conf makes it the master of its slots again, with nothing in them
    assert wait_until(slow_failover_cluster.healthy)
    assert victim in slow_failover_cluster.masters()

    after = {c: evaluate(provider, c).value for c in CONVERSATIONS}
    for store in stores:
        store.close()

    assert after == assigned
    counts = provider.resolver.ledger.recovery.loss_counts()  # type: ignore[union-attr]
    lost = [
        c
        for c in CONVERSATIONS
        if slow_failover_cluster.master_of(stores[0].unit_key("conversation", c)) == victim
    ]
    assert counts["unitsRestored"] == len(lost) > 0
    assert sink.guardrails("ledger_lost")


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _replica_of(node: Any, master_port: int) -> bool:
    client = node.client()
    try:
        nodes = _text(client.execute_command("CLUSTER", "NODES")).splitlines()
    finally:
        client.close()
    master_id = next(line.split()[0] for line in nodes if f":{master_port}@" in line)
    myself = next(line for line in nodes if "myself" in line)
    return myself.split()[3] == master_id
