"""Run every ``benchmarks/bench_*.py`` module and print its rows.

``python -m benchmarks [name ...]`` runs the named benchmarks (``provider`` or
``bench_provider``), all of them by default except those whose module sets ``HEAVY`` (a
sentence saying what they cost: they run when named, or with ``--all``).
``python -m benchmarks --profile NAME`` runs benchmark NAME's workload under cProfile and
prints where the time goes: when the module has a ``profile()``, it sets the workload up
(unprofiled) and returns it as a callable, its hot path in this process (e.g. an app driven
without a server); else the module's ``run()``.
"""

from __future__ import annotations

import cProfile
import importlib
import pkgutil
import pstats
import sys
from types import ModuleType

from benchmarks._report import print_rows

_PROFILE_LINES = 40


def main(argv: list[str]) -> int:
    if argv[:1] == ["--profile"]:
        if len(argv) != 2:
            print("usage: python -m benchmarks --profile NAME", file=sys.stderr)
            return 2
        return profile(_module(argv[1]))
    everything = "--all" in argv
    wanted = set(argv) - {"--all"}
    for name in _names():
        if wanted and name not in wanted and name.removeprefix("bench_") not in wanted:
            continue
        module = importlib.import_module(f"benchmarks.{name}")
        heavy = getattr(module, "HEAVY", None)
        if heavy and not wanted and not everything:
            print(f"\n## {name}: skipped ({heavy}); run it with `python -m benchmarks {name}`")
            continue
        print_rows(name, module.run())
    return 0


def profile(module: ModuleType) -> int:
    """Profile ``module``'s workload; print the top functions by cumulative and own time."""
    prepare = getattr(module, "profile", None)
    workload = prepare() if prepare is not None else module.run
    profiler = cProfile.Profile()
    profiler.runcall(workload)
    stats = pstats.Stats(profiler, stream=sys.stdout).strip_dirs()
    print(f"\n## {module.__name__}: {workload.__name__}() by cumulative time")
    stats.sort_stats(pstats.SortKey.CUMULATIVE).print_stats(_PROFILE_LINES)
    print(f"\n## {module.__name__}: {workload.__name__}() by own time")
    stats.sort_stats(pstats.SortKey.TIME).print_stats(_PROFILE_LINES)
    return 0


def _names() -> list[str]:
    import benchmarks

    return sorted(
        m.name for m in pkgutil.iter_modules(benchmarks.__path__) if m.name.startswith("bench_")
    )


def _module(name: str) -> ModuleType:
    full = name if name.startswith("bench_") else f"bench_{name}"
    if full not in _names():
        raise SystemExit(f"no benchmark {name!r}; there are: {', '.join(_names())}")
    return importlib.import_module(f"benchmarks.{full}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
