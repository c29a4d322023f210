"""The audit's checks on event logs with planted defects: each defect is named, and a clean
log reads as clean (0 units with mixed variants, 100% join, a non-alarming hint)."""

from __future__ import annotations

import pytest

from featbit_experiments.audit import (
    Action,
    AuditOptions,
    AuditReport,
    ExperimentAudit,
    ExperimentNotFoundError,
    Severity,
    audit_records,
    render_table,
)
from tests.support.event_logs import ARMS, SUPPORT, EventLogBuilder, conversation_log

TREATMENT = ARMS[1]
DECIDING = AuditOptions(primary_metric="resolved", guardrail_metrics=("latency_ms",))


def audit(log: EventLogBuilder, options: AuditOptions = DECIDING) -> ExperimentAudit:
    report = audit_records(log.records, options)
    [only] = report.experiments
    return only


def codes(result: ExperimentAudit, severity: Severity | None = None) -> set[str]:
    return {f.code for f in result.findings if severity is None or f.severity == severity}


def test_a_clean_log_has_no_mixed_units_a_full_join_and_a_calm_hint() -> None:
    result = audit(conversation_log())
    assert result.mixed.units == 0
    assert result.join.rate == 1.0 and result.join.outcomes == 600
    assert result.assignment_unit == "conversation" and not result.unit_changed
    assert result.metric_units == () and result.join.keyed_at_other_unit == {}
    assert result.sample_ratio is not None and result.sample_ratio.p_value == pytest.approx(1.0)
    assert codes(result, Severity.ERROR) == set()
    assert result.decision.action is Action.CONTINUE
    assert result.decision.rule == "continue.no_evidence"


def test_exposures_are_counted_per_unit_and_variant() -> None:
    result = audit(conversation_log((("control", 30, 0.5), (TREATMENT, 20, 0.5))))
    assert [(e.variant, e.units, e.expected_share) for e in result.exposures] == [
        ("control", 30, 0.5),
        (TREATMENT, 20, 0.5),
    ]


def test_a_conversation_that_saw_both_variants_is_named() -> None:
    log = conversation_log().expose("c-control-3", TREATMENT)
    result = audit(log)
    assert result.mixed.units == 1 and result.mixed.examples == ("c-control-3",)
    assert "mixed_variants" in codes(result, Severity.WARNING)
    [resolved] = [m for m in result.metrics if m.metric == "resolved"]
    assert {v.variant: v.units for v in resolved.variants} == {"control": 99, TREATMENT: 100}


def test_mixed_variants_above_the_threshold_call_for_a_redesign() -> None:
    log = conversation_log()
    for i in range(5):
        log.expose(f"c-control-{i}", TREATMENT)
    result = audit(log)
    assert "mixed_variants" in codes(result, Severity.ERROR)
    assert result.decision.action is Action.REDESIGN
    assert result.decision.rule == "redesign.mixed_variants"


def test_outcomes_keyed_by_the_user_in_a_conversation_experiment_are_named() -> None:
    log = conversation_log()
    for i in range(10):
        log.outcome(f"u-c-control-{i}", "resolved", 1.0, "control", userId=f"u-c-control-{i}")
    result = audit(log)
    assert result.join.keyed_at_other_unit == {"user": 10}
    assert "outcomes_keyed_at_other_unit" in codes(result, Severity.ERROR)
    assert result.decision.rule == "redesign.metric_unit"


def test_an_outcome_whose_own_unit_id_disagrees_with_its_key_is_keyed_at_another_unit() -> None:
    log = conversation_log()
    log.outcome(
        "acct-9", "resolved", 1.0, "control", conversationId="c-control-1", accountId="acct-9"
    )
    result = audit(log)
    assert result.join.keyed_at_other_unit == {"account": 1}


def test_a_metric_measured_per_user_is_named_and_decides_nothing_when_secondary() -> None:
    log = conversation_log()
    for i in range(10):
        log.outcome(f"c-control-{i}", "retained", 1.0, "control", metric_unit="user")
    result = audit(log)
    [mismatch] = result.metric_units
    assert (mismatch.metric, mismatch.unit, mismatch.outcomes) == ("retained", "user", 10)
    assert "metric_unit_mismatch" in codes(result, Severity.WARNING)
    assert result.decision.action is Action.CONTINUE


def test_a_deciding_metric_measured_at_another_unit_calls_for_a_redesign() -> None:
    log = conversation_log()
    log.outcome("c-control-1", "resolved", 1.0, "control", metric_unit="user")
    result = audit(log)
    assert "metric_unit_mismatch" in codes(result, Severity.ERROR)
    assert result.decision.rule == "redesign.metric_unit"


def test_without_named_metrics_every_metric_at_another_unit_decides() -> None:
    log = conversation_log()
    log.outcome("c-control-1", "retained", 1.0, "control", metric_unit="user")
    assert audit(log, AuditOptions()).decision.rule == "redesign.metric_unit"


def test_a_sample_ratio_mismatch_is_named_and_pauses() -> None:
    result = audit(conversation_log((("control", 300, 0.5), (TREATMENT, 200, 0.5))))
    assert result.sample_ratio is not None and result.sample_ratio.p_value < 1e-5
    assert "sample_ratio_mismatch" in codes(result, Severity.ERROR)
    assert result.decision.action is Action.PAUSE
    assert result.decision.rule == "pause.sample_ratio"


def test_an_expected_unequal_split_is_not_a_mismatch() -> None:
    log = conversation_log((("control", 300, 0.5), (TREATMENT, 200, 0.5)))
    result = audit(log, AuditOptions(expected={"control": 0.6, TREATMENT: 0.4}))
    assert result.sample_ratio is not None and result.sample_ratio.p_value == pytest.approx(1.0)
    assert "sample_ratio_mismatch" not in codes(result)


def test_a_variant_outside_the_expected_split_is_named() -> None:
    log = conversation_log().expose("c-x", "rogue")
    result = audit(log, AuditOptions(expected={"control": 1, TREATMENT: 1}))
    assert "unexpected_variant" in codes(result, Severity.ERROR)
    assert result.sample_ratio is not None and result.sample_ratio.p_value == 0.0


def test_too_few_units_make_the_sample_ratio_test_unreliable_and_not_decisive() -> None:
    result = audit(conversation_log((("control", 6, 0.5), (TREATMENT, 1, 0.5))))
    assert result.sample_ratio is not None and not result.sample_ratio.reliable
    assert result.decision.action is not Action.PAUSE


def test_a_unit_changed_mid_run_is_named_and_calls_for_a_redesign() -> None:
    log = conversation_log()
    for i in range(5):
        log.expose(f"u-{i}", "control", unit="user")
    result = audit(log)
    assert result.unit_changed and result.assignment_units == {"conversation": 200, "user": 5}
    assert "unit_changed" in codes(result, Severity.ERROR)
    assert result.decision.rule == "redesign.unit_changed"


def test_a_new_unit_in_a_new_run_is_two_clean_runs() -> None:
    log = conversation_log(run_id="r1")
    other = EventLogBuilder(unit="user", run_id="r2")
    for i in range(10):
        other.expose(f"u-{i}", ARMS[i % 2])
    report = audit_records(log.extend(other).records, DECIDING)
    assert [(a.run_id, a.assignment_unit, a.unit_changed) for a in report.experiments] == [
        ("r1", "conversation", False),
        ("r2", "user", False),
    ]
    assert not report.mixes_experiments


def test_a_unit_changed_guardrail_calls_for_a_redesign() -> None:
    log = conversation_log().guardrail("unit_changed", experimentKey=SUPPORT)
    assert audit(log).decision.rule == "redesign.unit_changed"


def test_joins_need_the_same_unit_and_variant() -> None:
    log = EventLogBuilder().expose("c-1", "control").expose("c-2", TREATMENT)
    log.outcome("c-1", "resolved", 1.0, "control")
    log.outcome("c-1", "resolved", 1.0, TREATMENT)
    log.outcome("c-2", "resolved", 0.0, None)
    log.outcome("c-3", "resolved", 1.0, "control")
    log.outcome(None, "resolved", 1.0, "control")
    join = audit(log).join
    assert (join.outcomes, join.joined, join.variant_inferred) == (5, 2, 1)
    assert (join.variant_mismatch, join.no_exposure, join.no_unit_id) == (1, 1, 1)


def test_a_low_join_rate_is_named_and_pauses() -> None:
    log = conversation_log((("control", 20, 0.5), (TREATMENT, 20, 0.5)), turns=0)
    for i in range(5):
        log.outcome(f"c-gone-{i}", "resolved", 1.0, "control")
    result = audit(log)
    assert result.join.rate == pytest.approx(40 / 45)
    assert "low_join_rate" in codes(result, Severity.ERROR)
    assert result.decision.rule == "pause.join_rate"


def test_guardrails_are_counted_by_name_and_attributed_by_experiment_or_flag() -> None:
    log = conversation_log()
    log.guardrail("fallback_used", flagKey=SUPPORT).guardrail("fallback_used", flagKey=SUPPORT)
    log.guardrail("missing_unit_id", experimentKey=SUPPORT, flagKey=SUPPORT)
    log.guardrail("sink_failed")
    report = audit_records(log.records, DECIDING)
    [result] = report.experiments
    assert result.guardrails == {"fallback_used": 2, "missing_unit_id": 1}
    assert result.fallbacks == 2
    assert {"guardrail_events", "fallbacks"} <= codes(result, Severity.WARNING)
    assert report.unattributed_guardrails == {"sink_failed": 1}


def test_an_experiment_known_only_from_guardrails_is_audited_as_having_no_exposures() -> None:
    log = EventLogBuilder().guardrail("missing_unit_id", experimentKey="refused-exp")
    result = audit(log)
    assert result.experiment_key == "refused-exp" and result.guardrails == {"missing_unit_id": 1}
    assert "no_exposures" in codes(result)


def test_a_log_mixing_experiments_audits_each_and_says_so() -> None:
    log = conversation_log().extend(conversation_log(experiment="writing-style"))
    report = audit_records(log.records, DECIDING)
    assert report.mixes_experiments
    assert report.log_experiment_keys == (SUPPORT, "writing-style")
    assert [a.experiment_key for a in report.experiments] == [SUPPORT, "writing-style"]
    assert "mixes 2 experiments" in render_table(report)


def test_selecting_one_experiment_of_a_mixed_log() -> None:
    log = conversation_log().extend(conversation_log(experiment="writing-style"))
    report = audit_records(log.records, AuditOptions(experiment="writing-style"))
    assert [a.experiment_key for a in report.experiments] == ["writing-style"]
    assert report.mixes_experiments
    with pytest.raises(ExperimentNotFoundError, match="the log holds: support-retrieval-test"):
        audit_records(log.records, AuditOptions(experiment="nope"))


def test_records_without_an_experiment_or_event_kind_are_counted_not_audited() -> None:
    log = conversation_log(turns=0)
    log.add({"event": "experiment_outcome", "metric": "resolved", "value": 1, "unitId": "c-1"})
    log.add({"event": "page_view"}).add({"hello": "world"})
    report: AuditReport = audit_records(log.records)
    assert report.unattributed_outcomes == 1
    assert report.ignored == {"page_view": 1, "(no event field)": 1}


def test_repeated_outcomes_of_one_unit_are_averaged_into_one_sample() -> None:
    result = audit(conversation_log((("control", 10, 0.5), (TREATMENT, 10, 0.5)), turns=4))
    [latency] = [m for m in result.metrics if m.metric == "latency_ms"]
    assert latency.kind == "mean" and [v.units for v in latency.variants] == [10, 10]


def test_a_metric_tracked_only_on_success_is_a_conversion_over_exposed_units() -> None:
    log = conversation_log((("control", 40, 0.0), (TREATMENT, 40, 0.0)), turns=0)
    for i in range(10):
        log.outcome(f"c-control-{i}", "booked", 1.0, "control")
    for i in range(30):
        log.outcome(f"c-{TREATMENT}-{i}", "booked", 1.0, TREATMENT)
    result = audit(log, AuditOptions(primary_metric="booked"))
    [booked] = [m for m in result.metrics if m.metric == "booked"]
    assert booked.kind == "conversion"
    assert [(v.units, v.estimate) for v in booked.variants] == [(40, 0.25), (40, 0.75)]
    assert result.decision.action is Action.SHIP


def test_a_primary_metric_clearly_better_gives_ship_with_its_interval() -> None:
    # 400 per arm: the always-valid interval, split over two deciding metrics, needs more
    # units than a single fixed-horizon look to call the same 15 points.
    log = conversation_log((("control", 400, 0.6), (TREATMENT, 400, 0.75)))
    result = audit(log)
    [resolved] = [m for m in result.metrics if m.metric == "resolved"]
    [effect] = resolved.effects
    assert resolved.role == "primary" and resolved.kind == "binary"
    assert effect.difference == pytest.approx(0.15) and effect.verdict == "better"
    assert result.decision.action is Action.SHIP
    assert result.decision.rule == "ship.primary_better"
    assert "+15.0 pts" in result.decision.reason


def test_a_guardrail_metric_clearly_worse_gives_roll_back() -> None:
    log = conversation_log(
        (("control", 200, 0.6), (TREATMENT, 200, 0.75)), latency_shift={TREATMENT: 40.0}
    )
    result = audit(log)
    [latency] = [m for m in result.metrics if m.metric == "latency_ms"]
    assert latency.role == "guardrail" and latency.effects[0].verdict == "worse"
    assert result.decision.action is Action.ROLL_BACK
    assert "latency_ms" in result.decision.reason


def test_a_primary_metric_clearly_worse_gives_roll_back() -> None:
    result = audit(conversation_log((("control", 200, 0.75), (TREATMENT, 200, 0.5))))
    assert result.decision.rule == "roll_back.metric_worse"


def test_opposite_effects_in_two_segments_give_segment() -> None:
    log = EventLogBuilder()
    for plan, rates in (("free", (0.3, 0.8)), ("pro", (0.8, 0.3))):
        for variant, rate in zip(ARMS, rates, strict=True):
            for i in range(100):
                unit = f"c-{plan}-{variant}-{i}"
                log.expose(unit, variant)
                value = 1.0 if i < rate * 100 else 0.0
                log.outcome(unit, "resolved", value, variant, attributes={"plan": plan})
    result = audit(log, AuditOptions(primary_metric="resolved", segment_by="plan"))
    assert {(s.segment, s.effect.verdict) for s in result.segments} == {
        ("free", "better"),
        ("pro", "worse"),
    }
    assert result.decision.action is Action.SEGMENT


def test_without_a_primary_metric_the_hint_never_says_ship() -> None:
    log = conversation_log((("control", 200, 0.6), (TREATMENT, 200, 0.75)))
    assert audit(log, AuditOptions()).decision.rule == "continue.no_primary_metric"


def test_without_a_control_variant_there_are_no_effects() -> None:
    log = EventLogBuilder()
    for i in range(20):
        variant = ("a", "b")[i % 2]
        log.expose(f"c-{i}", variant).outcome(f"c-{i}", "resolved", 1.0 * (i % 3 == 0), variant)
    result = audit(log)
    assert result.control is None and all(m.effects == () for m in result.metrics)
    assert "no_control" in codes(result, Severity.INFO)
    named = audit(log, AuditOptions(primary_metric="resolved", control="a"))
    assert named.control == "a" and named.metrics[0].effects[0].variant == "b"


def test_the_table_names_every_planted_defect() -> None:
    log = conversation_log((("control", 300, 0.6), (TREATMENT, 200, 0.6)))
    log.expose("c-control-0", TREATMENT)
    for i in range(5):
        log.outcome(f"u-c-control-{i}", "resolved", 1.0, "control", metric_unit="user")
    for i in range(3):
        log.expose(f"u-{i}", "control", unit="user")
    result = audit(log)
    assert {
        "mixed_variants",
        "outcomes_keyed_at_other_unit",
        "metric_unit_mismatch",
        "sample_ratio_mismatch",
        "unit_changed",
    } <= codes(result)
    table = render_table(audit_records(log.records, DECIDING))
    for text in (
        "units with mixed variants: 1 of",
        "keyed by user ID (5)",
        "resolved per user (5)",
        "MISMATCH",
        "unit changed mid-run: YES",
        "REDESIGN",
    ):
        assert text in table


def test_the_control_variant_is_listed_first() -> None:
    log = EventLogBuilder()
    for i in range(20):
        variant = ("a", "b")[i % 2]
        log.expose(f"c-{i}", variant).outcome(f"c-{i}", "resolved", 1.0 * (i % 3 == 0), variant)
    result = audit(log, AuditOptions(primary_metric="resolved", control="b"))
    assert [e.variant for e in result.exposures] == ["b", "a"]
    assert [v.variant for v in result.metrics[0].variants] == ["b", "a"]


def test_a_mean_metric_reads_per_unit_means_with_a_normal_interval() -> None:
    log = EventLogBuilder()
    for i, latency in enumerate((100.0, 200.0, 300.0)):
        log.expose(f"c-{i}", "control")
        log.outcome(f"c-{i}", "latency_ms", latency - 50, "control")
        log.outcome(f"c-{i}", "latency_ms", latency + 50, "control")
    result = audit(log)
    [latency] = result.metrics
    [control] = latency.variants
    assert latency.kind == "mean" and control.units == 3 and control.estimate == 200.0
    assert control.interval is not None
    assert control.interval.high == pytest.approx(200 + 1.959963984540054 * 100 / 3**0.5)
