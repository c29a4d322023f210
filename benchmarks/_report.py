"""Timing and printing shared by the benchmark modules (not a test: no assertions)."""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable
from typing import Any, TypedDict


class Row(TypedDict, total=False):
    name: str
    value: float
    unit: str
    baseline: str
    ratio: float
    target: str
    note: str


def per_call_seconds(fn: Callable[[], Any], *, repeat: int = 5, number: int = 20_000) -> float:
    """Best-of-``repeat`` mean seconds per call (best-of filters scheduler noise)."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(number):
            fn()
        best = min(best, (time.perf_counter() - start) / number)
    return best


class Timings:
    """Per-call seconds of one workload, one figure per round."""

    def __init__(self) -> None:
        self.rounds: list[float] = []

    @property
    def median(self) -> float:
        return statistics.median(self.rounds)

    @property
    def minimum(self) -> float:
        return min(self.rounds)

    def describe(self, scale: float = 1e6) -> str:
        return f"median {self.median * scale:.2f}, min {self.minimum * scale:.2f}"


def alternating_rounds(
    workloads: dict[str, Callable[[], int]],
    *,
    rounds: int,
    clock: Callable[[], float] = time.thread_time,
    between: Callable[[], Any] | None = None,
) -> dict[str, Timings]:
    """Run each workload once per round, the workloads taking turns round by round, so a burst
    of load on a shared machine hits all of them alike. A workload runs one round and returns
    how many calls it made. The default clock is this thread's CPU time (not inflated while
    other processes have the CPU); take the median (typical) and the minimum (least disturbed).
    ``between`` runs before each round, untimed."""
    timings = {name: Timings() for name in workloads}
    for _ in range(rounds):
        if between is not None:
            between()
        for name, workload in workloads.items():
            start = clock()
            calls = workload()
            timings[name].rounds.append((clock() - start) / calls)
    return timings


def threaded_throughput_ratio(
    call: Callable[[int], Any], *, calls: int, threads: int = 8, rounds: int = 5
) -> tuple[float, float]:
    """(median, minimum) of :func:`threaded_throughput_ratios` for one workload."""
    return threaded_throughput_ratios({"": call}, calls=calls, threads=threads, rounds=rounds)[""]


def threaded_throughput_ratios(
    workloads: dict[str, Callable[[int], Any]],
    *,
    calls: int,
    threads: int = 8,
    rounds: int = 9,
) -> dict[str, tuple[float, float]]:
    """Per workload, (median, minimum) over rounds of total calls per second with ``threads``
    threads sharing ``calls`` calls, divided by one thread's making them all (wall time: the
    threads share one GIL, so the ratio shows what serializes beyond it). Within a round every
    workload runs one thread, then ``threads`` threads, before the next workload, so load on a
    shared machine hits them alike. ``call(n)`` makes call number ``n``; numbers never repeat."""
    ratios: dict[str, list[float]] = {name: [] for name in workloads}
    offset = 0
    for _ in range(rounds):
        for name, call in workloads.items():
            start = time.perf_counter()
            for n in range(offset, offset + calls):
                call(n)
            single = calls / (time.perf_counter() - start)
            offset += calls
            ratios[name].append(_threaded_rate(call, offset, calls // threads, threads) / single)
            offset += calls
    return {name: (statistics.median(r), min(r)) for name, r in ratios.items()}


def _threaded_rate(call: Callable[[int], Any], first: int, share: int, threads: int) -> float:
    barrier = threading.Barrier(threads + 1)

    def work(start: int) -> None:
        barrier.wait()
        for n in range(start, start + share):
            call(n)

    workers = [threading.Thread(target=work, args=(first + i * share,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    barrier.wait()
    started = time.perf_counter()
    for worker in workers:
        worker.join()
    return share * threads / (time.perf_counter() - started)


def alternating_calls(
    variants: dict[str, Callable[[], Any]],
    *,
    calls: int,
    clock: Callable[[], float] = time.perf_counter,
    warmup: int = 20,
) -> dict[str, list[float]]:
    """Seconds of each call of each variant, the variants taking turns call by call, so a
    burst of load on a shared machine hits all of them alike. For calls long enough (tens of
    microseconds and up) that reading the clock around each one costs nothing that matters;
    take medians of the result."""
    for fn in variants.values():
        for _ in range(warmup):
            fn()
    measured: dict[str, list[float]] = {name: [] for name in variants}
    timed = [(fn, measured[name]) for name, fn in variants.items()]
    for _ in range(calls):
        for fn, times in timed:
            start = clock()
            fn()
            times.append(clock() - start)
    return measured


def print_rows(title: str, rows: list[Row]) -> None:
    print(f"\n## {title}")
    print(f"{'benchmark':58} {'value':>12} {'unit':8} {'ratio':>7}  target / baseline")
    for row in rows:
        ratio = f"{row['ratio']:.2f}x" if "ratio" in row else ""
        tail = " / ".join(x for x in (row.get("target", ""), row.get("baseline", "")) if x)
        value = f"{row.get('value', 0):12.3f}"
        print(f"{row['name']:58} {value} {row.get('unit', ''):8} {ratio:>7}  {tail}")
        if row.get("note"):
            print(f"{'':58}   {row['note']}")
