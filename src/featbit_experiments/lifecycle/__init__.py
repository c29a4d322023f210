"""The experiment lifecycle: after a decision, find every flag, branch and event name an
experiment left in the code base (``featbit-experiments lifecycle``). A tool, not part of the
evaluation path: nothing here runs while a service evaluates flags."""

from .cleanup import CleanupItem, LifecycleReport, build_report
from .code_scan import CodeReference, scan
from .decisions import Decision, read_decisions
from .flag_facts import FlagFacts, facts_from_featbit, facts_from_file

__all__ = [
    "CleanupItem",
    "CodeReference",
    "Decision",
    "FlagFacts",
    "LifecycleReport",
    "build_report",
    "facts_from_featbit",
    "facts_from_file",
    "read_decisions",
    "scan",
]
