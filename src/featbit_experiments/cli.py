"""The ``featbit-experiments`` console script: subcommands over the core's tools.

``featbit-experiments audit EVENTS.jsonl`` audits an experiment event log (see
:mod:`featbit_experiments.audit.cli`) after an experiment; ``featbit-experiments preflight``
checks a plan before launch (see :mod:`featbit_experiments.preflight.cli`);
``featbit-experiments lifecycle`` lists the flags, branches and event names to clean up after a
decision (see :mod:`featbit_experiments.lifecycle.cli`). ``main(argv)`` returns the exit code
instead of exiting, so other code (the demo, tests) can call it; ``python -m
featbit_experiments.cli`` works too.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .audit import cli as audit_cli
from .lifecycle import cli as lifecycle_cli
from .preflight import cli as preflight_cli

__all__ = ["main"]

PROG = "featbit-experiments"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description="Tools for FeatBit experiments with a randomization-unit policy."
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True
    audit = commands.add_parser(
        "audit",
        help="audit an experiment event log: units, joins, sample ratio, decision hint",
        description="Audit exposure, outcome and guardrail events (JSON Lines). Exit code 0 "
        "when the audit ran, whatever it found; 2 for usage errors and unreadable files.",
    )
    audit_cli.add_arguments(audit)
    audit.set_defaults(handler=audit_cli.run)
    preflight = commands.add_parser(
        "preflight",
        help="before launch: check units, bucketing, metrics, rollback, continuity; plan the MDE",
        description="Check every experiment's plan before it starts. Exit code 1 on errors "
        "(and on warnings with --fail-on-warnings), 2 for usage errors and unreadable inputs.",
    )
    preflight_cli.add_arguments(preflight)
    preflight.set_defaults(handler=preflight_cli.run)
    lifecycle = commands.add_parser(
        "lifecycle",
        help="list flags, branches and event names to clean up after an experiment's decision",
        description="Compare FeatBit's flags, the audit's decisions and the code base; list "
        "decided experiments, flags serving one variant for N days, flags evaluated in code but "
        "missing in FeatBit, and experiment flags no code evaluates, each with its code "
        "locations. Exit code 0 when there is nothing to clean up, 1 when there is, 2 for "
        "usage errors and unreadable inputs.",
    )
    lifecycle_cli.add_arguments(lifecycle)
    lifecycle.set_defaults(handler=lifecycle_cli.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the console script with ``argv`` (``sys.argv[1:]`` by default); returns the exit
    code (2 for usage errors)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        return exit_.code if isinstance(exit_.code, int) else 2
    code: int = args.handler(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
