"""``featbit-experiments preflight``: the three examples pass cleanly with their MDE tables;
planted problems fail CI through the exit code (warnings only when asked); JSON for machines;
unreadable inputs are usage errors; policies come from files or code."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from featbit_experiments import Experiment, Metric, RollbackMode, UnitPolicy
from featbit_experiments.cli import main
from tests.support import flags as fl

DATA = Path(__file__).resolve().parent.parent / "examples" / "data"
EXAMPLES = ["--policy", str(DATA / "policy.toml"), "--flags", str(DATA / "flags.json")]
PLAN = ["--plan", str(DATA / "preflight.toml")]
EXAMPLE_FLAGS = ("support-retrieval-test", "writing-assistant-style-test", "b2b-model-route-test")

#: A policy in code, for ``--policy tests.test_preflight_cli:CODE_POLICY``.
CODE_POLICY = UnitPolicy(
    [Experiment("support-retrieval-test", "conversation", rollback=RollbackMode.CONTAIN)],
    [Metric("resolved", "conversation", ("support-retrieval-test",))],
)


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["preflight", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_the_examples_pass_cleanly_with_their_mde_tables(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = run(capsys, *EXAMPLES, *PLAN, "--fail-on-warnings")
    assert code == 0
    assert "0 error(s), 0 warning(s)" in out
    assert out.count("How long it will take:") == 3
    for flag_key in EXAMPLE_FLAGS:
        assert f"{flag_key}: randomizes by" in out
    assert "fewer units and slower learning" in out  # the B2B account experiment


def test_the_examples_pass_without_a_plan_too(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, *EXAMPLES, "--fail-on-warnings")
    assert code == 0 and "0 error(s), 0 warning(s)" in out


def test_json_output_carries_every_finding_and_the_horizon(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = run(capsys, *EXAMPLES, *PLAN, "--json")
    report = json.loads(out)
    assert code == 0 and report["errors"] == 0 and report["warnings"] == 0
    by_flag = {e["flagKey"]: e for e in report["experiments"]}
    assert set(by_flag) == set(EXAMPLE_FLAGS)
    b2b = by_flag["b2b-model-route-test"]["duration"]
    support = by_flag["support-retrieval-test"]["duration"]
    assert [row["day"] for row in b2b["horizon"]] == [7, 14, 28]
    # the account experiment learns far slower than the conversation one
    assert b2b["horizon"][-1]["mdeRelative"] > 3 * support["horizon"][-1]["mdeRelative"]
    assert all(
        {"severity", "rule", "message"} == set(f)
        for f in b2b and by_flag["b2b-model-route-test"]["findings"]
    )


def test_several_instances_on_the_in_memory_ledger_fail_ci(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = run(capsys, *EXAMPLES, *PLAN, "--instances", "3")
    assert code == 1
    assert "error    continuity.ledger_shared" in out


def test_warnings_fail_ci_only_when_asked(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    plan = tmp_path / "plan.toml"
    plan.write_text('[experiments.support-retrieval-test]\nprimary_metric = "csat"\n')
    args = [*EXAMPLES, "--plan", str(plan)]
    assert run(capsys, *args)[0] == 0
    code, out, _ = run(capsys, *args, "--fail-on-warnings")
    assert code == 1 and "metrics.unit_declared" in out


def test_a_policy_in_code_is_read_by_module_and_name(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    flags = tmp_path / "flags.json"
    flags.write_text(fl.bootstrap_json([fl.flag("support-retrieval-test", ["a", "b"])]))
    code, out, _ = run(
        capsys, "--policy", "tests.test_preflight_cli:CODE_POLICY", "--flags", str(flags), "--json"
    )
    (experiment,) = json.loads(out)["experiments"]
    assert code == 0
    assert (experiment["unit"], experiment["declaredIn"]) == ("conversation", ["code"])


def test_a_policy_that_does_not_load_is_an_error_with_its_rule(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text('[experiments.support-retrieval-test]\nunit = "galaxy"\n')
    code, out, _ = run(capsys, "--policy", str(policy), "--flags", str(DATA / "flags.json"))
    assert code == 1 and "error    policy.loads" in out and "galaxy" in out


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--policy", "missing.toml", "--flags", str(DATA / "flags.json")], "missing.toml"),
        (["--policy", str(DATA / "policy.toml"), "--flags", "nope.json"], "nope.json"),
        ([*EXAMPLES, "--plan", "plan-missing.toml"], "plan-missing.toml"),
        ([*EXAMPLES, "--events", "pilot-missing.jsonl"], "pilot-missing.jsonl"),
        (["--streaming-url", "ws://127.0.0.1:9"], "FEATBIT_ENV_SECRET"),
    ],
)
def test_unreadable_inputs_are_usage_errors_naming_them(
    capsys: pytest.CaptureFixture[str], args: list[str], named: str
) -> None:
    code, _, err = run(capsys, *args)
    assert code == 2 and named in err


def test_control_characters_in_flag_keys_do_not_reach_the_terminal(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    flags = tmp_path / "flags.json"
    hostile = "evil\x1b[2Jflag"
    flags.write_text(fl.bootstrap_json([fl.flag(hostile, ["a", "b"], tags=["unit:conversation"])]))
    code, out, _ = run(capsys, "--flags", str(flags))
    assert code == 1  # declared only by a tag: no rollback planned
    assert "\x1b" not in out and "evil?[2Jflag" in out
