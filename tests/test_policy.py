"""Experiment declarations from code, a TOML file and FeatBit tags, and their conflicts."""

from __future__ import annotations

from pathlib import Path

import pytest

from featbit_experiments import Experiment, Metric, PolicyError, RollbackMode, Unit, UnitPolicy
from featbit_experiments.policy import Declaration, MetricDirection, Refusal
from featbit_experiments.policy_file import load_policy

POLICY_TOML = """
[settings]
strict_metrics = true

[units.ticket]
attribute = "ticketId"
aliases = ["ticket_id"]

[experiments.support-retrieval-test]
unit = "conversation"
rollback = "contain"
run_id = "r2"
variants = { "v-b" = "retrieval_profile_b" }

[metrics.resolved]
unit = "conversation"
experiments = ["support-retrieval-test"]
"""


def write(tmp_path: Path, text: str, name: str = "policy.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_policy_file_declares_experiments_metrics_and_units(tmp_path: Path) -> None:
    policy = load_policy(write(tmp_path, POLICY_TOML))
    experiment = policy.experiments["support-retrieval-test"]
    assert experiment.unit == "conversation"
    assert experiment.rollback is RollbackMode.CONTAIN
    assert experiment.run_id == "r2"
    assert experiment.variant_names["v-b"] == "retrieval_profile_b"
    assert policy.metrics["resolved"].experiments == ("support-retrieval-test",)
    assert policy.strict_metrics is True
    assert policy.units["ticket"].aliases == ("ticket_id",)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "is empty"),
        ("[experiments.x\nunit=", "not valid TOML"),
        ("[experiments.x]\nrollback='finish_active'\n", "'unit' is required"),
        ("[experiments.x]\nunit='galaxy'\n", "unknown unit 'galaxy'"),
        ("[experiments.x]\nunit='user'\nrollback='panic'\n", "rollback must be"),
        ("[experiments.x]\nunit='user'\ncolour='red'\n", "unknown field(s) colour"),
        ("[experiments.x]\nunit='request'\n", "user-facing and randomizes by request"),
        ("[settings]\nstrict_metrics='yes'\n", "must be true or false"),
        ("[settings]\nstrict_metrics=true\n", "declares no experiments"),
        ("[surprise]\nx=1\n", "unknown top-level tables"),
    ],
)
def test_broken_policy_file_names_the_file_and_the_problem(
    tmp_path: Path, text: str, expected: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(PolicyError) as raised:
        load_policy(path)
    assert str(path) in str(raised.value)
    assert expected in str(raised.value)


def test_missing_policy_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="policy file not found"):
        load_policy(tmp_path / "nope.toml")


def test_request_unit_is_allowed_when_declared_independent() -> None:
    policy = UnitPolicy([Experiment("rank", "request", user_facing=False)])
    assert policy.experiments["rank"].unit == "request"
    policy = UnitPolicy([Experiment("rank", "request", allow_request_unit=True)])
    assert policy.experiments["rank"].allow_request_unit


def test_code_and_file_that_disagree_on_the_unit_refuse_to_combine(tmp_path: Path) -> None:
    from_file = load_policy(write(tmp_path, POLICY_TOML))
    from_code = UnitPolicy([Experiment("support-retrieval-test", "user")])
    with pytest.raises(PolicyError, match="disagree"):
        from_code.combine(from_file)


def test_code_and_file_that_agree_combine() -> None:
    a = UnitPolicy([Experiment("a", "user")], [Metric("m", "user")])
    b = UnitPolicy([Experiment("b", "conversation")], units=[Unit("ticket", "ticketId")])
    combined = a.combine(b)
    assert set(combined.experiments) == {"a", "b"}
    assert "ticket" in combined.units and "m" in combined.metrics


def test_tag_declares_an_experiment_when_code_is_silent() -> None:
    declaration = UnitPolicy().declaration_for("f", ["team:ai", "unit:account"])
    assert isinstance(declaration, Declaration)
    assert declaration.unit.name == "account"
    assert declaration.source == "featbit tag"


def test_tag_that_disagrees_with_code_is_refused() -> None:
    policy = UnitPolicy([Experiment("f", "conversation")])
    refusal = policy.declaration_for("f", ["unit:user"])
    assert isinstance(refusal, Refusal)
    assert refusal.guardrail == "unit_conflict"
    assert "conversation" in refusal.message and "user" in refusal.message


def test_two_unit_tags_are_refused() -> None:
    refusal = UnitPolicy().declaration_for("f", ["unit:user", "unit:conversation"])
    assert isinstance(refusal, Refusal)


def test_request_unit_tag_on_a_user_facing_flag_is_refused() -> None:
    refusal = UnitPolicy().declaration_for("f", ["unit:request"])
    assert isinstance(refusal, Refusal)
    assert refusal.guardrail == "request_unit_refused"


def test_untagged_undeclared_flag_is_ordinary() -> None:
    assert UnitPolicy().declaration_for("f", ["team:ai"]) is None


def test_tags_can_be_ignored() -> None:
    assert UnitPolicy(read_tags=False).declaration_for("f", ["unit:user"]) is None



ROLLBACK_CONTAIN_TOML = '[experiments.checkout]\nunit = "conversation"\nrollback = "contain"\n'


def test_a_declaration_silent_on_rollback_agrees_with_one_that_declares_it(tmp_path: Path) -> None:
    from_file = load_policy(write(tmp_path, ROLLBACK_CONTAIN_TOML))
    combined = UnitPolicy([Experiment("checkout", "conversation")]).combine(from_file)
    assert combined.experiments["checkout"].rollback is RollbackMode.CONTAIN


def test_declarations_with_different_rollback_modes_disagree(tmp_path: Path) -> None:
    from_file = load_policy(write(tmp_path, ROLLBACK_CONTAIN_TOML))
    from_code = UnitPolicy(
        [Experiment("checkout", "conversation", rollback=RollbackMode.FINISH_ACTIVE)]
    )
    with pytest.raises(PolicyError, match="declared differently"):
        from_code.combine(from_file)


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: Experiment("", "user"), "an experiment needs a flag key"),
        (lambda: Experiment("flag-a", ""), "experiment 'flag-a' needs a unit"),
        (lambda: Metric("", "user"), "a metric needs a name"),
        (lambda: Metric("resolved", ""), "metric 'resolved' needs a unit"),
        (
            lambda: UnitPolicy([Experiment("flag-a", "ticket")]),
            "experiment 'flag-a' (code) declares unknown unit 'ticket'; known units: "
            "request, conversation, user, account, workflow",
        ),
        (
            lambda: UnitPolicy(metrics=[Metric("resolved", "ticket")]),
            "metric 'resolved' (code) declares unknown unit 'ticket'",
        ),
        (
            lambda: UnitPolicy(metrics=[Metric("resolved", "user"), Metric("resolved", "account")]),
            "metric 'resolved' is declared twice and they disagree",
        ),
        (
            lambda: UnitPolicy(units=[Unit("ticket", "ticketId")]).combine(
                UnitPolicy(units=[Unit("ticket", "ticket_id")])
            ),
            "unit 'ticket' is defined differently in two sources",
        ),
        (
            lambda: UnitPolicy([Experiment("flag-a", "request")]),
            "experiment 'flag-a' is user-facing and randomizes by request; declare it "
            "user_facing=False or allow_request_unit=True if requests are truly independent "
            "(code)",
        ),
    ],
)
def test_a_declaration_error_says_what_is_wrong(build: object, message: str) -> None:
    with pytest.raises(PolicyError) as raised:
        build()  # type: ignore[operator]
    assert str(raised.value) == message


def test_declared_values_are_normalized_and_detached_from_the_caller() -> None:
    names = {"v-a": "control"}
    experiment = Experiment("flag-a", "user", rollback="contain", variant_names=names)  # type: ignore[arg-type]
    names["v-b"] = "treatment"
    assert isinstance(experiment.rollback, RollbackMode)
    assert experiment.rollback is RollbackMode.CONTAIN
    assert dict(experiment.variant_names) == {"v-a": "control"}
    with pytest.raises(TypeError):
        experiment.variant_names["v-c"] = "other"  # type: ignore[index]
    metric = Metric("latency", "user", ["flag-a"], "lower_is_better")  # type: ignore[arg-type]
    assert metric.experiments == ("flag-a",)
    assert isinstance(metric.direction, MetricDirection)
    assert hash(metric) == hash(
        Metric("latency", "user", ("flag-a",), MetricDirection.LOWER_IS_BETTER)
    )


def test_a_second_declaration_that_leaves_rollback_unsaid_keeps_the_declared_mode() -> None:
    policy = UnitPolicy(
        [Experiment("flag-a", "user", rollback=RollbackMode.CONTAIN), Experiment("flag-a", "user")]
    )
    assert policy.experiments["flag-a"].rollback is RollbackMode.CONTAIN


def test_the_same_metric_declared_twice_is_one_metric() -> None:
    policy = UnitPolicy(metrics=[Metric("resolved", "user"), Metric("resolved", "user")])
    assert list(policy.metrics) == ["resolved"]


def test_a_declaration_names_the_source_it_came_from(tmp_path: Path) -> None:
    code = UnitPolicy([Experiment("flag-code", "user")])
    from_file = load_policy(write(tmp_path, '[experiments.flag-file]\nunit = "conversation"\n'))
    combined = code.combine(from_file)
    for policy in (code, combined):
        declaration = policy.declaration_for("flag-code", [])
        assert isinstance(declaration, Declaration) and declaration.source == "code"
    from_the_file = combined.declaration_for("flag-file", [])
    assert isinstance(from_the_file, Declaration)
    assert from_the_file.source == from_file.declaration_for("flag-file", []).source  # type: ignore[union-attr]
    assert from_the_file.source.endswith("policy.toml")
    tagged = code.declaration_for("flag-tagged", ["unit:account"])
    assert isinstance(tagged, Declaration) and tagged.source == "featbit tag"


def test_combining_keeps_the_stricter_settings() -> None:
    strict = UnitPolicy(strict_metrics=True, read_tags=False, targeting_key_unit=None)
    lenient = UnitPolicy()
    for combined in (strict.combine(lenient), lenient.combine(strict)):
        assert combined.strict_metrics is True
        assert combined.read_tags is False
        assert combined.declaration_for("flag-tagged", ["unit:user"]) is None
    assert strict.combine(lenient).units.targeting_key_unit is None
    assert lenient.combine(strict).units.targeting_key_unit == "user"
    both_lenient = lenient.combine(UnitPolicy())
    assert both_lenient.strict_metrics is False
    assert both_lenient.read_tags is True
    assert isinstance(both_lenient.declaration_for("flag-tagged", ["unit:user"]), Declaration)


def test_a_policy_can_leave_the_targeting_key_unbound() -> None:
    assert UnitPolicy(targeting_key_unit=None).units.targeting_key_unit is None


@pytest.mark.parametrize(
    ("declared", "tags", "expected"),
    [
        (
            [],
            ["unit:user", "unit:account"],
            Refusal("flag 'flag-a' has conflicting unit tags: account, user", "unit_conflict"),
        ),
        (
            [Experiment("flag-a", "conversation")],
            ["unit:user"],
            Refusal(
                "flag 'flag-a': code declares unit 'conversation' but its FeatBit tag says "
                "'user'; fix one of them (the experiment is refused until they agree)",
                "unit_conflict",
            ),
        ),
        (
            [],
            ["unit:ticket"],
            Refusal("flag 'flag-a' is tagged with unknown unit 'ticket'", "unit_conflict"),
        ),
        (
            [],
            ["unit:request"],
            Refusal(
                "experiment 'flag-a' is user-facing and randomizes by request; declare it "
                "user_facing=False or allow_request_unit=True if requests are truly independent",
                "request_unit_refused",
            ),
        ),
    ],
)
def test_a_refused_flag_says_why_and_names_its_guardrail(
    declared: list[Experiment], tags: list[str], expected: Refusal
) -> None:
    assert UnitPolicy(declared).declaration_for("flag-a", tags) == expected
