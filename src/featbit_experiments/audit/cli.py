"""The ``audit`` subcommand of the ``featbit-experiments`` console script.

Exit codes: 0 when the audit ran, whatever it found (findings are the output, not a failure);
2 for a usage error, a missing or unreadable file, an unknown ``--experiment``, an HTML page
that cannot be written, or DuckDB not installed (the message says how to install the
``audit`` extra). Malformed lines are reported on stderr with their file and line numbers and
skipped. A log mixing several experiments is audited per experiment (one section each, in the
table, the JSON and the HTML page), with a note on stderr; ``--experiment KEY`` selects one.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from .auditor import ExperimentNotFoundError, audit_file
from .availability import AuditUnavailableError
from .html import render_html
from .model import AuditReport
from .options import AuditOptions, parse_expected, parse_goal
from .report import render_json
from .sources import EventLogError
from .table import render_table
from .terminal import printable

__all__ = ["add_arguments", "run"]

USAGE_ERROR = 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the audit's arguments on ``parser`` (a subcommand parser)."""
    parser.add_argument(
        "events",
        nargs="+",
        help="event log: JSON Lines (plain or .gz, UTF-8/16/32) or Parquet files, or globs "
        "of rotated files ('events-*.jsonl.gz')",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of the table")
    parser.add_argument("--html", metavar="PATH", help="also write an HTML page with charts")
    parser.add_argument("--experiment", metavar="KEY", help="audit only this experiment")
    parser.add_argument(
        "--primary-metric",
        metavar="NAME[:higher|lower]",
        type=_goal(higher_is_better=True),
        help="the metric a ship hint is based on (higher is better unless ':lower')",
    )
    parser.add_argument(
        "--guardrail-metric",
        metavar="NAME[:lower|higher]",
        action="append",
        default=[],
        type=_goal(higher_is_better=False),
        help="a metric that must not get worse (lower is better unless ':higher'); repeatable",
    )
    parser.add_argument(
        "--expected",
        metavar="VARIANT=WEIGHT,...",
        type=_expected,
        help="expected split, e.g. control=0.5,treatment=0.5 (default: equal over variants seen)",
    )
    parser.add_argument("--control", metavar="VARIANT", help="the control variant's name")
    parser.add_argument(
        "--segment-by",
        metavar="FIELD",
        help="exposure or outcome field (or attribute) to break every metric down by",
    )
    parser.add_argument(
        "--confidence", type=_share, default=0.95, help="confidence level (default 0.95)"
    )
    parser.add_argument(
        "--fixed-horizon",
        action="store_true",
        help="decide on fixed-horizon intervals (valid for one look at a sample size fixed in "
        "advance) instead of always-valid ones",
    )
    parser.add_argument(
        "--sequential-tuning",
        metavar="UNITS",
        type=_positive,
        default=1000,
        help="units at which the always-valid interval is tightest (default 1000)",
    )
    parser.add_argument(
        "--max-guardrail-share",
        metavar="SHARE",
        type=_share,
        default=0.01,
        help="share of units an integrity guardrail (fallbacks...) may touch before the hint "
        "is pause (default 0.01)",
    )
    parser.add_argument(
        "--encoding", help="text encoding of files without a byte order mark (default UTF-8)"
    )
    parser.add_argument(
        "--memory-limit", default="1GB", help="the engine's memory limit (default 1GB)"
    )


def run(
    args: argparse.Namespace, stdout: TextIO | None = None, stderr: TextIO | None = None
) -> int:
    """Run the audit for parsed ``args``; returns the exit code."""
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    try:
        options = AuditOptions(
            experiment=args.experiment,
            primary_metric=args.primary_metric,
            guardrail_metrics=tuple(args.guardrail_metric),
            expected=args.expected,
            control=args.control,
            confidence=args.confidence,
            segment_by=args.segment_by,
            sequential=not args.fixed_horizon,
            sequential_tuning=args.sequential_tuning,
            max_guardrail_share=args.max_guardrail_share,
            encoding=args.encoding,
            memory_limit=args.memory_limit,
        )
        events = args.events[0] if len(args.events) == 1 else args.events
        report = audit_file(events, options)
    except (
        EventLogError,
        ExperimentNotFoundError,
        AuditUnavailableError,
        LookupError,
        ValueError,
    ) as error:
        print(f"featbit-experiments audit: error: {printable(str(error))}", file=err)
        return USAGE_ERROR
    _notes(report, ", ".join(args.events), err)
    if args.html:
        try:
            Path(args.html).write_text(render_html(report), encoding="utf-8")
        except OSError as error:
            print(f"featbit-experiments audit: error: cannot write {args.html}: {error}", file=err)
            return USAGE_ERROR
        print(f"wrote {args.html}", file=err)
    out.write(render_json(report) + "\n" if args.json else render_table(report))
    return 0


def _notes(report: AuditReport, source: str, err: TextIO) -> None:
    def say(text: str) -> None:
        print(printable(text), file=err)

    for note in report.notes:
        say(f"note: {note}")
    for bad in report.malformed:
        say(f"{bad.file or source}:{bad.line}: malformed line skipped: {bad.reason}")
    hidden = report.malformed_count - len(report.malformed)
    if hidden > 0:
        say(f"{source}: {hidden} more malformed lines skipped")
    if report.mixes_experiments:
        keys = ", ".join(report.log_experiment_keys)
        say(
            f"{source}: note: the log mixes {len(report.log_experiment_keys)} experiments "
            f"({keys}); each is audited separately, --experiment KEY selects one"
        )


def _goal(*, higher_is_better: bool) -> Callable[[str], str]:
    def parse(spec: str) -> str:
        try:
            parse_goal(spec, higher_is_better=higher_is_better)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None
        return spec

    return parse


def _expected(spec: str) -> dict[str, float]:
    try:
        return parse_expected(spec)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _share(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError("must be between 0 and 1")
    return value
