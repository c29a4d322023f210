"""The ``audit`` subcommand of the ``featbit-experiments`` console script.

Exit codes: 0 when the audit ran, whatever it found (findings are the output, not a failure);
2 for a usage error, a missing or unreadable file, an unknown ``--experiment`` or an HTML page
that cannot be written. Malformed lines are reported on stderr with their line numbers and
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
from .html import render_html
from .model import AuditReport
from .options import AuditOptions, parse_expected, parse_goal
from .reading import EventLogError
from .report import render_json, render_table

__all__ = ["add_arguments", "run"]

USAGE_ERROR = 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the audit's arguments on ``parser`` (a subcommand parser)."""
    parser.add_argument("events", help="JSON Lines event log (exposures, outcomes, guardrails)")
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
        help="outcome field or attribute to check the primary metric per segment",
    )
    parser.add_argument(
        "--confidence", type=_share, default=0.95, help="confidence level (default 0.95)"
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
        )
        report = audit_file(args.events, options)
    except (EventLogError, ExperimentNotFoundError, ValueError) as error:
        print(f"featbit-experiments audit: error: {error}", file=err)
        return USAGE_ERROR
    _notes(report, args.events, err)
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
    for bad in report.malformed:
        print(f"{source}:{bad.line}: malformed line skipped: {bad.reason}", file=err)
    hidden = report.malformed_count - len(report.malformed)
    if hidden > 0:
        print(f"{source}: {hidden} more malformed lines skipped", file=err)
    if report.mixes_experiments:
        keys = ", ".join(report.log_experiment_keys)
        print(
            f"{source}: note: the log mixes {len(report.log_experiment_keys)} experiments "
            f"({keys}); each is audited separately, --experiment KEY selects one",
            file=err,
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


def _share(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError("must be between 0 and 1")
    return value
