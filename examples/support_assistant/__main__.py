"""``python -m examples.support_assistant``: the end-to-end demo (``make demo``).

Options: ``--conversations N`` (default 300, or ``DEMO_CONVERSATIONS``), ``--concurrency``,
``--seed``, ``--out DIR``; the environment variables of ``examples/_settings.py`` point it at
a FeatBit server and Redis. Exits 1 when a conversation failed or the audit found units with
mixed variants or outcomes that do not join, 2 for bad settings.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import replace
from pathlib import Path

from .._settings import Settings, SettingsError
from .demo import DemoOptions, run


def main(argv: list[str] | None = None) -> int:
    defaults = DemoOptions()
    parser = argparse.ArgumentParser(prog="python -m examples.support_assistant")
    parser.add_argument(
        "--conversations",
        type=int,
        default=int(os.environ.get("DEMO_CONVERSATIONS", defaults.conversations)),
    )
    parser.add_argument("--concurrency", type=int, default=defaults.concurrency)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--out", type=Path, help="output directory (default: out/, EXAMPLES_OUT)")
    args = parser.parse_args(argv)
    if args.conversations < 1 or args.concurrency < 1:
        parser.error("--conversations and --concurrency must be at least 1")
    try:
        settings = Settings.from_env()
    except SettingsError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.out is not None:
        settings = replace(settings, out_dir=args.out)
    options = DemoOptions(
        conversations=args.conversations,
        concurrency=args.concurrency,
        seed=args.seed,
        settings=settings,
    )
    result = run(options)
    audit = result.audit
    clean = audit.mixed.units == 0 and audit.join.rate == 1.0
    return 0 if clean and not result.tally.failed_conversations else 1


if __name__ == "__main__":
    sys.exit(main())
