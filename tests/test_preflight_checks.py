"""The preflight names each planted problem with the rule that produced it: one small policy
and flag set per problem, checked as the provider would see them (real FeatBit flag JSON, real
policy objects and files)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from featbit_experiments import Experiment, Metric, RollbackMode, UnitPolicy
from featbit_experiments.preflight import (
    ExperimentPlan,
    Finding,
    PreflightPlan,
    PreflightReport,
    Rule,
    Severity,
    check,
    preflight,
)
from tests.support import flags as fl

FLAG = "support-retrieval-test"
ARMS = ["control", "retrieval_profile_b"]


def conversation_flag(**options: Any) -> dict[str, Any]:
    options.setdefault("tags", ["unit:conversation"])
    return fl.flag(FLAG, ARMS, **options)


def policy(
    unit: str = "conversation",
    *metrics: Metric,
    rollback: RollbackMode | None = RollbackMode.FINISH_ACTIVE,
    **options: Any,
) -> UnitPolicy:
    strict = options.pop("strict_metrics", False)
    return UnitPolicy(
        [Experiment(FLAG, unit, rollback=rollback, **options)], metrics, strict_metrics=strict
    )


def resolved(unit: str = "conversation", **options: Any) -> Metric:
    return Metric("resolved", unit, (FLAG,), **options)


def lines(report: PreflightReport, rule: Rule, flag_key: str = FLAG) -> list[Finding]:
    return [f for f in report.experiment(flag_key).findings if f.rule is rule]


def severities(report: PreflightReport, rule: Rule) -> set[Severity]:
    return {f.severity for f in report.all_findings() if f.rule is rule}


def test_a_sound_plan_has_no_error_or_warning() -> None:
    report = check(
        policy("conversation", resolved(direction="higher_is_better")),
        [conversation_flag()],
        plan=PreflightPlan({FLAG: ExperimentPlan(primary_metric="resolved", branches=ARMS)}),
    )
    assert report.count(Severity.ERROR) == report.count(Severity.WARNING) == 0
    assert report.exit_code(fail_on_warnings=True) == 0


def test_a_tag_that_disagrees_with_the_policy_is_an_error_naming_both_units() -> None:
    report = check(policy("user", resolved("user")), [conversation_flag()])
    (line,) = lines(report, Rule.UNIT_DECLARATION)
    assert line.severity is Severity.ERROR
    assert "'user'" in line.message and "'conversation'" in line.message
    assert report.exit_code() == 1


def test_code_and_file_declaring_different_units_is_an_error(tmp_path: Path) -> None:
    file = tmp_path / "policy.toml"
    file.write_text(f'[experiments.{FLAG}]\nunit = "user"\nrollback = "contain"\n')
    report = preflight([policy("conversation"), file], [conversation_flag()])
    (line,) = report.findings
    assert (line.severity, line.rule) == (Severity.ERROR, Rule.POLICY_LOADS)
    assert "disagree" in line.message


def test_request_unit_on_a_user_facing_experiment_declared_by_tag_is_an_error() -> None:
    report = check(UnitPolicy(), [conversation_flag(tags=["unit:request"])])
    assert severities(report, Rule.REQUEST_UNIT_USER_FACING) == {Severity.ERROR}


def test_request_unit_on_a_user_facing_experiment_in_a_policy_file_is_an_error(
    tmp_path: Path,
) -> None:
    file = tmp_path / "policy.toml"
    file.write_text(f'[experiments.{FLAG}]\nunit = "request"\nrollback = "contain"\n')
    report = preflight(file, [conversation_flag(tags=[])])
    assert severities(report, Rule.REQUEST_UNIT_USER_FACING) == {Severity.ERROR}


def test_a_declared_experiment_missing_in_featbit_is_an_error() -> None:
    report = check(policy(), [fl.flag("other-flag", ARMS)])
    assert [f.severity for f in lines(report, Rule.FLAG_IN_FEATBIT)] == [Severity.ERROR]


def test_a_fallthrough_bucketing_on_another_attribute_is_an_error_naming_it() -> None:
    report = check(policy("conversation", resolved()), [conversation_flag(dispatch_key="userId")])
    (line,) = lines(report, Rule.DISPATCH_KEY)
    assert line.severity is Severity.ERROR
    assert "fallthrough buckets on 'userId'" in line.message


def test_a_rule_bucketing_on_another_attribute_is_an_error_naming_the_rule() -> None:
    split = fl.rollout({"support-retrieval-test-v0": 0.5, "support-retrieval-test-v1": 0.5})
    rule = fl.rule(
        [fl.condition("plan", "Equal", "pro")], split, dispatch_key="accountId", rule_id="pro"
    )
    report = check(policy("conversation", resolved()), [conversation_flag(rules=[rule])])
    (line,) = lines(report, Rule.DISPATCH_KEY)
    assert line.severity is Severity.ERROR and "rule 'pro' buckets on 'accountId'" in line.message


def test_a_flag_that_splits_nobody_yet_gets_a_note() -> None:
    report = check(policy("conversation", resolved()), [conversation_flag(serve=0)])
    assert severities(report, Rule.TRAFFIC_SPLIT) == {Severity.NOTE}


def test_individual_targeting_in_a_conversation_experiment_is_a_warning() -> None:
    target = {"keyIds": ["user-vip-1", "user-vip-2"], "variationId": "support-retrieval-test-v1"}
    report = check(policy("conversation", resolved()), [conversation_flag(targets=[target])])
    (line,) = lines(report, Rule.INDIVIDUAL_TARGETING)
    assert line.severity is Severity.WARNING
    assert "2 key(s)" in line.message and "userId" in line.message


def test_individual_targeting_in_a_user_experiment_is_fine() -> None:
    target = {"keyIds": ["user-vip-1"], "variationId": "support-retrieval-test-v1"}
    report = check(policy("user", resolved("user")), [conversation_flag(targets=[target], tags=[])])
    assert lines(report, Rule.INDIVIDUAL_TARGETING) == []


def test_a_served_variation_without_a_branch_is_a_warning() -> None:
    report = check(
        policy("conversation", resolved()),
        [fl.flag(FLAG, [*ARMS, "profile_c"], tags=["unit:conversation"])],
        plan=PreflightPlan({FLAG: ExperimentPlan(branches=ARMS)}),
    )
    (line,) = lines(report, Rule.VARIATIONS_MAPPED)
    assert line.severity is Severity.WARNING and "'profile_c'" in line.message


def test_a_served_variation_the_policy_variants_do_not_name_is_a_warning() -> None:
    named = {"support-retrieval-test-v0": "control"}
    report = check(policy("conversation", resolved(), variant_names=named), [conversation_flag()])
    (line,) = lines(report, Rule.VARIATIONS_MAPPED)
    assert "'support-retrieval-test-v1'" in line.message


def test_an_experiment_without_any_metric_is_a_warning() -> None:
    report = check(policy("conversation"), [conversation_flag()])
    assert severities(report, Rule.METRIC_FOR_EXPERIMENT) == {Severity.WARNING}


def test_a_user_experiment_measured_per_conversation_is_flagged_with_the_alternative() -> None:
    report = check(
        policy("user", resolved("conversation")),
        [conversation_flag(tags=["unit:user"])],
        plan=PreflightPlan({FLAG: ExperimentPlan(primary_metric="resolved")}),
    )
    (line,) = lines(report, Rule.METRIC_UNIT)
    assert line.severity is Severity.WARNING
    assert "randomize by conversation" in line.message


def test_a_conversation_experiment_measured_per_user_is_read_as_secondary() -> None:
    report = check(policy("conversation", resolved("user")), [conversation_flag()])
    (line,) = lines(report, Rule.METRIC_UNIT)
    assert line.severity is Severity.NOTE
    assert "secondary or longer-window readout" in line.message


def test_strict_metrics_make_a_unit_mismatch_an_error() -> None:
    report = check(
        policy("conversation", resolved("user"), strict_metrics=True), [conversation_flag()]
    )
    assert severities(report, Rule.METRIC_UNIT) == {Severity.ERROR}


def test_a_planned_metric_without_a_declared_unit_is_a_warning() -> None:
    report = check(
        policy("conversation", resolved()),
        [conversation_flag()],
        plan=PreflightPlan({FLAG: ExperimentPlan(primary_metric="csat")}),
    )
    (line,) = lines(report, Rule.METRIC_UNIT_DECLARED)
    assert line.severity is Severity.WARNING and "'csat'" in line.message


def test_a_guardrail_metric_without_a_direction_is_a_warning() -> None:
    latency = Metric("latency_ms", "conversation", (FLAG,))
    report = check(
        policy("conversation", resolved(), latency),
        [conversation_flag()],
        plan=PreflightPlan({FLAG: ExperimentPlan(guardrail_metrics=("latency_ms",))}),
    )
    (line,) = lines(report, Rule.GUARDRAIL_DIRECTION)
    assert line.severity is Severity.WARNING and "'latency_ms'" in line.message


def test_an_undeclared_rollback_is_an_error() -> None:
    report = check(policy("conversation", resolved(), rollback=None), [conversation_flag()])
    (line,) = lines(report, Rule.ROLLBACK_DECLARED)
    assert line.severity is Severity.ERROR
    assert "plan rollback before the experiment starts" in line.message


def test_an_experiment_declared_only_by_a_tag_has_no_rollback_and_is_told_where_to_declare_it() -> (
    None
):
    report = check(UnitPolicy(), [conversation_flag()])
    (line,) = lines(report, Rule.ROLLBACK_DECLARED)
    assert line.severity is Severity.ERROR and "only by a FeatBit tag" in line.message


def test_a_policy_file_without_rollback_leaves_it_undeclared(tmp_path: Path) -> None:
    file = tmp_path / "policy.toml"
    file.write_text(f'[experiments.{FLAG}]\nunit = "conversation"\n')
    report = preflight(file, [conversation_flag()])
    assert severities(report, Rule.ROLLBACK_DECLARED) == {Severity.ERROR}


def test_contain_on_a_user_experiment_gets_a_note_about_durable_behaviour() -> None:
    report = check(
        policy("user", resolved("user"), rollback=RollbackMode.CONTAIN),
        [conversation_flag(tags=["unit:user"])],
    )
    assert severities(report, Rule.CONTAIN_DURABLE) == {Severity.NOTE}
    assert report.exit_code() == 0


def test_contain_on_a_conversation_experiment_gets_no_durability_note() -> None:
    report = check(
        policy("conversation", resolved(), rollback=RollbackMode.CONTAIN), [conversation_flag()]
    )
    assert lines(report, Rule.CONTAIN_DURABLE) == []


def test_a_plan_for_an_experiment_nobody_declares_is_a_warning() -> None:
    report = check(
        policy("conversation", resolved()),
        [conversation_flag()],
        plan=PreflightPlan({"support-retreival-test": ExperimentPlan()}),
    )
    assert [(f.severity, f.rule) for f in report.findings if "retreival" in f.message] == [
        (Severity.WARNING, Rule.UNIT_DECLARATION)
    ]
