"""The ``featbit-experiments audit`` command: through ``main(argv)`` and as a real process.
Exit code 0 whenever the audit ran (findings included), 2 for usage errors and missing files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from featbit_experiments.cli import main
from tests.support.event_logs import ARMS, SUPPORT, conversation_log

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = Path(sys.executable).parent / "featbit-experiments"


@pytest.fixture
def planted(tmp_path: Path) -> Path:
    """A log with a sample-ratio mismatch, one mixed conversation and a malformed line."""
    log = conversation_log((("control", 300, 0.6), (ARMS[1], 200, 0.6)))
    log.expose("c-control-0", ARMS[1])
    log.lines.insert(3, "{oops")
    return log.write(tmp_path / "events.jsonl")


@pytest.fixture
def clean(tmp_path: Path) -> Path:
    return conversation_log().write(tmp_path / "clean.jsonl")


def run_module(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "featbit_experiments.cli", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )


def test_main_prints_the_table_and_exits_zero_on_a_clean_log(
    clean: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["audit", str(clean), "--primary-metric", "resolved"]) == 0
    out = capsys.readouterr().out
    assert "units with mixed variants: 0 of 200 (0.0%)" in out
    assert "join: 600/600 outcomes join an exposure on unit and variant (100.0%)" in out
    assert "Decision hint: CONTINUE" in out


def test_findings_still_exit_zero_and_malformed_lines_go_to_stderr(
    planted: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["audit", str(planted)]) == 0
    captured = capsys.readouterr()
    assert f"{planted}:4: malformed line skipped: not valid JSON" in captured.err
    assert "sample_ratio_mismatch" in captured.out and "mixed_variants" in captured.out


def test_json_output_is_one_parseable_document(
    planted: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["audit", str(planted), "--json", "--primary-metric", "resolved"]) == 0
    data = json.loads(capsys.readouterr().out)
    [experiment] = data["experiments"]
    assert experiment["experiment_key"] == SUPPORT
    assert experiment["decision"] == {
        "action": "pause",
        "rule": "pause.sample_ratio",
        "reason": experiment["decision"]["reason"],
        "label": "pause",
    }
    assert experiment["mixed"]["units"] == 1 and experiment["join"]["rate"] == 1.0
    assert data["malformed"] == [
        {"line": 4, "reason": data["malformed"][0]["reason"], "file": str(planted)}
    ]
    assert {f["code"] for f in experiment["findings"]} >= {"sample_ratio_mismatch"}


def test_html_page_has_an_inline_svg_chart_and_no_script(
    planted: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    page = tmp_path / "audit.html"
    assert main(["audit", str(planted), "--html", str(page)]) == 0
    html = page.read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>") and "<svg" in html and "<rect" in html
    assert "<script" not in html and "http://" not in html.replace("http://www.w3.org", "")
    assert "sample_ratio_mismatch" in html
    assert f"wrote {page}" in capsys.readouterr().err


def test_text_from_the_log_is_escaped_in_html(tmp_path: Path) -> None:
    log = conversation_log((("<b>control</b>", 10, 0.5), ("<script>x</script>", 10, 0.5)))
    page = tmp_path / "audit.html"
    assert main(["audit", str(log.write(tmp_path / "e.jsonl")), "--html", str(page)]) == 0
    html = page.read_text(encoding="utf-8")
    assert "<script>" not in html and "&lt;script&gt;" in html


def test_a_missing_file_exits_two_with_a_clear_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["audit", str(tmp_path / "missing.jsonl")]) == 2
    assert "missing.jsonl: no such file" in capsys.readouterr().err


def test_usage_errors_exit_two(clean: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert main(["audit", str(clean), "--expected", "control=half"]) == 2
    assert main(["audit", str(clean), "--primary-metric", "resolved:sideways"]) == 2
    assert main(["audit", str(clean), "--confidence", "95"]) == 2
    assert "is not a number" in capsys.readouterr().err


def test_an_unknown_experiment_exits_two_listing_the_known_ones(
    clean: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["audit", str(clean), "--experiment", "nope"]) == 2
    assert f"the log holds: {SUPPORT}" in capsys.readouterr().err


def test_a_mixed_log_is_audited_per_experiment_with_a_note(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = conversation_log().extend(conversation_log(experiment="writing-style"))
    path = log.write(tmp_path / "mixed.jsonl")
    assert main(["audit", str(path)]) == 0
    captured = capsys.readouterr()
    assert "mixes 2 experiments (support-retrieval-test, writing-style)" in captured.err
    assert f"== {SUPPORT}" in captured.out and "== writing-style" in captured.out
    assert main(["audit", str(path), "--experiment", "writing-style"]) == 0
    out = capsys.readouterr().out
    assert "== writing-style" in out and f"== {SUPPORT}" not in out


def test_expected_split_and_control_options_reach_the_audit(
    planted: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["audit", str(planted), "--json", "--expected", f"control=0.6,{ARMS[1]}=0.4"]
    assert main([*args, "--control", "control"]) == 0
    [experiment] = json.loads(capsys.readouterr().out)["experiments"]
    assert experiment["sample_ratio"]["p_value"] > 0.5
    assert experiment["control"] == "control"


def test_the_module_runs_as_a_process(planted: Path) -> None:
    result = run_module("audit", str(planted), "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["experiments"][0]["mixed"]["units"] == 1
    assert "malformed line skipped" in result.stderr


def test_the_process_exits_two_for_a_missing_file(tmp_path: Path) -> None:
    result = run_module("audit", str(tmp_path / "missing.jsonl"))
    assert result.returncode == 2
    assert "no such file" in result.stderr and result.stdout == ""


@pytest.mark.skipif(not SCRIPT.exists(), reason="console script not installed in this venv")
def test_the_installed_console_script_runs_the_audit(clean: Path) -> None:
    result = subprocess.run(
        [str(SCRIPT), "audit", str(clean)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "join: 600/600" in result.stdout
