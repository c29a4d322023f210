"""Reading an event log: malformed lines are reported with their file and line number and
skipped, the rest is still read; a missing file is a clear error before anything is read;
byte order marks and UTF-16/UTF-32 text lose no record; gzip, Parquet and globs of rotated
files are read as one log."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from featbit_experiments.audit import AuditReport, EventLogError, audit_file
from tests.support.event_logs import ARMS, EventLogBuilder, conversation_log


def read(path: Path | str | list[Path]) -> AuditReport:
    return audit_file(path)


def test_malformed_lines_are_reported_by_number_and_the_rest_is_read(tmp_path: Path) -> None:
    log = EventLogBuilder().expose("c-1", "control")
    log.raw('{"event": "experiment_exposure", "unitId": ').raw("[1, 2]").raw('"text"')
    log.expose("c-2", ARMS[1])
    report = read(log.write(tmp_path / "events.jsonl"))
    assert [(bad.line, bad.reason.split(" (")[0]) for bad in report.malformed] == [
        (2, "not valid JSON"),
        (3, "a JSON array, not an object"),
        (4, "a JSON string, not an object"),
    ]
    assert report.malformed_count == 3 and report.lines == 5
    assert report.experiments[0].exposed_units == 2


def test_blank_lines_are_skipped_silently_and_numbering_counts_them(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text('{"event": "x"}\n\n   \n{oops\n{"event": "y"}\n', encoding="utf-8")
    report = read(path)
    assert [(bad.line, bad.file) for bad in report.malformed] == [(4, str(path))]
    assert report.ignored == {"x": 1, "y": 1}


def test_a_line_that_is_not_utf8_is_malformed(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_bytes(b'{"event": "x"}\n\xff\xfe{}\n{"event": "y"}\n')
    report = read(path)
    assert report.ignored == {"x": 1, "y": 1}
    assert [(bad.line, bad.reason) for bad in report.malformed] == [(2, "not UTF-8 text")]


def test_only_the_first_malformed_lines_are_kept_but_all_are_counted(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text("oops\n" * 80, encoding="utf-8")
    report = read(path)
    assert report.malformed_count == 80
    assert [bad.line for bad in report.malformed] == list(range(1, 51))


def test_a_missing_file_is_an_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(EventLogError, match=r"nope\.jsonl: no such file"):
        audit_file(tmp_path / "nope.jsonl")
    with pytest.raises(EventLogError, match="not a regular file"):
        audit_file(tmp_path)
    with pytest.raises(EventLogError, match="no file matches"):
        audit_file(str(tmp_path / "events-*.jsonl"))


def test_the_audit_reports_malformed_lines_and_still_audits_the_rest(tmp_path: Path) -> None:
    log = conversation_log((("control", 20, 0.5), (ARMS[1], 20, 0.5)))
    log.lines.insert(10, "{broken")
    report = read(log.write(tmp_path / "events.jsonl"))
    assert [(bad.line, bad.reason.startswith("not valid JSON")) for bad in report.malformed] == [
        (11, True)
    ]
    [audit] = report.experiments
    assert audit.exposed_units == 40


def test_a_utf8_byte_order_mark_keeps_the_first_record(tmp_path: Path) -> None:
    log = conversation_log((("control", 20, 0.5), (ARMS[1], 20, 0.5)))
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + ("\n".join(log.lines) + "\n").encode("utf-8"))
    report = read(path)
    [audit] = report.experiments
    assert report.malformed_count == 0
    assert audit.exposed_units == 40 and audit.join.rate == 1.0


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-32", "utf-8-sig"])
def test_other_encodings_lose_no_record(tmp_path: Path, encoding: str) -> None:
    log = conversation_log((("control", 20, 0.5), (ARMS[1], 20, 0.5)))
    path = tmp_path / "events.jsonl"
    path.write_bytes(("\n".join(log.lines) + "\n").encode(encoding))
    report = read(path)
    [audit] = report.experiments
    assert report.malformed_count == 0 and report.lines == len(log.lines)
    assert audit.exposed_units == 40 and audit.join.rate == 1.0


def test_a_file_read_in_another_encoding_is_noted(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text(conversation_log().lines[0] + "\n", encoding="utf-16")
    assert read(path).notes == (f"{path}: read as utf-16 (byte order mark)",)


def test_gzip_and_globs_of_rotated_files_read_as_one_log(tmp_path: Path) -> None:
    log = conversation_log((("control", 30, 0.5), (ARMS[1], 30, 0.5)))
    half = len(log.lines) // 2
    (tmp_path / "events-1.jsonl").write_text("\n".join(log.lines[:half]) + "\n", "utf-8")
    with gzip.open(tmp_path / "events-2.jsonl.gz", "wt", encoding="utf-8") as file:
        file.write("\n".join(log.lines[half:]) + "\n")
    report = read(str(tmp_path / "events-*"))
    [audit] = report.experiments
    assert report.lines == len(log.lines)
    assert audit.exposed_units == 60 and audit.join.rate == 1.0


def test_a_malformed_line_is_named_in_its_own_file(tmp_path: Path) -> None:
    first = tmp_path / "a.jsonl"
    second = tmp_path / "b.jsonl"
    first.write_text(conversation_log().lines[0] + "\n", encoding="utf-8")
    second.write_text('{"event": "x"}\n{oops\n', encoding="utf-8")
    report = read([first, second])
    assert [(bad.file, bad.line) for bad in report.malformed] == [(str(second), 2)]
