"""The JSON Lines sink: one event per line, appended, buffered up to a bound, thread-safe."""

from __future__ import annotations

import json
import threading
from datetime import datetime, timezone
from pathlib import Path

import pytest

from featbit_experiments import JsonLinesSink, SinkCounts, SinkFailed


def lines_of(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_each_event_is_one_json_object_per_line(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    with JsonLinesSink(path) as sink:
        sink.emit({"event": "a", "n": 1})
        sink.emit({"event": "b", "text": "line\nbreak"})
    assert lines_of(path) == [{"event": "a", "n": 1}, {"event": "b", "text": "line\nbreak"}]


def test_a_second_sink_appends_to_the_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    with JsonLinesSink(path) as sink:
        sink.emit({"event": "first"})
    with JsonLinesSink(path) as sink:
        sink.emit({"event": "second"})
    assert [e["event"] for e in lines_of(path)] == ["first", "second"]


def test_events_stay_buffered_until_the_buffer_fills(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    sink = JsonLinesSink(path, buffer_size=3)
    sink.emit({"n": 1})
    sink.emit({"n": 2})
    assert path.read_text() == ""
    sink.emit({"n": 3})
    assert [e["n"] for e in lines_of(path)] == [1, 2, 3]
    sink.close()


def test_flush_writes_what_is_buffered(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    sink = JsonLinesSink(path, buffer_size=100)
    sink.emit({"n": 1})
    sink.flush()
    assert lines_of(path) == [{"n": 1}]
    sink.close()


def test_values_json_cannot_encode_are_written_as_text(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    moment = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    with JsonLinesSink(path) as sink:
        sink.emit({"at": moment})
    assert lines_of(path) == [{"at": str(moment)}]


def test_concurrent_writers_never_interleave_lines(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    sink = JsonLinesSink(path, buffer_size=7)

    def write(worker: int) -> None:
        for n in range(500):
            sink.emit({"worker": worker, "n": n, "pad": "x" * 200})

    threads = [threading.Thread(target=write, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    sink.close()
    events = lines_of(path)
    assert len(events) == 4000
    for worker in range(8):
        assert [e["n"] for e in events if e["worker"] == worker] == list(range(500))


def test_a_closed_sink_counts_every_later_event_as_failed(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    sink = JsonLinesSink(path)
    sink.emit({"n": 1})
    sink.close()
    with pytest.raises(SinkFailed):
        sink.emit({"n": 2})
    sink.close()
    assert lines_of(path) == [{"n": 1}]
    assert sink.counts() == SinkCounts(accepted=2, written=1, failed=1, buffered=0)


def test_the_directory_is_created_when_missing(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "dir" / "events.jsonl"
    with JsonLinesSink(path) as sink:
        sink.emit({"n": 1})
    assert lines_of(path) == [{"n": 1}]
