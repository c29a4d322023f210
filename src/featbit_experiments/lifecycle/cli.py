"""The ``lifecycle`` subcommand: what an experiment left behind, and where.

``featbit-experiments lifecycle [PATH ...] --flags flags.json --audit audit.json`` compares
FeatBit's flags (a bootstrap file, or ``--featbit`` for the environment named by
``FEATBIT_ENV_SECRET``, ``FEATBIT_STREAMING_URL`` and ``FEATBIT_EVENT_URL``), the audit's
decisions (``featbit-experiments audit EVENTS --json > audit.json``) and the code under each
PATH (the current directory by default), and lists what to clean up.

Exit codes, for CI: 0 when there is nothing to clean up, 1 when there is, 2 for a usage error
or a file, policy or FeatBit connection that cannot be read.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import TextIO

from ..errors import ConfigurationError
from ..policy import UnitPolicy
from ..policy_file import load_policy
from .cleanup import build_report, known_keys
from .code_scan import scan
from .decisions import read_decisions
from .flag_facts import FlagFacts, facts_from_featbit, facts_from_file

__all__ = ["add_arguments", "run"]

USAGE_ERROR = 2
_FEATBIT_VARIABLES = ("FEATBIT_ENV_SECRET", "FEATBIT_STREAMING_URL", "FEATBIT_EVENT_URL")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the lifecycle command's arguments on ``parser`` (a subcommand parser)."""
    parser.add_argument("paths", nargs="*", type=Path, help="code to scan (default: .)")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--flags", type=Path, metavar="FILE", help="FeatBit bootstrap JSON")
    source.add_argument(
        "--featbit",
        action="store_true",
        help="read the flags from FeatBit (FEATBIT_ENV_SECRET, FEATBIT_STREAMING_URL, "
        "FEATBIT_EVENT_URL)",
    )
    parser.add_argument(
        "--audit", type=Path, metavar="FILE", help="output of `featbit-experiments audit --json`"
    )
    parser.add_argument("--policy", type=Path, metavar="FILE", help="the unit policy TOML file")
    parser.add_argument(
        "--stale-days",
        type=float,
        default=30,
        metavar="N",
        help="a flag serving one variant to everyone this long is to go (default 30)",
    )
    parser.add_argument(
        "--as-of", type=_date, metavar="YYYY-MM-DD", help="judge staleness as of this day"
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")


def _date(text: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date: {text!r}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def run(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Run the command; returns its exit code."""
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        flags = _flags(args)
        policy: UnitPolicy | None = load_policy(args.policy) if args.policy else None
        decisions = read_decisions(args.audit) if args.audit else []
    except ConfigurationError as error:
        err.write(f"featbit-experiments lifecycle: {error}\n")
        return USAGE_ERROR
    roots = list(args.paths) or [Path(".")]
    missing = [str(root) for root in roots if not root.exists()]
    if missing:
        err.write(f"featbit-experiments lifecycle: no such path: {', '.join(missing)}\n")
        return USAGE_ERROR
    exclude = [p for p in (args.flags, args.audit, args.policy) if p is not None]
    references = scan(roots, known_keys(flags, decisions, policy), exclude=exclude)
    report = build_report(
        flags,
        references,
        decisions=decisions,
        policy=policy,
        stale_days=args.stale_days,
        now=args.as_of or datetime.now(timezone.utc),
    )
    if args.json:
        json.dump(report.to_json(), out, indent=2)
        out.write("\n")
    else:
        out.write(report.render_text())
    return report.exit_code


def _flags(args: argparse.Namespace) -> list[FlagFacts]:
    if args.flags is not None:
        return facts_from_file(args.flags)
    given = {name: os.environ.get(name, "").strip() for name in _FEATBIT_VARIABLES}
    missing = [name for name, value in given.items() if not value]
    if missing:
        raise ConfigurationError(f"--featbit needs {', '.join(missing)} set")
    try:
        return facts_from_featbit(*given.values())
    except Exception as error:  # the provider's one-line connection errors
        raise ConfigurationError(str(error)) from error
