"""The experiment audit: reads exposure, outcome and guardrail events and checks that the
units agree (sample ratio, join rate, mixed variants, metrics at another unit, a unit changed
mid-run, integrity guardrails), reads every metric per variant (and per segment) with
intervals, and gives a decision hint, valid at every look, with the rule that produced it.

The reading, joining and per-unit aggregation run in embedded DuckDB over SQL files a data
engineer can run on a warehouse (``sql/``, see docs/audit-sql.md); the statistics over the
aggregated tables run here. The engine is the ``audit`` extra
(``pip install 'featbit-experiments[audit]'``); this package imports without it, and
:func:`audit_file` says how to install it when it is missing.

Python API::

    from featbit_experiments.audit import AuditOptions, audit_file, render_table

    report = audit_file("events-*.jsonl.gz", AuditOptions(primary_metric="resolved",
                                                          guardrail_metrics=("handoff",)))
    print(render_table(report))
    report.experiments[0].decision.action   # Action.CONTINUE, ...

Command line: ``featbit-experiments audit events.jsonl [--json] [--html out.html]``.
"""

from .auditor import ExperimentNotFoundError, audit_file, audit_records
from .availability import INSTALL_HINT, AuditUnavailableError
from .estimates import (
    DayExposures,
    Effect,
    Look,
    MetricReadout,
    SegmentEffect,
    SegmentReadout,
    SegmentReview,
    Timeline,
    VariantEstimate,
)
from .html import render_html
from .model import (
    Action,
    AuditReport,
    Decision,
    DirectionConflict,
    ExperimentAudit,
    Finding,
    GuardrailImpact,
    JoinSummary,
    MalformedLine,
    MetricUnitMismatch,
    MixedUnits,
    SampleRatioTest,
    Severity,
    UnitIdChange,
    VariantExposure,
)
from .options import INTEGRITY_GUARDRAILS, AuditOptions, MetricGoal, parse_expected, parse_goal
from .report import render_json, report_dict
from .sources import EventLogError
from .stats import Interval, chi_square_sf
from .table import render_table

__all__ = [
    "INSTALL_HINT",
    "INTEGRITY_GUARDRAILS",
    "Action",
    "AuditOptions",
    "AuditReport",
    "AuditUnavailableError",
    "DayExposures",
    "Decision",
    "DirectionConflict",
    "Effect",
    "EventLogError",
    "ExperimentAudit",
    "ExperimentNotFoundError",
    "Finding",
    "GuardrailImpact",
    "Interval",
    "JoinSummary",
    "Look",
    "MalformedLine",
    "MetricGoal",
    "MetricReadout",
    "MetricUnitMismatch",
    "MixedUnits",
    "SampleRatioTest",
    "SegmentEffect",
    "SegmentReadout",
    "SegmentReview",
    "Severity",
    "Timeline",
    "UnitIdChange",
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
