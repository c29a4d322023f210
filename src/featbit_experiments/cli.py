"""The ``featbit-experiments`` console script: subcommands over the core's tools.

``featbit-experiments audit EVENTS.jsonl`` audits an experiment event log (see
:mod:`featbit_experiments.audit.cli`); ``featbit-experiments preflight`` checks a plan before
launch (see :mod:`featbit_experiments.preflight.cli`). ``main(argv)`` returns the exit code
instead of exiting, so other code (the demo, tests) can call it; ``python -m
featbit_experiments.cli`` works too.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .audit import cli as audit_cli
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
