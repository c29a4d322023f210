"""How long ``FeatBitProvider.shutdown()`` takes in each fault, and what it leaves behind.

For each fault, a provider built with ``connect()``'s defaults (websocket timeout 5 s, insights
through the ``BoundedEventProcessor``) syncs from the FeatBit test server running in a child
process, makes 2,000 evaluations for new users (one insight event each), meets the fault, and
is shut down; the time of ``shutdown()`` is measured, the threads it leaves running are listed
(``threading.enumerate()`` before and after) and the insight counts are checked to add up.
Each fault runs several times against one server, restarted between runs.

The rows go into ``bench_state_faults``; the module is also run against the code before issue
12 for the "before" column of ``docs/reliability.md`` (it only uses public API, the processor's
``counts()`` and the test server).
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from openfeature.evaluation_context import EvaluationContext

from benchmarks._report import Row
from featbit_experiments import FeatBitProvider, InMemorySink
from tests.support import flags as fl
from tests.support.featbit_server_process import FeatBitServerProcess

FLAG = "answer-cache"
EVENTS = 2_000
RUNS = 5
WAIT = 10.0

Control = Any  # the child process's FeatBit server, through a manager proxy


@dataclass(frozen=True)
class Fault:
    name: str
    before_load: Callable[[Control], None]  # applied once the provider has synced
    after_load: Callable[[Control, Any], None]  # applied, and waited for, before shutdown


@dataclass(frozen=True)
class Sample:
    seconds: float
    threads_left: list[str]
    accepted: int
    delivered: int
    dropped_at_stop: int
    still_pending: int
    guardrails: int


def _nothing(*_: Any) -> None:
    pass


def _failing(status: int) -> Callable[[Control], None]:
    return lambda control: control.set_insights(status, 0.0)


def _until_a_post_failed(control: Control, processor: Any) -> None:
    _wait_for(lambda: processor.counts().failed_posts >= 1)


def _hanging(control: Control) -> None:
    control.set_insights(200, 0.0, True)


def _until_posts_hang(control: Control, processor: Any) -> None:
    processor.flush()
    _wait_for(lambda: control.hanging_posts() >= 1)


def _stalled(control: Control, processor: Any) -> None:
    control.stall_streaming()


def _stalled_and_hanging(control: Control, processor: Any) -> None:
    _until_posts_hang(control, processor)
    control.stall_streaming()


FAULTS = [
    Fault("nothing wrong", _nothing, _nothing),
    Fault("insights endpoint answering 500", _failing(500), _until_a_post_failed),
    Fault("insights endpoint answering 429", _failing(429), _until_a_post_failed),
    Fault("insights endpoint hanging (POSTs never answered)", _hanging, _until_posts_hang),
    Fault("stream stalled (accepted, then never answers)", _nothing, _stalled),
    Fault("stream stalled and insights endpoint hanging", _hanging, _stalled_and_hanging),
]


def _wait_for(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError("the fault did not take hold")
        time.sleep(0.01)


def shutdown_once(server: FeatBitServerProcess, fault: Fault) -> Sample:
    before = set(threading.enumerate())
    sink = InMemorySink()
    provider = FeatBitProvider.connect(
        server.env_secret, server.streaming_url, server.event_url, sinks=[sink]
    )
    provider.initialize(EvaluationContext())
    processor = provider.client._event_processor
    fault.before_load(server.control)
    for n in range(EVENTS):
        provider.resolve_string_details(FLAG, "default", EvaluationContext(f"user-{n}"))
    fault.after_load(server.control, processor)
    start = time.perf_counter()
    provider.shutdown()
    seconds = time.perf_counter() - start
    left = sorted(t.name for t in threading.enumerate() if t not in before and t.is_alive())
    counts = processor.counts()
    return Sample(
        seconds,
        left,
        counts.accepted,
        counts.delivered,
        counts.dropped_at_stop,
        counts.pending,
        len(sink.guardrails("insights_dropped")),
    )


def measure(fault: Fault, runs: int = RUNS) -> list[Sample]:
    samples: list[Sample] = []
    with FeatBitServerProcess([fl.flag(FLAG, ["on", "off"], serve=0)]) as server:
        for _ in range(runs):
            server.control.set_insights(200, 0.0, False)
            samples.append(shutdown_once(server, fault))
            server.control.stop()  # ends a stall, drops hanging posts
            server.control.start()
            time.sleep(0.5)  # leftover threads of the last run end or not: not ours to count
    return samples


def row(fault: Fault, samples: list[Sample]) -> Row:
    times = [s.seconds for s in samples]
    left = sum(len(s.threads_left) for s in samples)
    names = sorted({name.rstrip("0123456789") for s in samples for name in s.threads_left})
    adds_up = all(s.accepted == s.delivered + s.dropped_at_stop for s in samples)
    last = samples[-1]
    return Row(
        name=f"shutdown, {fault.name}",
        value=max(times),
        unit="s",
        note=f"median {statistics.median(times):.2f} s, longest {max(times):.2f} s over "
        f"{len(samples)} runs; threads left {left}{' (' + ', '.join(names) + ')' if names else ''}"
        f"; last run: {last.accepted:,} events = {last.delivered:,} delivered + "
        f"{last.dropped_at_stop:,} dropped at stop ({last.still_pending:,} still held), "
        f"insights_dropped x{last.guardrails}; adds up in every run: {adds_up}",
    )


def rows(runs: int = RUNS) -> list[Row]:
    return [row(fault, measure(fault, runs)) for fault in FAULTS]


if __name__ == "__main__":
    from benchmarks._report import print_rows

    print_rows("shutdown per fault", rows())
