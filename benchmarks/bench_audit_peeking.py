"""Decisions that survive peeking. Goal: over 1,000 null experiments (no true effect on any
metric) looked at daily for 14 days, the hint says ship or roll back at most 5% of the time;
on planted winners, the power of the always-valid decision is reported against a
fixed-horizon test read once, at day 14.

The experiments come from the tests' own generator (``simulated_events``): conversations
assigned at random, one primary metric (``resolved``) and two guardrails (``latency_ms``,
``handoff``), 40 conversations a day. Their events are written as daily rotated files, the
way a team would audit them. A daily look is what the audit's timeline says for that day (the
deciding metrics' effects computed from the data up to that day); the benchmark checks that
this agrees with a real audit of the files up to day 7. An experiment counts as a false
decision if any of its 14 looks would have said roll back (a deciding metric significantly
worse) or ship (the primary significantly better).

Run alone with ``python -m benchmarks audit_peeking``.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Iterable, Sequence
from datetime import date
from pathlib import Path
from typing import Any

from benchmarks._audit_data import bench_dir
from benchmarks._report import Row, print_rows
from featbit_experiments.audit import AuditOptions, ExperimentAudit, audit_file
from tests.support.event_logs import ARMS, NULL_ARMS, Arm, simulated_events

NULLS = 1000
WINNERS = 200
DAYS = 14
UNITS_PER_DAY = 40
WINNER_ARMS = (Arm("control", 0.50), Arm(ARMS[1], 0.65))
START = date(2026, 6, 1)  # the generator's first day
DECIDING = {"primary_metric": "resolved", "guardrail_metrics": ("latency_ms", "handoff")}


def daily_files(name: str, records: Iterable[dict[str, Any]]) -> list[Path]:
    """The records split into one file per day (``<name>/day-01.jsonl``...), made once."""
    directory = bench_dir() / name
    done = directory / "complete"
    paths = [directory / f"day-{day + 1:02d}.jsonl" for day in range(DAYS)]
    if done.exists():
        return paths
    directory.mkdir(exist_ok=True)
    handles = [path.open("w", encoding="utf-8") for path in paths]
    try:
        for record in records:
            day = (date.fromisoformat(record["timestamp"][:10]) - START).days
            handles[day].write(json.dumps(record) + "\n")
    finally:
        for handle in handles:
            handle.close()
    done.touch()
    return paths


def experiments(prefix: str, count: int, arms: Sequence[Arm], seed: int) -> list[Path]:
    records = itertools.chain.from_iterable(
        simulated_events(
            experiment=f"{prefix}-{k:04d}",
            arms=arms,
            units_per_day=UNITS_PER_DAY,
            days=DAYS,
            seed=seed + k,
        )
        for k in range(count)
    )
    return daily_files(prefix, records)


def first_decision(audit: ExperimentAudit) -> tuple[str, str] | None:
    """The first daily look that would have said ship or roll back: (day, action)."""
    assert audit.timeline is not None
    for day in (d.day for d in audit.timeline.days):
        looks = [look for look in audit.timeline.looks if look.day == day]
        if any(look.effect.verdict == "worse" for look in looks):
            return day, "roll_back"
        if any(look.effect.verdict == "better" and look.metric == "resolved" for look in looks):
            return day, "ship"
    return None


def share(audits: Sequence[ExperimentAudit], action: str | None = None) -> float:
    decided = [first_decision(a) for a in audits]
    return sum(1 for d in decided if d is not None and action in (None, d[1])) / len(audits)


def final_share(audits: Sequence[ExperimentAudit], actions: set[str]) -> float:
    return sum(1 for a in audits if a.decision.action.value in actions) / len(audits)


def run() -> list[Row]:
    started = time.perf_counter()
    nulls = experiments("nulls", NULLS, NULL_ARMS, seed=10_000)
    winners = experiments("winners", WINNERS, WINNER_ARMS, seed=20_000)
    made = time.perf_counter() - started
    sequential = AuditOptions(**DECIDING)  # type: ignore[arg-type]
    fixed = AuditOptions(**DECIDING, sequential=False)  # type: ignore[arg-type]
    started = time.perf_counter()
    null_seq = audit_file(nulls, sequential).experiments
    null_fixed = audit_file(nulls, fixed).experiments
    week = audit_file(nulls[:7], sequential).experiments
    win_seq = audit_file(winners, sequential).experiments
    win_fixed = audit_file(winners, fixed).experiments
    audited = time.perf_counter() - started
    agree = _agreement(null_seq, week, "2026-06-07")
    false_rate = share(null_seq)
    return [
        Row(
            name=f"{NULLS} null experiments, 14 daily looks: ship + roll back",
            value=100 * false_rate,
            unit="%",
            target=f"<= 5%: {'met' if false_rate <= 0.05 else 'MISSED'}",
            baseline=f"fixed-horizon intervals at the same looks {100 * share(null_fixed):.1f}%",
            note=f"ship {100 * share(null_seq, 'ship'):.1f}%, roll back "
            f"{100 * share(null_seq, 'roll_back'):.1f}%; always-valid, split over 3 deciding "
            f"metrics; day-7 looks agree with a day-7 audit for {agree:.1%} of experiments",
        ),
        Row(
            name="null experiments, fixed-horizon read once at day 14",
            value=100 * final_share(null_fixed, {"ship", "roll_back"}),
            unit="%",
            note="the false-decision rate a single planned look keeps (alpha 5%)",
        ),
        Row(
            name=f"{WINNERS} planted winners (+15 pts): shipped at some look",
            value=100 * share(win_seq, "ship"),
            unit="%",
            baseline="fixed-horizon read once at day 14 "
            f"{100 * final_share(win_fixed, {'ship'}):.1f}%",
            note=f"median first ship day {_median_day(win_seq)}; rolled back "
            f"{100 * share(win_seq, 'roll_back'):.1f}%",
        ),
        Row(
            name="made / audited the logs",
            value=made + audited,
            unit="s",
            note=f"making {made:.0f} s, five audits {audited:.0f} s",
        ),
    ]


def _agreement(full: Sequence[ExperimentAudit], week: Sequence[ExperimentAudit], day: str) -> float:
    """Share of experiments whose timeline look on ``day`` gives the same verdicts as the
    audit of the files up to that day."""
    at_day = {a.experiment_key: a for a in week}
    same = 0
    for audit in full:
        assert audit.timeline is not None
        looks = {
            (look.metric, look.effect.variant): look.effect.verdict
            for look in audit.timeline.looks
            if look.day == day
        }
        audited = {
            (m.metric, e.variant): e.verdict
            for m in at_day[audit.experiment_key].metrics
            if m.role != "secondary"
            for e in m.effects
        }
        same += looks == audited
    return same / len(full)


def _median_day(audits: Sequence[ExperimentAudit]) -> str:
    days = sorted(d[0] for a in audits if (d := first_decision(a)) is not None and d[1] == "ship")
    return days[len(days) // 2] if days else "-"


if __name__ == "__main__":
    print_rows("bench_audit_peeking", run())
