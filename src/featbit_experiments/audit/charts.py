"""Inline SVG charts for the HTML page: the timeline (exposed units per variant by day, and
the primary effect with its always-valid interval at each daily look) and the forest plot
(every effect with its fixed-horizon and always-valid interval, one row each).

Each chart is a self-contained ``<svg>`` string with a ``viewBox``, so it scales with the
page; every text from the log is escaped. No script, no external asset.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from html import escape

from .estimates import Effect, Look, MetricReadout, Timeline
from .stats import Interval

__all__ = ["COLORS", "clip", "forest_plot", "timeline_chart"]

COLORS = ("#4e79a7", "#f28e2b", "#59a14f", "#b07aa1", "#76b7b2", "#edc948")
_VERDICT_COLORS = {"better": "#2e7d32", "worse": "#c62828", "unclear": "#546e7a"}
_WIDTH = 880
_LEFT = 72
_RIGHT = 270
_PANEL = 150


def timeline_chart(timeline: Timeline, primary: MetricReadout | None) -> str:
    """Two panels: cumulative exposed units per variant, then the primary effect per day."""
    days = [d.day for d in timeline.days]
    variants = list(dict.fromkeys(v for d in timeline.days for v in d.units))
    looks = [
        look
        for look in timeline.looks
        if primary is not None and look.metric == primary.metric and look.day in days
    ]
    height = 30 + _PANEL + (60 + _PANEL if looks else 0) + 30
    x = _x_scale(len(days))
    parts = [_text(_LEFT, 16, "Exposed units by the end of each day", "title")]
    top = max([n for d in timeline.days for n in d.units.values()] + [1])
    y0 = 30
    parts.append(_axes(y0, f"{top:,}", "0"))
    ends = []
    for i, variant in enumerate(variants):
        color = COLORS[i % len(COLORS)]
        points = [
            (x(j), y0 + _PANEL * (1 - d.units.get(variant, 0) / top))
            for j, d in enumerate(timeline.days)
        ]
        parts.append(_polyline(points, color, "exposure-line", variant))
        last = timeline.days[-1].units.get(variant, 0)
        ends.append((points[-1][1], f"{clip(variant, 22)} {last:,}"))
    parts.extend(_end_labels(ends))
    if looks and primary is not None:
        parts.append(_effect_panel(looks, days, x, primary, y0 + _PANEL + 60))
    parts.append(_text(_LEFT, height - 8, days[0], "axis"))
    if len(days) > 1:
        parts.append(_text(_WIDTH - _RIGHT, height - 8, days[-1], "axis", anchor="end"))
    return _svg("timeline", height, "Timeline", parts)


def _effect_panel(
    looks: Sequence[Look],
    days: Sequence[str],
    x: Callable[[int], float],
    primary: MetricReadout,
    y0: float,
) -> str:
    rate = primary.kind != "mean"
    scale = 100 if rate else 1
    bounds = (
        [
            value * scale
            for look in looks
            if look.effect.always_valid is not None
            for value in (look.effect.always_valid.low, look.effect.always_valid.high)
            if math.isfinite(value)
        ]
        + [look.effect.difference * scale for look in looks]
        + [0.0]
    )
    low, high = min(bounds), max(bounds)
    if high - low < 1e-12:
        low, high = low - 1, high + 1

    def y(value: float) -> float:
        clipped = min(max(value * scale, low), high)
        return y0 + _PANEL * (high - clipped) / (high - low)

    unit = " pts" if rate else ""
    parts = [
        _text(
            _LEFT, y0 - 14, f"{primary.metric}: effect vs control, always-valid interval", "title"
        ),
        _axes(y0, f"{high:+.3g}{unit}", f"{low:+.3g}{unit}"),
        f'<line class="zero" x1="{_LEFT}" x2="{_WIDTH - _RIGHT}" y1="{y(0):.1f}" '
        f'y2="{y(0):.1f}" stroke="#999" stroke-dasharray="4 3"/>',
    ]
    at = {day: i for i, day in enumerate(days)}
    ends: list[tuple[float, str]] = []
    variants = list(dict.fromkeys(look.effect.variant for look in looks))
    for i, variant in enumerate(variants, start=1):
        color = COLORS[i % len(COLORS)]
        mine = [look for look in looks if look.effect.variant == variant]
        xs = [x(at[look.day]) for look in mine]
        band = [
            look.effect.always_valid or Interval(look.effect.difference, look.effect.difference)
            for look in mine
        ]
        upper = [(px, y(b.high)) for px, b in zip(xs, band, strict=True)]
        lower = [(px, y(b.low)) for px, b in zip(xs, band, strict=True)]
        outline = " ".join(f"{px:.1f},{py:.1f}" for px, py in upper + lower[::-1])
        parts.append(
            f'<polygon class="effect-band" points="{outline}" fill="{color}" '
            f'fill-opacity="0.18" stroke="none"><title>{escape(variant)}: always-valid '
            "interval</title></polygon>"
        )
        points = [(px, y(look.effect.difference)) for px, look in zip(xs, mine, strict=True)]
        parts.append(_polyline(points, color, "effect-line", variant))
        last = mine[-1].effect
        ends.append(
            (points[-1][1], f"{clip(variant, 12)} {last.describe(rate, last.always_valid)}")
        )
    parts.extend(_end_labels(ends))
    return "".join(parts)


def clip(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters (an ellipsis marks the cut), so a long name from
    the log cannot run out of its chart; the tables show it whole."""
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def _end_labels(ends: list[tuple[float, str]]) -> list[str]:
    """Labels right of the lines' ends, pushed apart so that none overlaps another."""
    placed: list[str] = []
    floor = -math.inf
    for y, text in sorted(ends):
        y = max(y + 4, floor + 15)
        floor = y
        placed.append(_text(_WIDTH - _RIGHT + 8, y, text))
    return placed


def forest_plot(metrics: Sequence[MetricReadout]) -> str:
    """One row per effect: the estimate, its fixed-horizon interval (thick) and its
    always-valid interval (thin, with caps), each row on its own scale around zero."""
    rows = [(m, e) for m in metrics for e in m.effects]
    row_height = 34
    height = 36 + row_height * max(1, len(rows))
    label, plot = 230, _WIDTH - 230 - _RIGHT
    parts = [_text(8, 16, "Effects vs control (thick: fixed-horizon, thin: always-valid)", "title")]
    for i, (metric, effect) in enumerate(rows):
        mid = 36 + i * row_height + row_height / 2
        rate = metric.kind != "mean"
        parts.append(_forest_row(metric, effect, mid, label, plot, rate))
    return _svg("forest", height, "Forest plot of effects", parts)


def _forest_row(
    metric: MetricReadout, effect: Effect, mid: float, label: int, plot: int, rate: bool
) -> str:
    spans = [abs(effect.difference)]
    for interval in (effect.interval, effect.always_valid):
        if interval is not None:
            spans += [abs(v) for v in (interval.low, interval.high) if math.isfinite(v)]
    reach = max(spans) * 1.1 or 1.0
    center = label + plot / 2

    def x(value: float) -> float:
        return center + plot / 2 * max(-1.0, min(1.0, value / reach))

    color = _VERDICT_COLORS.get(effect.verdict, "#546e7a")
    parts = [
        f'<g class="forest-row" data-verdict="{escape(effect.verdict)}">',
        _text(label - 8, mid + 4, clip(f"{metric.metric} · {effect.variant}", 30), anchor="end"),
        f'<line x1="{center:.1f}" x2="{center:.1f}" y1="{mid - 13}" y2="{mid + 13}" '
        'stroke="#999" stroke-dasharray="3 3"/>',
    ]
    if effect.always_valid is not None:
        low, high = x(effect.always_valid.low), x(effect.always_valid.high)
        parts.append(
            f'<path class="always-valid" d="M{low:.1f},{mid - 5}v10M{low:.1f},{mid}'
            f'H{high:.1f}M{high:.1f},{mid - 5}v10" stroke="{color}" stroke-width="1.5" '
            'fill="none"/>'
        )
    if effect.interval is not None:
        parts.append(
            f'<line class="fixed" x1="{x(effect.interval.low):.1f}" '
            f'x2="{x(effect.interval.high):.1f}" y1="{mid}" y2="{mid}" stroke="{color}" '
            'stroke-width="5" stroke-opacity="0.55"/>'
        )
    parts.append(f'<circle cx="{x(effect.difference):.1f}" cy="{mid}" r="4.5" fill="{color}"/>')
    shown = effect.describe(rate, effect.always_valid)
    parts.append(_text(label + plot + 8, mid + 4, f"{shown} {effect.verdict}"))
    parts.append("</g>")
    return "".join(parts)


def _x_scale(count: int) -> Callable[[int], float]:
    span = _WIDTH - _LEFT - _RIGHT

    def x(index: int) -> float:
        return _LEFT + (span * index / (count - 1) if count > 1 else span / 2)

    return x


def _axes(y0: float, top: str, bottom: str) -> str:
    return (
        f'<line x1="{_LEFT}" x2="{_LEFT}" y1="{y0}" y2="{y0 + _PANEL}" stroke="#bbb"/>'
        f'<line x1="{_LEFT}" x2="{_WIDTH - _RIGHT}" y1="{y0 + _PANEL}" y2="{y0 + _PANEL}" '
        'stroke="#bbb"/>'
        + _text(_LEFT - 6, y0 + 10, top, "axis", anchor="end")
        + _text(_LEFT - 6, y0 + _PANEL, bottom, "axis", anchor="end")
    )


def _polyline(points: Sequence[tuple[float, float]], color: str, cls: str, name: str) -> str:
    coords = " ".join(f"{px:.1f},{py:.1f}" for px, py in points)
    dots = "".join(
        f'<circle cx="{px:.1f}" cy="{py:.1f}" r="2.5" fill="{color}"/>' for px, py in points
    )
    return (
        f'<g class="{cls}"><polyline points="{coords}" fill="none" stroke="{color}" '
        f'stroke-width="2"><title>{escape(name)}</title></polyline>{dots}</g>'
    )


def _text(x: float, y: float, text: str, cls: str = "", *, anchor: str = "start") -> str:
    klass = f' class="{cls}"' if cls else ""
    return f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}"{klass}>{escape(text)}</text>'


def _svg(cls: str, height: float, title: str, parts: Sequence[str]) -> str:
    return (
        f'<svg class="{cls}" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {_WIDTH} '
        f'{height:.0f}" width="100%" style="max-width:{_WIDTH}px" role="img">'
        f"<title>{escape(title)}</title>" + "".join(parts) + "</svg>"
    )
