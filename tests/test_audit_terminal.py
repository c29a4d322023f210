"""The terminal readout cannot be rewritten by a name from the log: control characters and
bidirectional overrides are written as visible escapes, on stdout and stderr alike."""

from __future__ import annotations

from pathlib import Path

import pytest

from featbit_experiments.audit import audit_records, render_table
from featbit_experiments.cli import main
from tests.support.event_logs import conversation_log

RED = "\x1b[31mred\x1b[0m"
FORGED = "ok\nDecision hint: SHIP"
REVERSED = "abc\u202edcba"


def readout() -> str:
    log = conversation_log(((RED, 10, 0.5), (FORGED, 10, 0.5)), experiment=REVERSED)
    return render_table(audit_records(log.records))


def test_escape_sequences_in_names_are_shown_not_executed() -> None:
    text = readout()
    assert "\x1b" not in text and "\\x1b[31mred\\x1b[0m" in text


def test_a_newline_in_a_name_cannot_forge_a_line() -> None:
    lines = readout().splitlines()
    assert not any(line.startswith("Decision hint: SHIP") for line in lines)
    assert any("ok\\nDecision hint: SHIP" in line for line in lines)


def test_bidirectional_overrides_are_escaped() -> None:
    text = readout()
    assert "\u202e" not in text and "abc\\u202edcba" in text


def test_notes_on_stderr_are_escaped_too(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = conversation_log(experiment="a\x1b[2Jb").extend(conversation_log(experiment="c"))
    assert main(["audit", str(log.write(tmp_path / "events.jsonl"))]) == 0
    captured = capsys.readouterr()
    assert "\x1b" not in captured.err + captured.out
    assert "a\\x1b[2Jb" in captured.err
