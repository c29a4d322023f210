"""Event sinks account for every event: on a real full filesystem, when the file is deleted and
when it is rotated, events sent = written + counted as failed, the file never holds a partial
line, and the failures reach the other sinks and the logger as a throttled ``sink_failed``."""

from __future__ import annotations

import json
import logging
import os
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from featbit_experiments import InMemorySink, JsonLinesSink
from featbit_experiments.guardrails import EventFanout

PAD = "x" * 180


def event(n: int) -> dict[str, Any]:
    return {"event": "experiment_exposure", "n": n, "pad": PAD}


def lines_of(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def lost_reported(sink: InMemorySink) -> int:
    return sum(int(g["eventsLost"]) for g in sink.guardrails("sink_failed"))


@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[Path]:
    """A 64 KiB tmpfs, mounted for the test (needs root)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs to fill needs root")
    mount_point = tmp_path / "small"
    mount_point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def test_on_a_full_disk_every_event_is_written_whole_or_counted_as_failed(
    full_disk: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = full_disk / "events.jsonl"
    jsonl, others = JsonLinesSink(path, buffer_size=7), InMemorySink()
    fanout = EventFanout([jsonl, others], failure_report_interval=3600)
    with caplog.at_level(logging.WARNING, logger="featbit_experiments"):
        for n in range(6_300):
            fanout.emit(event(n))
        fanout.flush()
    jsonl.close()

    counts = jsonl.counts()
    written = lines_of(path)  # every line parses: none was cut
    assert path.read_bytes().endswith(b"\n")
    assert counts.accepted == 6_300
    assert (counts.written + counts.failed, counts.buffered) == (6_300, 0)
    assert len(written) == counts.written > 0 and counts.failed > 0
    assert [e["n"] for e in written] == list(range(counts.written))
    assert lost_reported(others) == counts.failed
    assert others.guardrails("sink_failed")[-1]["eventsLostTotal"] == counts.failed
    assert any("sink_failed" in record.getMessage() for record in caplog.records)


def test_a_deleted_file_is_created_again_and_nothing_is_lost(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    sink = JsonLinesSink(path, buffer_size=10)
    for n in range(1_000):
        if n == 100:
            path.unlink()
        sink.emit(event(n))
    sink.close()
    assert [e["n"] for e in lines_of(path)] == list(range(100, 1_000))
    counts = sink.counts()
    assert (counts.written, counts.failed) == (1_000, 0)


def test_a_rotated_file_is_left_behind_and_later_events_go_to_the_path(tmp_path: Path) -> None:
    path, rotated = tmp_path / "events.jsonl", tmp_path / "events.jsonl.1"
    sink = JsonLinesSink(path, buffer_size=10)
    for n in range(1_000):
        if n == 100:
            path.rename(rotated)  # what logrotate does (without copytruncate)
        sink.emit(event(n))
    sink.close()
    assert [e["n"] for e in lines_of(rotated)] == list(range(100))
    assert [e["n"] for e in lines_of(path)] == list(range(100, 1_000))
    assert sink.counts().written == 1_000


def test_a_deleted_directory_is_created_again(tmp_path: Path) -> None:
    path = tmp_path / "logs" / "events.jsonl"
    sink = JsonLinesSink(path, buffer_size=1)
    sink.emit(event(0))
    path.unlink()
    path.parent.rmdir()
    sink.emit(event(1))
    sink.close()
    assert [e["n"] for e in lines_of(path)] == [1]


class Broken:
    """A sink that fails on every event and records what it was asked to deliver."""

    def __init__(self) -> None:
        self.received: list[Mapping[str, Any]] = []

    def emit(self, event: Mapping[str, Any]) -> None:
        self.received.append(event)
        raise OSError("disk full")


def test_a_failing_sink_is_reported_to_the_others_at_most_once_per_interval_with_counts() -> None:
    broken, others = Broken(), InMemorySink()
    fanout = EventFanout([broken, others], failure_report_interval=3600)
    for n in range(100):
        fanout.emit(event(n))
    [first] = others.guardrails("sink_failed")
    fanout.flush()  # at shutdown: the counts suppressed since are recorded too
    [_, last] = others.guardrails("sink_failed")

    assert (first["eventsLost"], first["eventsLostTotal"]) == (1, 1)
    assert (last["eventsLost"], last["eventsLostTotal"]) == (99, 100)
    assert len(others.of_kind("experiment_exposure")) == 100
    assert all(e["event"] == "experiment_exposure" for e in broken.received)  # told nothing


def test_sinks_failing_while_a_failure_is_reported_are_counted_without_recursion() -> None:
    first, second, others = Broken(), Broken(), InMemorySink()
    fanout = EventFanout([first, second, others], failure_report_interval=3600)
    for n in range(10):
        fanout.emit(event(n))
    fanout.flush()
    # Each lost its 10 events and the other's sink_failed records, all counted.
    assert fanout.lost_events() == {
        repr(first): len(first.received),
        repr(second): len(second.received),
    }
    assert len(first.received) > 10 and len(second.received) > 10
    assert len(others.guardrails("sink_failed")) <= 4
