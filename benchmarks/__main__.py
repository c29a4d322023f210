"""Run every ``benchmarks/bench_*.py`` module and print its rows."""

from __future__ import annotations

import importlib
import pkgutil
import sys

from benchmarks._report import print_rows


def main(argv: list[str]) -> int:
    wanted = set(argv)
    import benchmarks

    names = sorted(
        m.name for m in pkgutil.iter_modules(benchmarks.__path__) if m.name.startswith("bench_")
    )
    for name in names:
        if wanted and name not in wanted and name.removeprefix("bench_") not in wanted:
            continue
        module = importlib.import_module(f"benchmarks.{name}")
        print_rows(name, module.run())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
