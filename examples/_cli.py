"""The command line every example shares: ``--seed``, ``--out``, settings from the environment,
and an exit code that says whether the audit found the units in agreement.

Exit codes: 0 when the run's audit shows no unit with mixed variants and every outcome joined
its exposure, 1 when it does not (or a simulated request failed), 2 for settings that do not
work.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from featbit_experiments import ConfigurationError
from featbit_experiments.audit import ExperimentAudit

from ._settings import Settings, SettingsError

__all__ = ["add_common_arguments", "exit_code", "run_main"]

SETTINGS_ERROR = 2


def add_common_arguments(parser: argparse.ArgumentParser, *, seed: int) -> None:
    parser.add_argument(
        "--seed", type=int, default=seed, help=f"fixes every simulated choice (default {seed})"
    )
    parser.add_argument(
        "--out", type=Path, help="output directory (default: EXAMPLES_OUT, else out/ in the repo)"
    )


def exit_code(audit: ExperimentAudit, failures: int = 0) -> int:
    """0 when the units agree (no mixed units, full join) and nothing failed, else 1."""
    clean = audit.mixed.units == 0 and audit.join.rate == 1.0
    return 0 if clean and not failures else 1


def run_main(args: argparse.Namespace, run: Callable[[Settings], int]) -> int:
    """Build the settings (environment, then ``--out``) and call ``run`` with them; a setting
    that does not work (a half-set FeatBit configuration, a server that never syncs, a broken
    policy or bootstrap file) is one line on stderr, not a traceback."""
    try:
        settings = Settings.from_env()
        if args.out is not None:
            settings = replace(settings, out_dir=args.out)
        return run(settings)
    except (SettingsError, ConfigurationError) as error:
        print(f"error: {error}", file=sys.stderr)
        return SETTINGS_ERROR
