"""Reading an event log: malformed lines are reported with their line number and skipped, the
rest is still read; a missing file is a clear error before anything is read."""

from __future__ import annotations

from pathlib import Path

import pytest

from featbit_experiments.audit import EventLog, EventLogError, audit_file
from tests.support.event_logs import ARMS, EventLogBuilder, conversation_log


def test_malformed_lines_are_reported_by_number_and_the_rest_is_read(tmp_path: Path) -> None:
    log = EventLogBuilder().expose("c-1", "control")
    log.raw('{"event": "experiment_exposure", "unitId": ').raw("[1, 2]").raw('"text"')
    log.expose("c-2", ARMS[1])
    events = EventLog(log.write(tmp_path / "events.jsonl"))
    read = [number for number, _ in events]
    assert read == [1, 5]
    assert [(bad.line, bad.reason.split(" (")[0]) for bad in events.malformed] == [
        (2, "not valid JSON"),
        (3, "a JSON array, not an object"),
        (4, "a JSON string, not an object"),
    ]
    assert events.malformed_count == 3 and events.lines == 5


def test_blank_lines_are_skipped_silently(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text('{"event": "x"}\n\n   \n{"event": "y"}\n', encoding="utf-8")
    events = EventLog(path)
    assert [number for number, _ in events] == [1, 4]
    assert events.malformed_count == 0


def test_a_line_that_is_not_utf8_is_malformed(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_bytes(b'{"event": "x"}\n\xff\xfe{}\n{"event": "y"}\n')
    events = EventLog(path)
    assert len(list(events)) == 2
    assert [(bad.line, bad.reason) for bad in events.malformed] == [(2, "not UTF-8 text")]


def test_only_the_first_malformed_lines_are_kept_but_all_are_counted(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text("oops\n" * 30, encoding="utf-8")
    events = EventLog(path, keep_malformed=5)
    assert list(events) == []
    assert len(events.malformed) == 5 and events.malformed_count == 30


def test_a_missing_file_is_an_error_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "nope.jsonl"
    with pytest.raises(EventLogError, match=r"nope\.jsonl: no such file"):
        EventLog(missing)
    with pytest.raises(EventLogError, match="not a regular file"):
        audit_file(tmp_path)


def test_the_audit_reports_malformed_lines_and_still_audits_the_rest(tmp_path: Path) -> None:
    log = conversation_log((("control", 20, 0.5), (ARMS[1], 20, 0.5)))
    log.lines.insert(10, "{broken")
    report = audit_file(log.write(tmp_path / "events.jsonl"))
    assert [(bad.line, bad.reason.startswith("not valid JSON")) for bad in report.malformed] == [
        (11, True)
    ]
    [audit] = report.experiments
    assert audit.exposed_units == 40
