"""Faults that used to lose state silently, measured: an empty Redis restart under a moved
rollout, a Redis Cluster master failing over under load, a full disk, a deleted and a rotated
event file, raw IDs in logs with privacy on, and shutdown in each FeatBit fault (how long it
takes, the threads it leaves, the insight events delivered or dropped: ``_shutdown_faults``).
Each row says what was sent or served, what was kept, what was counted as lost, and what was
recorded, so the counts can be checked to add up.

Run alone with ``python -m benchmarks.bench_state_faults``: it prints the Markdown rows pasted
into ``docs/reliability.md`` (the stalled-Redis rows come from ``bench_continuity``, memory per
held unit from ``bench_memory``). The full-disk row mounts a 64 KiB tmpfs and needs root.
"""

from __future__ import annotations

import gc
import logging
import os
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from openfeature.evaluation_context import EvaluationContext
from openfeature.track import TrackingEventDetails

from benchmarks._report import Row, print_rows
from benchmarks._shutdown_faults import rows as shutdown_rows
from featbit_experiments import (
    Experiment,
    FeatBitProvider,
    InMemorySink,
    JsonLinesSink,
    Metric,
    Privacy,
    UnitPolicy,
)
from featbit_experiments.continuity import RedisStore
from featbit_experiments.guardrails import EventFanout
from tests.support import flags as fl
from tests.support.load import Load, Tally
from tests.support.redis_cluster import LocalCluster, wait_until
from tests.support.redis_server import ThrowawayRedis

FLAG = "reply-style"
POLICY = UnitPolicy([Experiment(FLAG, "conversation")], [Metric("resolved", "conversation")])
CONVERSATIONS = [f"c-{n}" for n in range(162)]


def _flag(treatment: float, version: int = 1) -> dict[str, Any]:
    return fl.flag(
        FLAG, ["control", "treatment"], weights=[1 - treatment, treatment], version=version
    )


def _provider(store: Any, sink: InMemorySink, **options: Any) -> FeatBitProvider:
    path = Path(tempfile.mkdtemp()) / "flags.json"
    path.write_text(fl.bootstrap_json([_flag(0.5)]), encoding="utf-8")
    return FeatBitProvider.offline(path, policy=POLICY, sinks=[sink], store=store, **options)


def _value(provider: FeatBitProvider, conversation: str) -> Any:
    context = EvaluationContext(attributes={"conversationId": conversation})
    return provider.resolve_string_details(FLAG, "default", context).value


def _guardrails(sink: InMemorySink, name: str) -> int:
    return len(sink.guardrails(name))


def empty_restart() -> Row:
    with ThrowawayRedis() as server:
        sink = InMemorySink()
        provider = _provider(RedisStore(server.url, key_prefix="bench:"), sink)
        first = {c: _value(provider, c) for c in CONVERSATIONS}
        provider.client.initialize_from_external_json(fl.bootstrap_json([_flag(1.0, 2)]))
        server.stop()
        server.start()
        second = {c: _value(provider, c) for c in CONVERSATIONS}
        counts = provider.resolver.ledger.recovery.loss_counts()  # type: ignore[union-attr]
        provider.shutdown()
    moved = sum(first[c] != second[c] for c in CONVERSATIONS)
    control = sum(v == "control" for v in first.values())
    return Row(
        name="Redis back empty, rollout moved 50/50 -> 0/100 (finish_active)",
        value=moved,
        unit="switched",
        note=f"{len(CONVERSATIONS)} conversations ({control} in control): {moved} switched "
        f"variant; ledger_lost x{_guardrails(sink, 'ledger_lost')}: "
        f"{counts.get('shardsLost', 0)} shards, {counts.get('unitsRestored', 0)} units restored",
    )


def cluster_failover() -> Row:
    with tempfile.TemporaryDirectory() as root, LocalCluster(Path(root)) as cluster:
        sink = InMemorySink()
        store = RedisStore(cluster.url, cluster=True, key_prefix="bench:", retry_interval=0.1)
        provider = _provider(store, sink)
        assigned = {c: _value(provider, c) for c in CONVERSATIONS}
        victim = cluster.master_of(store.unit_key("conversation", "c-1"))
        tally = Tally()
        lock, calls = threading.Lock(), iter(range(10**9))

        def call(worker: int, n: int) -> tuple[str, Any]:
            with lock:
                conversation = CONVERSATIONS[next(calls) % len(CONVERSATIONS)]
            context = EvaluationContext(attributes={"conversationId": conversation})
            return conversation, provider.resolve_string_details(FLAG, "default", context)

        with Load(tally, call, threads=4) as load:
            wait_until(lambda: tally.served > 1_000)
            killed = time.monotonic()
            cluster.node_on(victim).kill()
            wait_until(lambda: victim not in cluster.masters() and cluster.healthy())
            promoted = time.monotonic() - killed
            served = tally.served
            wait_until(lambda: tally.served > served + 3_000)
            load.stop(timeout=60)
        provider.shutdown()
        store.close()
    moved = sum(len(values) > 1 or assigned[c] not in values for c, values in tally.by_unit.items())
    return Row(
        name="Redis Cluster: a master killed under load (4 threads)",
        value=len(tally.exceptions) + sum(tally.error_codes.values()),
        unit="errors",
        note=f"{tally.served:,} evaluations, replica promoted after {promoted:.1f} s; "
        f"store_unavailable x{_guardrails(sink, 'store_unavailable')}; {moved} conversations "
        f"changed variant; ledger_lost x{_guardrails(sink, 'ledger_lost')}",
    )


def _sink_run(path: Path, events: int, fault: Callable[[int], None]) -> tuple[Any, InMemorySink]:
    jsonl, others = JsonLinesSink(path, buffer_size=10), InMemorySink()
    fanout = EventFanout([jsonl, others], failure_report_interval=3600)
    for n in range(events):
        fault(n)
        fanout.emit({"event": "experiment_exposure", "n": n, "pad": "x" * 180})
    fanout.flush()
    jsonl.close()
    return jsonl.counts(), others


def _sink_row(name: str, counts: Any, others: InMemorySink, lines: int) -> Row:
    lost = sum(int(g["eventsLost"]) for g in others.guardrails("sink_failed"))
    return Row(
        name=name,
        value=counts.failed,
        unit="failed",
        note=f"{counts.accepted:,} sent = {counts.written:,} written + {counts.failed:,} failed; "
        f"{lines:,} whole lines on disk; sink_failed x{_guardrails(others, 'sink_failed')} "
        f"reporting {lost:,} lost",
    )


def full_disk() -> Row | None:
    if os.geteuid() != 0:
        return None
    with tempfile.TemporaryDirectory() as root:
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", root])
        if mounted.returncode != 0:
            return None
        try:
            path = Path(root) / "events.jsonl"
            counts, others = _sink_run(path, 6_300, lambda n: None)
            lines = len(path.read_text(encoding="utf-8").splitlines())
        finally:
            subprocess.run(["umount", "-l", root], check=False)
    return _sink_row(
        "event file on a full disk (64 KiB tmpfs), 6,300 events", counts, others, lines
    )


def moved_file(rotate: bool) -> Row:
    with tempfile.TemporaryDirectory() as root:
        path = Path(root) / "events.jsonl"

        def fault(n: int) -> None:
            if n == 100:
                path.rename(path.with_suffix(".1")) if rotate else path.unlink()

        counts, others = _sink_run(path, 1_000, fault)
        files = [path, path.with_suffix(".1")] if rotate else [path]
        lines = sum(len(p.read_text(encoding="utf-8").splitlines()) for p in files)
    what = "renamed by a log rotator" if rotate else "deleted"
    return _sink_row(f"event file {what} after 100 of 1,000 events", counts, others, lines)


def privacy_logs() -> Row:
    records: list[logging.LogRecord] = []

    class Capture(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    gc.collect()
    root = logging.getLogger()
    handler, level = Capture(logging.DEBUG), root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        provider = _provider(None, InMemorySink(), privacy=Privacy.hashed("x" * 32))
        ids = [f"conv-{uuid.uuid4().hex[:8]}" for _ in range(40)]
        for conversation in ids:
            _value(provider, conversation)
            context = EvaluationContext(attributes={"conversationId": conversation})
            provider.track("resolved", context, TrackingEventDetails(value=1.0))
        provider.shutdown()
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    leaked = sum(any(i in r.getMessage() for i in ids) for r in records)
    return Row(
        name="raw unit IDs in log records, Privacy.hashed(), 40 conversations",
        value=leaked,
        unit="records",
        note=f"{len(records)} records captured at DEBUG from every logger",
    )


def run() -> list[Row]:
    rows = [empty_restart(), cluster_failover()]
    disk = full_disk()
    if disk is not None:
        rows.append(disk)
    rows += [moved_file(rotate=False), moved_file(rotate=True), privacy_logs()]
    return rows + shutdown_rows()


if __name__ == "__main__":
    print_rows("bench_state_faults", run())
