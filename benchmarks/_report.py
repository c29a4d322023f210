"""Timing and printing shared by the benchmark modules (not a test: no assertions)."""

from __future__ import annotations

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
