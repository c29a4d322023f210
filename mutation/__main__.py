"""``python -m mutation [MODULE ...]``: run mutmut per module and print the kill-rate table.

Exits 1 when a module is below the threshold with survivors nobody explained, or when an
explanation in ``mutation/equivalent.toml`` is stale. ``--report`` prints the table of the last
run without running anything.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from .results import THRESHOLD, Tally, load_explanations, mutated_lines, tally
from .scratch import Module, load_modules, prepare

MUTMUT = Path(sys.executable).parent / "mutmut"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mutation", description=__doc__)
    parser.add_argument("modules", nargs="*", help="module names from mutation/modules.toml")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--report", action="store_true", help="only print the last run's table")
    args = parser.parse_args(argv)

    modules = load_modules()
    unknown = [name for name in args.modules if name not in modules]
    if unknown:
        parser.error(f"unknown module(s) {', '.join(unknown)}; known: {', '.join(modules)}")
    chosen = [modules[name] for name in args.modules] if args.modules else list(modules.values())

    explanations = load_explanations()
    tallies = []
    for module in chosen:
        seconds = None if args.report else _run(module, args.jobs)
        result = tally(module, explanations)
        result.seconds = seconds
        tallies.append(result)

    _print_table(tallies)
    for module, result in zip(chosen, tallies, strict=True):
        _print_findings(module, result)
    return 0 if all(result.passes for result in tallies) else 1


def _run(module: Module, jobs: int) -> float:
    prepare(module)
    log = module.scratch / "mutmut.log"
    print(f"mutate {module.name}: {module.file} ({len(module.tests)} test files) ...", flush=True)
    started = time.monotonic()
    with log.open("w") as out:
        code = subprocess.call(
            [str(MUTMUT), "run", "--max-children", str(jobs)],
            cwd=module.scratch,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    seconds = time.monotonic() - started
    print(f"    {seconds:.0f} s (mutmut exit {code}; log {log})", flush=True)
    if code != 0:
        print(log.read_text("utf-8", errors="replace")[-3000:], flush=True)
    return seconds


def _print_table(tallies: Sequence[Tally]) -> None:
    header = (
        "module",
        "mutants",
        "killed",
        "survived",
        "timeout",
        "suspicious",
        "no tests",
        "not checked",
        "kill rate",
        "equivalent",
        "seconds",
        "",
    )
    rows = [header]
    for t in tallies:
        rows.append(
            (
                t.module,
                str(t.total),
                str(t.count("killed")),
                str(t.count("survived")),
                str(t.count("timeout")),
                str(t.count("suspicious")),
                str(t.count("no tests")),
                str(t.count("not checked")),
                f"{t.rate:.1%}" if t.total else "-",
                str(len(t.explained)),
                "-" if t.seconds is None else f"{t.seconds:.0f}",
                "ok" if t.passes else "FAIL",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    print()
    for i, row in enumerate(rows):
        cells = [
            cell.ljust(w) if j == 0 else cell.rjust(w)
            for j, (cell, w) in enumerate(zip(row, widths, strict=True))
        ]
        print("  ".join(cells).rstrip())
        if i == 0:
            print("  ".join("-" * w for w in widths))
    print(
        f"\nkill rate = (killed + timeout) / (mutants - equivalent); each module needs "
        f"{THRESHOLD:.0%}. Equivalent mutants are explained in mutation/equivalent.toml."
    )


def _print_findings(module: Module, result: Tally) -> None:
    if not result.statuses:
        print(f"\n{module.name}: no results (see {module.scratch}/mutmut.log)")
    if result.unexplained:
        count = len(result.unexplained)
        print(f"\n{module.name}: {count} mutant(s) not detected and not explained:")
        for mutant in result.unexplained:
            lines = mutated_lines(module, mutant)
            change = lines[0] if lines else "(removes a line)"
            print(f"  {result.statuses[mutant]:>10}  {mutant}: {change}")
        print(f"  see one: (cd {module.scratch} && {MUTMUT} show NAME)")
    for stale in result.stale:
        print(f"  STALE  {stale}")


if __name__ == "__main__":
    sys.exit(main())
