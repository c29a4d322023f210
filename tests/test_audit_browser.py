"""The HTML report in a real browser: Debian's headless Chromium loads the page and, through
the DevTools protocol on loopback, measures where the charts landed: the timeline and the
forest plot are laid out with every label inside its chart, one line per variant and one
row per effect, no horizontal overflow, and hostile names stay text (no script, no image)."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import websocket

from featbit_experiments.audit import AuditOptions, audit_records, render_html
from tests.support.event_logs import Arm, simulated_events

CHROMIUM = Path("/usr/bin/chromium")
HOSTILE = '<img src=x onerror="document.title=1">'
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0",
    "--window-size=1280,900",
)
MEASURE = """(() => {
  const inside = (b, r) => b.left >= r.left - 1 && b.right <= r.right + 1
      && b.top >= r.top - 1 && b.bottom <= r.bottom + 1;
  const charts = [...document.querySelectorAll('svg.timeline, svg.forest')].map(svg => {
    const r = svg.getBoundingClientRect();
    return {
      kind: svg.getAttribute('class'), width: r.width, height: r.height,
      outside: [...svg.querySelectorAll('text')]
          .filter(t => !inside(t.getBoundingClientRect(), r)).map(t => t.textContent),
      exposureLines: [...svg.querySelectorAll('.exposure-line polyline')]
          .map(p => p.points.numberOfItems),
      effectLines: svg.querySelectorAll('.effect-line').length,
      bands: svg.querySelectorAll('.effect-band').length,
      rows: [...svg.querySelectorAll('.forest-row')].map(g => {
        const dot = g.querySelector('circle').getBoundingClientRect();
        return {verdict: g.dataset.verdict, dot: inside(dot, r) && dot.width > 0};
      }),
    };
  });
  return JSON.stringify({
    charts,
    scripts: document.scripts.length,
    images: document.images.length,
    title: document.title,
    overflow: document.documentElement.scrollWidth > window.innerWidth,
    segmentRows: document.querySelectorAll('.segment-row').length,
  });
})()"""

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium (apt)"
)


@contextmanager
def chromium(page: Path, profile: Path) -> Iterator[websocket.WebSocket]:
    """Headless Chromium showing ``page``; yields a DevTools connection to that page."""
    process = subprocess.Popen(
        [str(CHROMIUM), *FLAGS, f"--user-data-dir={profile}", page.as_uri()],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 60
        while not port_file.exists() or not port_file.read_text().strip():
            assert process.poll() is None, "chromium exited"
            assert time.monotonic() < deadline, "chromium did not open its DevTools port"
            time.sleep(0.05)
        port = int(port_file.read_text().split()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=30) as reply:
            targets = json.load(reply)
        [target] = [t for t in targets if t["type"] == "page"]
        connection = websocket.create_connection(target["webSocketDebuggerUrl"], timeout=30)
        try:
            yield connection
        finally:
            connection.close()
    finally:
        process.terminate()
        process.wait(timeout=30)


def evaluate(connection: websocket.WebSocket, expression: str, ident: int) -> Any:
    connection.send(
        json.dumps(
            {
                "id": ident,
                "method": "Runtime.evaluate",
                "params": {"expression": expression, "returnByValue": True},
            }
        )
    )
    while True:
        message = json.loads(connection.recv())
        if message.get("id") == ident:
            return message["result"]["result"].get("value")


def measured(connection: websocket.WebSocket, page: Path) -> dict[str, Any]:
    """The layout facts, once ``page`` (not the blank page before it) has loaded."""
    loaded = f"location.href === {json.dumps(page.as_uri())} && document.readyState"
    deadline = time.monotonic() + 60
    ident = 0
    while True:
        ident += 1
        if evaluate(connection, loaded, ident) == "complete":
            break
        assert time.monotonic() < deadline, "the page did not finish loading"
        time.sleep(0.05)
    result: dict[str, Any] = json.loads(evaluate(connection, MEASURE, ident + 1))
    return result


@pytest.fixture(scope="module")
def layout(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("browser")
    arms = (Arm("control", 0.5), Arm(HOSTILE, 0.58, latency_ms=960))
    records = list(simulated_events(units_per_day=120, days=6, arms=arms, plans=("free", "pro")))
    options = AuditOptions(
        primary_metric="resolved", guardrail_metrics=("latency_ms", "handoff"), segment_by="plan"
    )
    report = audit_records(records, options, source=f"</title>{HOSTILE}")
    page = tmp / "audit.html"
    page.write_text(render_html(report), encoding="utf-8")
    with chromium(page, tmp / "profile") as connection:
        return measured(connection, page)


def chart(layout: dict[str, Any], kind: str) -> dict[str, Any]:
    [found] = [c for c in layout["charts"] if c["kind"] == kind]
    return found


def test_the_timeline_is_laid_out_with_a_line_per_variant_and_a_point_per_day(
    layout: dict[str, Any],
) -> None:
    timeline = chart(layout, "timeline")
    assert timeline["width"] > 500 and timeline["height"] > 300
    assert timeline["exposureLines"] == [6, 6]
    assert timeline["effectLines"] == 1 and timeline["bands"] == 1


def test_the_forest_plot_has_a_row_per_effect_with_its_estimate_inside(
    layout: dict[str, Any],
) -> None:
    forest = chart(layout, "forest")
    assert forest["width"] > 500
    assert len(forest["rows"]) == 3 and all(row["dot"] for row in forest["rows"])
    assert {row["verdict"] for row in forest["rows"]} <= {"better", "worse", "unclear"}


def test_every_label_stays_inside_its_chart(layout: dict[str, Any]) -> None:
    assert [c["outside"] for c in layout["charts"]] == [[], []]


def test_the_page_fits_the_window_and_shows_the_segment_review(layout: dict[str, Any]) -> None:
    assert not layout["overflow"]
    assert layout["segmentRows"] == 6


def test_hostile_names_stay_text(layout: dict[str, Any]) -> None:
    assert layout["scripts"] == 0 and layout["images"] == 0
    assert layout["title"] == f"Experiment audit: </title>{HOSTILE}"
