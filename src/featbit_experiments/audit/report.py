"""Renders an :class:`~featbit_experiments.audit.model.AuditReport` as JSON: every field of
the report (dataclasses as objects, non-finite numbers as null) plus the derived values a
reader wants. The per-experiment ``decision`` object (``action``, ``rule``, ``reason``,
``label``) is a stable interface: tools such as a lifecycle command read it. (The text table
is in ``table``, the HTML page in ``html``.) Rendering never computes a statistic.
"""

from __future__ import annotations

import dataclasses
import json
import math
from enum import Enum
from typing import Any

from .model import AuditReport

__all__ = ["render_json", "report_dict"]


def report_dict(report: AuditReport) -> dict[str, Any]:
    """The report as JSON-ready data (non-finite numbers become null), with the derived
    values a reader wants (join rate, mixed share, whether the log mixes experiments)."""
    data: dict[str, Any] = _plain(report)
    data["mixes_experiments"] = report.mixes_experiments
    for item, audit in zip(data["experiments"], report.experiments, strict=True):
        item["title"] = audit.title
        item["join"]["rate"] = _finite(audit.join.rate)
        item["mixed"]["share"] = audit.mixed.share
        item["decision"]["label"] = audit.decision.action.label
    return data


def render_json(report: AuditReport, *, indent: int | None = 2) -> str:
    return json.dumps(report_dict(report), indent=indent, allow_nan=False)


def _plain(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict) or hasattr(value, "items"):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, float):
        return _finite(value)
    return value


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None
