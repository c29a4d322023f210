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
