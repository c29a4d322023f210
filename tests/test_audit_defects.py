"""The seven defects of the first audit, each planted in a log: a UTF-8 byte order mark lost the
first record; a unit that changed without its label went unseen; fallbacks never changed the
decision; throttled guardrails were undercounted; segment review was thin; decisions were
fixed-horizon while teams watch continuously; the engine held every unit in Python objects."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from featbit_experiments.audit import (
    Action,
    AuditOptions,
    ExperimentAudit,
    Severity,
    audit_file,
    audit_records,
    render_html,
)
from tests.support.event_logs import (
    ARMS,
    Arm,
    EventLogBuilder,
    conversation_log,
    simulated_events,
    write_jsonl,
)

TREATMENT = ARMS[1]
DECIDING = AuditOptions(primary_metric="resolved", guardrail_metrics=("latency_ms",))
SIMULATED = AuditOptions(primary_metric="resolved", guardrail_metrics=("latency_ms", "handoff"))


def only(records: list[dict[str, object]], options: AuditOptions = DECIDING) -> ExperimentAudit:
    [audit] = audit_records(records, options).experiments
    return audit


def codes(audit: ExperimentAudit, severity: Severity | None = None) -> set[str]:
    return {f.code for f in audit.findings if severity is None or f.severity == severity}


# 1. A UTF-8 byte order mark -----------------------------------------------------------------


def test_a_byte_order_mark_keeps_the_first_record_and_its_outcomes_join(tmp_path: Path) -> None:
    log = conversation_log()
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + ("\n".join(log.lines) + "\n").encode("utf-8"))
    report = audit_file(path, DECIDING)
    [audit] = report.experiments
    assert report.malformed_count == 0
    assert audit.exposed_units == 200
    assert audit.join.outcomes == 600 and audit.join.rate == 1.0


# 2. A unit that changed without its label -------------------------------------------------


def test_a_unit_id_that_stops_matching_its_own_unit_attribute_is_a_unit_change() -> None:
    log = conversation_log()
    for i in range(20):
        # Mid-run, unitId becomes the user's ID; assignmentUnit still says conversation.
        user = f"u-c-late-{i}"
        log.expose(user, ARMS[i % 2], own_id=f"c-late-{i}", user=user)
    audit = only(log.records)
    [change] = audit.unit_id_changes
    assert (change.assignment_unit, change.matched_field) == ("conversation", "userId")
    assert (change.exposures, change.units) == (20, 20)
    assert audit.unit_changed and audit.assignment_units == {"conversation": 220}
    assert "unit_changed" in codes(audit, Severity.ERROR)
    assert audit.decision.rule == "redesign.unit_changed"
    assert "userId" in audit.decision.reason


def test_a_unit_id_matching_its_own_unit_attribute_is_no_change() -> None:
    audit = only(conversation_log().records)
    assert audit.unit_id_changes == () and not audit.unit_changed


# 3. Fallbacks weigh in the decision -----------------------------------------------------------


def winner(units: int) -> list[dict[str, object]]:
    arms = (Arm("control", 0.5), Arm(TREATMENT, 0.7))
    return list(simulated_events(arms=arms, units_per_day=units // 2, days=2, seed=3))


def test_fallbacks_on_more_than_the_threshold_of_units_pause_a_clear_winner() -> None:
    records = winner(20_000)
    assert only(records, SIMULATED).decision.rule == "ship.primary_better"
    log = EventLogBuilder()
    for i in range(3000):
        log.guardrail(
            "fallback_used", experimentKey=log.experiment, flagKey=log.experiment, unitId=f"f-{i}"
        )
    audit = only(records + log.records, SIMULATED)
    [impact] = audit.integrity
    assert (impact.name, impact.units, impact.share) == ("fallback_used", 3000, 0.15)
    assert audit.decision.action is Action.PAUSE
    assert audit.decision.rule == "pause.integrity_guardrails"
    assert "fallback_used" in audit.decision.reason and "1.0%" in audit.decision.reason
    assert "integrity_guardrails" in codes(audit, Severity.ERROR)


def test_fallbacks_below_the_threshold_are_reported_but_do_not_decide() -> None:
    log = conversation_log((("control", 400, 0.6), (TREATMENT, 400, 0.75)))
    log.guardrail("fallback_used", experimentKey=log.experiment, unitId="c-control-1")
    audit = only(log.records)
    assert audit.fallbacks == 1 and audit.integrity[0].share == pytest.approx(1 / 800)
    assert audit.decision.rule == "ship.primary_better"


# 4. Throttled guardrails ----------------------------------------------------------------------


def test_throttled_guardrails_count_what_they_suppressed() -> None:
    log = conversation_log()
    for _ in range(10):
        log.guardrail("store_unavailable", experimentKey=log.experiment, suppressed=99)
    audit = only(log.records)
    assert audit.guardrails["store_unavailable"] == 1000
    [impact] = audit.integrity
    assert impact.events == 1000 and impact.share == 1.0
    assert audit.decision.rule == "pause.integrity_guardrails"


# 5. Segment review ----------------------------------------------------------------------------


def test_every_metric_is_broken_down_with_n_rate_and_interval_per_variant_per_segment() -> None:
    records = list(simulated_events(units_per_day=200, days=1, plans=("free", "pro", "team")))
    audit = only(records, AuditOptions(primary_metric="resolved", segment_by="plan"))
    review = audit.segment_review
    assert review is not None and review.segments == ("free", "pro", "team")
    assert {(r.metric, r.segment) for r in review.readouts} == set(
        itertools.product(("handoff", "latency_ms", "resolved"), ("free", "pro", "team"))
    )
    for readout in review.readouts:
        assert [v.variant for v in readout.variants] == ["control", TREATMENT]
        assert all(v.units > 0 and v.interval is not None for v in readout.variants)
        assert len(readout.effects) == 1 and readout.effects[0].always_valid is not None
    assert (
        sum(v.units for r in review.readouts if r.metric == "resolved" for v in r.variants) == 200
    )


def test_intervals_are_corrected_for_the_number_of_segments() -> None:
    records = list(simulated_events(units_per_day=200, days=1, plans=("free", "pro", "team")))
    audit = only(records, AuditOptions(primary_metric="resolved", segment_by="plan"))
    assert audit.segment_review is not None
    assert audit.segment_review.confidence == pytest.approx(1 - 0.05 / 3)


def test_a_conversion_primary_is_broken_down_over_exposed_units_of_each_segment() -> None:
    log = EventLogBuilder()
    for plan in ("free", "pro"):
        for variant, booked in (("control", 5), (TREATMENT, 15)):
            for i in range(20):
                unit = f"c-{plan}-{variant}-{i}"
                log.expose(unit, variant, attributes={"plan": plan})
                if i < booked:  # only successes are tracked
                    log.outcome(unit, "booked", 1.0, variant)
    audit = only(log.records, AuditOptions(primary_metric="booked", segment_by="plan"))
    assert audit.metrics[0].kind == "conversion"
    review = audit.segment_review
    assert review is not None
    by_segment = {
        (r.segment, v.variant): (v.units, v.estimate) for r in review.readouts for v in r.variants
    }
    assert by_segment == {
        ("free", "control"): (20, 0.25),
        ("free", TREATMENT): (20, 0.75),
        ("pro", "control"): (20, 0.25),
        ("pro", TREATMENT): (20, 0.75),
    }


def test_a_field_on_exposures_only_segments_the_outcomes_of_its_units() -> None:
    log = EventLogBuilder()
    for i in range(40):
        variant = ARMS[i % 2]
        log.expose(f"c-{i}", variant, fields={"accountId": f"acct-{i % 2}"})
        log.outcome(f"c-{i}", "resolved", float(i % 3 == 0), variant)
    audit = only(log.records, AuditOptions(primary_metric="resolved", segment_by="accountId"))
    review = audit.segment_review
    assert review is not None and review.segments == ("acct-0", "acct-1")
    assert {r.segment for r in review.readouts} == {"acct-0", "acct-1"}
    assert sum(v.units for r in review.readouts for v in r.variants) == 40


def test_a_field_no_record_carries_is_a_note_not_an_empty_breakdown() -> None:
    audit = only(conversation_log().records, AuditOptions(segment_by="paln"))
    review = audit.segment_review
    assert review is not None and review.readouts == ()
    assert "no exposure or outcome record of this run carries 'paln'" in review.notes[0]
    assert "segment_review" in codes(audit, Severity.WARNING)


def test_the_html_page_has_a_segment_section() -> None:
    records = list(simulated_events(units_per_day=60, days=1, plans=("free", "pro")))
    report = audit_records(records, AuditOptions(primary_metric="resolved", segment_by="plan"))
    page = render_html(report)
    assert 'id="segments-' in page and "By plan" in page
    assert page.count('class="segment-row"') == 6


# 6. Decisions that survive peeking ------------------------------------------------------------


def test_a_fixed_horizon_difference_the_always_valid_interval_does_not_confirm_continues() -> None:
    log = conversation_log((("control", 200, 0.6), (TREATMENT, 200, 0.75)))
    sequential = only(log.records)
    [effect] = next(m for m in sequential.metrics if m.metric == "resolved").effects
    assert effect.interval is not None and effect.interval.excludes_zero()
    assert effect.always_valid is not None and not effect.always_valid.excludes_zero()
    assert sequential.decision.rule == "continue.no_evidence"
    fixed = only(log.records, AuditOptions(primary_metric="resolved", sequential=False))
    assert fixed.decision.rule == "ship.primary_better"


def test_the_always_valid_level_is_split_over_the_deciding_metrics_and_treatments() -> None:
    audit = only(conversation_log().records, SIMULATED)
    assert audit.decision_confidence == pytest.approx(1 - 0.05 / 3)
    assert "always-valid 98.3% intervals, 3 deciding comparisons" in audit.decision.reason


def daily_false_decisions(audit: ExperimentAudit) -> bool:
    """Whether any daily look would have said ship or roll back."""
    return any(
        look.effect.verdict == "worse"
        or (look.effect.verdict == "better" and look.metric == "resolved")
        for look in audit.timeline.looks  # type: ignore[union-attr]
    )


def test_null_experiments_looked_at_daily_rarely_ship_or_roll_back(tmp_path: Path) -> None:
    path = tmp_path / "nulls.jsonl"
    write_jsonl(
        itertools.chain.from_iterable(
            simulated_events(experiment=f"null-{k}", seed=k, units_per_day=30) for k in range(80)
        ),
        path,
    )
    sequential = audit_file(path, SIMULATED).experiments
    fixed = audit_file(path, AuditOptions(**{**_fields(SIMULATED), "sequential": False}))
    false_sequential = sum(daily_false_decisions(a) for a in sequential) / len(sequential)
    false_fixed = sum(daily_false_decisions(a) for a in fixed.experiments) / len(sequential)
    assert len(sequential[0].timeline.looks) == 14 * 3  # type: ignore[union-attr]
    assert false_sequential <= 0.05
    # Fixed-horizon intervals, even adjusted over the metrics, fail under daily looks.
    assert false_fixed > 0.05 and false_fixed > 2 * false_sequential


def _fields(options: AuditOptions) -> dict[str, object]:
    return {
        "primary_metric": options.primary_metric,
        "guardrail_metrics": options.guardrail_metrics,
    }


def test_the_timeline_counts_exposed_units_per_variant_per_day() -> None:
    records = list(simulated_events(units_per_day=50, days=3))
    audit = only(records, SIMULATED)
    assert audit.timeline is not None
    days = audit.timeline.days
    assert [d.day for d in days] == ["2026-06-01", "2026-06-02", "2026-06-03"]
    assert [sum(d.units.values()) for d in days] == [50, 100, 150]
    last = [look for look in audit.timeline.looks if look.metric == "resolved"][-1]
    [final] = next(m for m in audit.metrics if m.metric == "resolved").effects
    assert last.effect.difference == pytest.approx(final.difference)
    assert last.effect.always_valid == pytest.approx(final.always_valid)


# 7. Scale -------------------------------------------------------------------------------------


def test_a_log_larger_than_the_memory_limit_is_audited_by_spilling_to_disk(
    tmp_path: Path,
) -> None:
    path = tmp_path / "events.jsonl"
    write_jsonl(simulated_events(units_per_day=60_000, days=2, seed=5), path)
    assert path.stat().st_size > 150 * 2**20
    small = AuditOptions(**_fields(SIMULATED), memory_limit="128MB", work_dir=str(tmp_path))
    [audit] = audit_file(path, small).experiments
    assert audit.exposed_units == 120_000 and audit.join.rate == 1.0
    assert list(tmp_path.glob("featbit-audit-*")) == []  # the workspace is removed


def test_a_parquet_log_audits_like_its_json_lines(tmp_path: Path) -> None:
    import duckdb

    source = tmp_path / "events.jsonl"
    write_jsonl(simulated_events(units_per_day=300, days=2, seed=7, plans=("a", "b")), source)
    target = tmp_path / "events.parquet"
    duckdb.sql(
        f"COPY (SELECT * FROM read_json('{source}', format='newline_delimited')) "
        f"TO '{target}' (FORMAT parquet)"
    )
    options = AuditOptions(**_fields(SIMULATED), segment_by="plan")
    [json_audit] = audit_file(source, options).experiments
    [parquet_audit] = audit_file(target, options).experiments
    for name in ("exposures", "join", "mixed", "decision", "first_timestamp", "last_timestamp"):
        assert getattr(parquet_audit, name) == getattr(json_audit, name), name
    assert _same_estimates(parquet_audit, json_audit)
    assert parquet_audit.segment_review is not None and json_audit.segment_review is not None
    assert len(parquet_audit.segment_review.readouts) == len(json_audit.segment_review.readouts)


def _same_estimates(a: ExperimentAudit, b: ExperimentAudit) -> bool:
    pairs = [
        (x, y)
        for m, n in zip(a.metrics, b.metrics, strict=True)
        for x, y in zip(m.variants, n.variants, strict=True)
    ]
    return all(
        x.variant == y.variant and x.units == y.units and x.estimate == pytest.approx(y.estimate)
        for x, y in pairs
    )


def test_a_unit_reporting_on_several_days_enters_the_timeline_with_its_running_mean() -> None:
    log = EventLogBuilder()
    for i in range(40):
        variant = ARMS[i % 2]
        log.expose(f"c-{i}", variant)
    records = log.records
    for i in range(40):
        variant = ARMS[i % 2]
        for day, value in (("2026-06-05", 100.0), ("2026-06-06", 300.0)):
            records.append(
                {
                    **{k: records[i][k] for k in ("experimentKey", "runId", "flagKey")},
                    "event": "experiment_outcome",
                    "timestamp": f"{day}T12:00:00.000Z",
                    "assignmentUnit": "conversation",
                    "unitId": f"c-{i}",
                    "variation": variant,
                    "metric": "latency_ms",
                    "metricUnit": "conversation",
                    "value": value + (10.0 * i if variant == "control" else 0.0),
                }
            )
    audit = only(records, AuditOptions(guardrail_metrics=("latency_ms",)))
    assert audit.timeline is not None
    looks = [look.effect for look in audit.timeline.looks]
    assert len(looks) == 2
    [final] = audit.metrics[0].effects
    # Day one sees only the first outcomes; day two each unit's mean of both.
    assert looks[0].difference == pytest.approx(-10.0 * 19.0)
    assert looks[1].difference == pytest.approx(final.difference)
