"""``python -m examples.b2b_accounts``: the account-level model-route experiment.

Options: ``--accounts N`` (default 40), ``--seed``, ``--out DIR``; the environment variables of
``examples/_settings.py`` point it at a FeatBit server and Redis. Exit codes as in
``examples/_cli.py``.
"""

from __future__ import annotations

import argparse
import sys

from .._cli import add_common_arguments, exit_code, run_main
from .._settings import Settings
from .demo import B2BOptions, run


def main(argv: list[str] | None = None) -> int:
    defaults = B2BOptions()
    parser = argparse.ArgumentParser(prog="python -m examples.b2b_accounts")
    parser.add_argument(
        "--accounts",
        type=int,
        default=defaults.accounts,
        help=f"tenants (default {defaults.accounts})",
    )
    add_common_arguments(parser, seed=defaults.seed)
    args = parser.parse_args(argv)
    if args.accounts < 1:
        parser.error("--accounts must be at least 1")

    def example(settings: Settings) -> int:
        result = run(B2BOptions(accounts=args.accounts, seed=args.seed, settings=settings))
        failures = result.failed_requests + result.accounts_with_both_routes
        return exit_code(result.audit, failures)

    return run_main(args, example)


if __name__ == "__main__":
    sys.exit(main())
