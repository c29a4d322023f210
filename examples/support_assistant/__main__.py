"""``python -m examples.support_assistant``: the end-to-end demo (``make demo``).

Options: ``--conversations N`` (default 300, or ``DEMO_CONVERSATIONS``), ``--concurrency``,
``--seed``, ``--out DIR``; the environment variables of ``examples/_settings.py`` point it at
a FeatBit server and Redis. Exit codes as in ``examples/_cli.py``.
"""

from __future__ import annotations

import argparse
import os
import sys

from .._cli import add_common_arguments, exit_code, run_main
from .._settings import Settings
from .demo import DemoOptions, run


def main(argv: list[str] | None = None) -> int:
    defaults = DemoOptions()
    parser = argparse.ArgumentParser(prog="python -m examples.support_assistant")
    parser.add_argument(
        "--conversations",
        type=int,
        default=int(os.environ.get("DEMO_CONVERSATIONS", defaults.conversations)),
        help="simulated conversations (default 300, or DEMO_CONVERSATIONS)",
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=defaults.concurrency,
        help=f"conversations in flight at once (default {defaults.concurrency})",
    )
    add_common_arguments(parser, seed=defaults.seed)
    args = parser.parse_args(argv)
    if args.conversations < 1 or args.concurrency < 1:
        parser.error("--conversations and --concurrency must be at least 1")

    def demo(settings: Settings) -> int:
        options = DemoOptions(
            conversations=args.conversations,
            concurrency=args.concurrency,
            seed=args.seed,
            settings=settings,
        )
        result = run(options)
        return exit_code(result.audit, result.tally.failed_conversations)

    return run_main(args, demo)


if __name__ == "__main__":
    sys.exit(main())
