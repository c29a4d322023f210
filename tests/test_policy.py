"""Experiment declarations from code, a TOML file and FeatBit tags, and their conflicts."""

from __future__ import annotations

from pathlib import Path

import pytest

from featbit_experiments import Experiment, Metric, PolicyError, RollbackMode, Unit, UnitPolicy
from featbit_experiments.policy import Declaration, Refusal
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
