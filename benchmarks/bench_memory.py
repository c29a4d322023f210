"""Memory per held unit, end to end: the resident set (RSS) a provider adds for each experiment
unit it holds, counting everything kept per unit (the assignment ledger, exposure
deduplication, and anything else), measured through the real provider and OpenFeature client.

Each scenario runs in a fresh interpreter so its RSS is its own. A scenario evaluates one
experiment flag for ``units`` distinct conversations (two turns each, so the ledger serves the
second from memory), then reports RSS growth divided by the units the provider still holds. With
a Redis ledger the units live in Redis; what this process keeps per unit is its memory of what
it served (for outages and losses) and exposure deduplication.
Events go to a sink that only counts them, so no event is kept in memory by the benchmark.

Run alone with ``python -m benchmarks.bench_memory``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

from benchmarks._report import Row, print_rows

TARGET_BYTES = 500

_SCENARIOS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("100,000 conversations held (in-memory ledger)", {"units": 100_000}),
    (
        "1,000,000 conversations through the 100,000-unit bound",
        {"units": 1_000_000, "bound": 100_000},
    ),
    ("100,000 conversations, end_unit after each", {"units": 100_000, "end": True}),
    ("100,000 conversations held (Redis ledger; memory in this process)", {"units": 100_000}),
)
_REDIS_SCENARIO = _SCENARIOS[-1][0]


def _measure(
    units: int, bound: int | None = None, end: bool = False, redis_url: str | None = None
) -> dict[str, Any]:
    """One scenario in this process (run in a child interpreter by :func:`run`)."""
    import gc
    import tempfile
    import uuid
    from pathlib import Path

    from openfeature import api
    from openfeature.evaluation_context import EvaluationContext

    from featbit_experiments import Experiment, FeatBitProvider, UnitPolicy
    from featbit_experiments.continuity import InMemoryStore, RedisStore
    from tests.support import flags as fl

    class CountingSink:
        def __init__(self) -> None:
            self.events = 0

        def emit(self, event: Any) -> None:
            self.events += 1

    flag_key = "reply-style"
    path = Path(tempfile.mkdtemp()) / "bench-memory.json"
    path.write_text(
        fl.bootstrap_json([fl.flag(flag_key, ["concise", "detailed"])]), encoding="utf-8"
    )
    sink = CountingSink()
    options: dict[str, Any] = {}
    if bound is not None:
        options["store"] = InMemoryStore(max_entries=bound)
    if redis_url is not None:
        options["store"] = RedisStore(redis_url, key_prefix=f"bench-memory-{uuid.uuid4().hex}:")
    provider = FeatBitProvider.offline(
        path,
        policy=UnitPolicy([Experiment(flag_key, "conversation")]),
        sinks=[sink],
        **options,
    )
    domain = f"bench-memory-{uuid.uuid4().hex[:8]}"
    api.set_provider_and_wait(provider, domain=domain)
    client = api.get_client(domain)

    def conversation(n: int) -> None:
        context = EvaluationContext(attributes={"conversationId": f"conversation-{n:012d}"})
        client.get_string_value(flag_key, "concise", context)
        client.get_string_value(flag_key, "concise", context)
        if end:
            provider.end_unit("conversation", f"conversation-{n:012d}")

    for n in range(1_000):  # warm up: caches, code paths, allocator arenas
        conversation(-n - 1)
        provider.end_unit("conversation", f"conversation-{-n - 1:012d}")
    gc.collect()
    before = _rss()
    for n in range(units):
        conversation(n)
    gc.collect()
    after = _rss()
    served = provider.resolver.ledger.recovery.served  # type: ignore[union-attr]
    held = len(served) if redis_url is not None and served is not None else len(provider.store)  # type: ignore[arg-type]
    api.clear_providers()
    return {"before": before, "after": after, "held": held, "events": sink.events}


def _rss() -> int:
    with open("/proc/self/statm", encoding="ascii") as statm:
        pages = int(statm.read().split()[1])
    import resource

    return pages * resource.getpagesize()


def _child(options: dict[str, Any]) -> dict[str, Any]:
    code = (
        "import json, sys; from benchmarks.bench_memory import _measure; "
        "print(json.dumps(_measure(**json.loads(sys.argv[1]))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, json.dumps(options)],
        check=True,
        capture_output=True,
        text=True,
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def run() -> list[Row]:
    from tests.support.redis_server import ThrowawayRedis

    rows: list[Row] = []
    for name, options in _SCENARIOS:
        if name == _REDIS_SCENARIO:
            with ThrowawayRedis() as server:
                result = _child({**options, "redis_url": server.url})
        else:
            result = _child(options)
        grown = result["after"] - result["before"]
        held = result["held"]
        mib = f"RSS {result['before'] / 2**20:.0f} -> {result['after'] / 2**20:.0f} MiB"
        if held:
            rows.append(
                Row(
                    name=name,
                    value=grown / held,
                    unit="B/unit",
                    target=f"<= {TARGET_BYTES} bytes per held unit",
                    note=f"{held:,} units held; {mib}; {result['events']:,} events",
                )
            )
        else:
            rows.append(
                Row(
                    name=name,
                    value=grown / 2**20,
                    unit="MiB",
                    target="~0: nothing held",
                    note=f"0 units held; {mib}; {result['events']:,} events",
                )
            )
    return rows


if __name__ == "__main__":
    print_rows("bench_memory", run())
