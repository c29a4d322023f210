"""Event logs for the audit benchmarks, made with the tests' own generator
(``tests/support/event_logs.simulated_events``) and kept under the system temp directory
between runs (they take a minute or more to make, and gigabytes of disk, so never the repo).

Set ``FEATBIT_AUDIT_BENCH_DIR`` to put them elsewhere.
"""

from __future__ import annotations

import itertools
import os
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from tests.support.event_logs import write_jsonl

__all__ = ["bench_dir", "cached"]


def bench_dir() -> Path:
    base = os.environ.get("FEATBIT_AUDIT_BENCH_DIR")
    path = Path(base) if base else Path(tempfile.gettempdir()) / "featbit-audit-bench"
    path.mkdir(parents=True, exist_ok=True)
    return path


def cached(name: str, make: Callable[[], Iterable[dict[str, Any]]]) -> Path:
    """``name`` under :func:`bench_dir`, written from ``make()`` unless already there."""
    path = bench_dir() / name
    if not path.exists():
        partial = path.with_suffix(".partial")
        write_jsonl(make(), partial)
        partial.rename(path)
    return path


def chained(*parts: Iterable[dict[str, Any]]) -> Iterable[dict[str, Any]]:
    return itertools.chain.from_iterable(parts)
