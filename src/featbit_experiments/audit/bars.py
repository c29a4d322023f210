"""Inline SVG bar charts for the HTML page: exposed units per variant (with the expected
split as ticks) and each metric's rate or mean per variant (with its interval as a whisker).
No script, no external asset; every text from the log is escaped (and clipped in the chart,
whole in its tooltip).
"""

from __future__ import annotations

from html import escape

from .charts import COLORS, clip
from .estimates import MetricReadout
from .model import VariantExposure

__all__ = ["exposure_chart", "metric_chart"]

_COLORS = COLORS
_BAR_HEIGHT = 22
_LABEL_WIDTH = 170
_PLOT_WIDTH = 380


def exposure_chart(exposures: tuple[VariantExposure, ...]) -> str:
    """Bars of exposed units; a black tick marks the count the expected split predicts."""
    total = sum(e.units for e in exposures)
    top = max([e.units for e in exposures] + [total * (e.expected_share or 0) for e in exposures])
    top = top or 1
    bars = []
    for i, e in enumerate(exposures):
        y = i * (_BAR_HEIGHT + 8)
        width = _PLOT_WIDTH * e.units / top
        bars.append(_label(e.variant, y))
        bars.append(_bar(width, y, _COLORS[i % len(_COLORS)]))
        bars.append(_value(f"{e.units} ({e.share:.1%})", y))
        if e.expected_share is not None:
            x = _LABEL_WIDTH + _PLOT_WIDTH * total * e.expected_share / top
            bars.append(
                f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{y - 2}" y2="{y + _BAR_HEIGHT + 2}" '
                'stroke="#000" stroke-width="2"><title>expected</title></line>'
            )
    return _svg(bars, len(exposures), "Exposed units per variant; ticks mark the expected split")


def metric_chart(metric: MetricReadout) -> str:
    """Bars of each variant's rate or mean, with its confidence interval as a whisker."""
    rate = metric.kind != "mean"
    highs = [v.interval.high if v.interval else v.estimate for v in metric.variants]
    top = max([*highs, *(v.estimate for v in metric.variants), 1e-12])
    top = 1.0 if rate else top
    bars = []
    for i, v in enumerate(metric.variants):
        y = i * (_BAR_HEIGHT + 8)
        width = _PLOT_WIDTH * max(0.0, v.estimate) / top
        bars.append(_label(v.variant, y))
        bars.append(_bar(width, y, _COLORS[i % len(_COLORS)]))
        text = f"{v.estimate:.1%}" if rate else f"{v.estimate:.4g}"
        bars.append(_value(f"{text} (n={v.units})", y))
        if v.interval is not None:
            x1 = _LABEL_WIDTH + _PLOT_WIDTH * max(0.0, v.interval.low) / top
            x2 = _LABEL_WIDTH + _PLOT_WIDTH * max(0.0, v.interval.high) / top
            mid = y + _BAR_HEIGHT / 2
            bars.append(
                f'<line x1="{x1:.1f}" x2="{x2:.1f}" y1="{mid}" y2="{mid}" stroke="#000" '
                'stroke-width="1.5"><title>confidence interval</title></line>'
            )
    effects = "; ".join(
        f"{e.variant} vs {e.control}: {e.describe(rate)} ({e.verdict})" for e in metric.effects
    )
    direction = "higher" if metric.higher_is_better else "lower"
    title = f"{metric.metric} ({metric.role}, {metric.kind}, {direction} is better)"
    caption = f"<p class='note'>{escape(effects)}</p>" if effects else ""
    return f"<h3>{escape(title)}</h3>" + _svg(bars, len(metric.variants), title) + caption


def _svg(items: list[str], rows: int, title: str) -> str:
    height = max(1, rows) * (_BAR_HEIGHT + 8) + 4
    width = _LABEL_WIDTH + _PLOT_WIDTH + 150
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 -2 {width} {height}" role="img"><title>{escape(title)}</title>'
        + "".join(items)
        + "</svg>"
    )


def _label(text: str, y: float) -> str:
    return (
        f'<text x="{_LABEL_WIDTH - 8}" y="{y + _BAR_HEIGHT * 0.7:.1f}" '
        f'text-anchor="end">{escape(clip(text, 22))}<title>{escape(text)}</title></text>'
    )


def _bar(width: float, y: float, color: str) -> str:
    return (
        f'<rect x="{_LABEL_WIDTH}" y="{y}" width="{width:.1f}" height="{_BAR_HEIGHT}" '
        f'fill="{color}"/>'
    )


def _value(text: str, y: float) -> str:
    """The number, in a column right of the plot (never under a whisker)."""
    return (
        f'<text x="{_LABEL_WIDTH + _PLOT_WIDTH + 8}" y="{y + _BAR_HEIGHT * 0.7:.1f}">'
        f"{escape(text)}</text>"
    )
