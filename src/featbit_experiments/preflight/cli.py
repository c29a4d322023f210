"""The ``preflight`` subcommand of the ``featbit-experiments`` console script.

Exit codes: 0 when the plan has no error (warnings too, with ``--fail-on-warnings``); 1 when
it has; 2 for a usage error or an input that cannot be read (missing file, broken bootstrap or
plan, FeatBit not reachable). A live FeatBit environment's secret is read from
``FEATBIT_ENV_SECRET``, never from the command line, where other users could see it.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any, TextIO

from ..errors import ConfigurationError
from ..policy import UnitPolicy
from .flag_data import flags_from_featbit
from .inputs import PolicySource, preflight
from .plan import MEMORY_LEDGER, REDIS_LEDGER, PreflightPlan, load_plan
from .report import render_json, render_text

__all__ = ["add_arguments", "run"]

USAGE_ERROR = 2
SECRET_VARIABLE = "FEATBIT_ENV_SECRET"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the preflight's arguments on ``parser`` (a subcommand parser)."""
    parser.add_argument(
        "--policy",
        action="append",
        default=[],
        metavar="FILE|MODULE:NAME",
        help="a policy file, or a UnitPolicy in code (module:attribute); repeatable",
    )
    flags = parser.add_mutually_exclusive_group(required=True)
    flags.add_argument("--flags", metavar="FILE", help="FeatBit bootstrap (data-sync) JSON")
    flags.add_argument(
        "--streaming-url",
        metavar="URL",
        help=f"read flags from a live FeatBit environment (secret in ${SECRET_VARIABLE})",
    )
    parser.add_argument("--event-url", metavar="URL", help="FeatBit's event URL (live mode)")
    parser.add_argument("--plan", metavar="FILE", help="the plan: metrics, traffic, deployment")
    parser.add_argument("--events", metavar="FILE", help="a pilot's JSON Lines event log")
    parser.add_argument("--redis", metavar="URL", help="the ledger's Redis, to check its settings")
    parser.add_argument(
        "--instances", type=int, metavar="N", help="service instances in production"
    )
    parser.add_argument("--ledger", choices=(MEMORY_LEDGER, REDIS_LEDGER), help="assignment store")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    parser.add_argument(
        "--fail-on-warnings", action="store_true", help="exit 1 on warnings as well as errors"
    )


def run(
    args: argparse.Namespace, stdout: TextIO | None = None, stderr: TextIO | None = None
) -> int:
    """Run the preflight for parsed ``args``; returns the exit code."""
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    try:
        plan = _plan(args)
        report = preflight(
            [_policy_source(spec) for spec in args.policy],
            _flags(args),
            plan=plan,
            events=args.events,
            redis=args.redis,
        )
    except (ConfigurationError, OSError, ImportError, AttributeError) as error:
        err.write(f"featbit-experiments preflight: {error}\n")
        return USAGE_ERROR
    out.write(render_json(report) if args.json else render_text(report))
    return report.exit_code(fail_on_warnings=args.fail_on_warnings)


def _plan(args: argparse.Namespace) -> PreflightPlan:
    plan = load_plan(args.plan) if args.plan else PreflightPlan()
    changes: dict[str, Any] = {}
    if args.instances is not None:
        changes["instances"] = args.instances
    if args.ledger is not None:
        changes["ledger"] = args.ledger
    if args.redis is not None:
        changes["redis_url"] = args.redis
    if not changes:
        return plan
    return replace(plan, deployment=replace(plan.deployment, **changes))


def _flags(args: argparse.Namespace) -> Any:
    if args.flags:
        return Path(args.flags)
    secret = os.environ.get(SECRET_VARIABLE)
    if not secret or not args.event_url:
        raise ConfigurationError(
            f"live mode needs --streaming-url, --event-url and ${SECRET_VARIABLE}"
        )
    return flags_from_featbit(secret, args.streaming_url, args.event_url)


def _policy_source(spec: str) -> PolicySource:
    """A policy file, or ``module:attribute`` naming a UnitPolicy (or a function making one)."""
    module_name, _, attribute = spec.rpartition(":")
    if Path(spec).exists() or not module_name or not attribute:
        if not Path(spec).exists():
            raise ConfigurationError(f"{spec}: policy file not found")
        return Path(spec)
    found = getattr(importlib.import_module(module_name), attribute)
    policy = found() if callable(found) and not isinstance(found, UnitPolicy) else found
    if not isinstance(policy, UnitPolicy):
        raise ConfigurationError(f"{spec} is not a UnitPolicy (got {type(policy).__name__})")
    return policy
