"""``python -m examples.writing_assistant``: the user-level style experiment.

Options: ``--users N`` (default 150), ``--seed``, ``--out DIR``; the environment variables of
``examples/_settings.py`` point it at a FeatBit server and Redis. Exit codes as in
``examples/_cli.py``.
"""

from __future__ import annotations

import argparse
import sys

from .._cli import add_common_arguments, exit_code, run_main
from .._settings import Settings
from .demo import WritingOptions, run


def main(argv: list[str] | None = None) -> int:
    defaults = WritingOptions()
    parser = argparse.ArgumentParser(prog="python -m examples.writing_assistant")
    parser.add_argument(
        "--users", type=int, default=defaults.users, help=f"writers (default {defaults.users})"
    )
    add_common_arguments(parser, seed=defaults.seed)
    args = parser.parse_args(argv)
    if args.users < 1:
        parser.error("--users must be at least 1")

    def example(settings: Settings) -> int:
        result = run(WritingOptions(users=args.users, seed=args.seed, settings=settings))
        return exit_code(result.audit, result.writers_with_both_styles)

    return run_main(args, example)


if __name__ == "__main__":
    sys.exit(main())
