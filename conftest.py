"""Run-wide test settings that hold for every test directory (core and adapters).

The tests run in random order (pytest-randomly). An order that fails is only useful if it can
be run again, so the seed is printed at the end of every run, next to the command that replays
it, where a failure report ends and a reader looks. A test's place depends only on the seed and
its own node id, so a subset run with the same seed keeps the tests in the same relative order.
"""

from __future__ import annotations

import pytest


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    seed = config.getoption("randomly_seed", None)
    if not isinstance(seed, int) or not config.getoption("randomly_reorganize", False):
        return  # pytest-randomly is off (-p no:randomly) or keeps the file order
    terminalreporter.write_line(
        f"random order: --randomly-seed={seed} "
        f"(replay: make test SEED={seed}, or pytest --randomly-seed={seed} on a subset)"
    )
