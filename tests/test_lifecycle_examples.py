"""``lifecycle`` on the examples: once the audit says ship for the support assistant's
retrieval test, it lists that flag with its branch and every outcome event's code location,
and the ordinary flag that has served one value to everyone since 2025; nothing else."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
from typing import Any

import pytest

from examples._settings import FLAGS, POLICY, REPOSITORY
from featbit_experiments.cli import main
from tests.support.event_logs import ARMS, conversation_log

SUPPORT_APP = REPOSITORY / "examples" / "support_assistant" / "app.py"
SUPPORT_ASSISTANT = REPOSITORY / "examples" / "support_assistant" / "assistant.py"


def run(*args: str | Path) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        code = main([*map(str, args)])
    return code, out.getvalue()


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], dict[str, Any]]:
    """The real audit's JSON for a support-retrieval-test log where profile b clearly wins,
    then lifecycle over the examples' code, flags and policy."""
    directory = tmp_path_factory.mktemp("lifecycle-examples")
    log = conversation_log((("control", 150, 0.45), (ARMS[1], 150, 0.8)))
    events = log.write(directory / "events.jsonl")
    code, audit_json = run("audit", events, "--primary-metric", "resolved", "--json")
    assert code == 0
    audit = directory / "audit.json"
    audit.write_text(audit_json, encoding="utf-8")
    status, out = run(
        "lifecycle", REPOSITORY / "examples", "--flags", FLAGS, "--policy", POLICY,
        "--audit", audit, "--as-of", "2026-01-01", "--json",
    )  # fmt: skip
    assert status == 1
    return {(i["kind"], i["flag_key"]): i for i in json.loads(out)["items"]}


def places(item: dict[str, Any], kind: str) -> set[tuple[str, int, str]]:
    return {
        (Path(r["path"]).as_posix().split("examples/")[-1], r["line"], r["key"])
        for r in item["references"]
        if r["kind"] == kind
    }


def line_of(path: Path, needle: str) -> int:
    lines = path.read_text(encoding="utf-8").splitlines()
    return next(n for n, line in enumerate(lines, 1) if needle in line)


def test_the_examples_list_exactly_the_shipped_experiment_and_the_constant_flag(report) -> None:
    assert set(report) == {
        ("decided", "support-retrieval-test"),
        ("one_variant", "assistant-temperature"),
    }


def test_the_shipped_experiment_lists_its_branch(report) -> None:
    decided = report[("decided", "support-retrieval-test")]
    branch = line_of(SUPPORT_ASSISTANT, "experiment_branch(FLAG")
    assert places(decided, "branch") == {
        ("support_assistant/assistant.py", branch, "support-retrieval-test")
    }


def test_the_shipped_experiment_lists_its_outcome_events(report) -> None:
    decided = report[("decided", "support-retrieval-test")]
    assert set(decided["event_names"]) >= {
        "resolved_without_escalation", "human_handoff", "turn_latency_ms",
    }  # fmt: skip
    tracked = places(decided, "track")
    assert ("support_assistant/app.py", line_of(SUPPORT_APP, "client.track(RESOLVED"),
            "resolved_without_escalation") in tracked  # fmt: skip
    assert {key for _, _, key in tracked} == {"resolved_without_escalation", "human_handoff"}
    constants = places(decided, "literal")
    assert ("support_assistant/app.py", line_of(SUPPORT_APP, "LATENCY = "),
            "turn_latency_ms") in constants  # fmt: skip
    assert ("_flags.py", line_of(REPOSITORY / "examples" / "_flags.py", '"support-retrieval-test"'),
            "support-retrieval-test") in constants  # fmt: skip


def test_the_constant_flag_is_named_with_its_value_and_definition(report) -> None:
    constant = report[("one_variant", "assistant-temperature")]
    assert "'low' to everyone" in constant["reason"]
    assert {kind for kind in (r["kind"] for r in constant["references"])} == {"literal"}
