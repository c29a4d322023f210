"""The experiment audit: reads exposure, outcome and guardrail events and checks that the
units agree (sample ratio, join rate, mixed variants, metrics at another unit, a unit changed
mid-run), reads per-variant outcomes with intervals, and gives a decision hint with the rule
that produced it.

Python API::

    from featbit_experiments.audit import AuditOptions, audit_file, render_table

    report = audit_file("events.jsonl", AuditOptions(primary_metric="resolved",
                                                     guardrail_metrics=("handoff",)))
    print(render_table(report))
    report.experiments[0].decision.action   # Action.CONTINUE, ...

Command line: ``featbit-experiments audit events.jsonl [--json] [--html out.html]``.
"""

from .auditor import ExperimentNotFoundError, audit_file, audit_records
from .html import render_html
from .model import (
    Action,
    AuditReport,
    Decision,
    Effect,
    ExperimentAudit,
    Finding,
    JoinSummary,
    MalformedLine,
    MetricReadout,
    MetricUnitMismatch,
    MixedUnits,
    SampleRatioTest,
    SegmentEffect,
    Severity,
    VariantEstimate,
    VariantExposure,
)
from .options import AuditOptions, MetricGoal, parse_expected, parse_goal
from .reading import EventLog, EventLogError
from .report import render_json, render_table, report_dict
from .stats import Interval, chi_square_sf

__all__ = [
    "Action",
    "AuditOptions",
    "AuditReport",
    "Decision",
    "Effect",
    "EventLog",
    "EventLogError",
    "ExperimentAudit",
    "ExperimentNotFoundError",
    "Finding",
    "Interval",
    "JoinSummary",
    "MalformedLine",
    "MetricGoal",
    "MetricReadout",
    "MetricUnitMismatch",
    "MixedUnits",
    "SampleRatioTest",
    "SegmentEffect",
    "Severity",
    "VariantEstimate",
    "VariantExposure",
    "audit_file",
    "audit_records",
    "chi_square_sf",
    "parse_expected",
    "parse_goal",
    "render_html",
    "render_json",
    "render_table",
    "report_dict",
]
