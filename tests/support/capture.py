"""Capture the insight events the real ``fbclient`` builds, without a server.

``fbclient`` honours ``Config(event_processor_imp=...)`` even offline; this processor keeps
each event's wire JSON (exactly what would be POSTed to FeatBit's insights endpoint).
"""

from __future__ import annotations

import threading
from typing import Any


class CapturedInsights:
    """A shared list of captured insight payloads plus the factory fbclient calls."""

    def __init__(self) -> None:
        self._items: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def processor(self, config: Any, sender: Any) -> CapturingProcessor:
        return CapturingProcessor(self)

    def add(self, item: dict[str, Any]) -> None:
        with self._lock:
            self._items.append(item)

    @property
    def items(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._items)

    def flag_events(self) -> list[dict[str, Any]]:
        return [i for i in self.items if "variations" in i]

    def metric_events(self) -> list[dict[str, Any]]:
        return [i for i in self.items if "metrics" in i]


class CapturingProcessor:
    """An ``fbclient`` event processor that records instead of sending."""

    def __init__(self, sink: CapturedInsights) -> None:
        self._sink = sink

    def send_event(self, event: Any) -> None:
        if event.is_send_event:
            self._sink.add(event.to_json_dict())

    def flush(self) -> None:
        pass

    def stop(self) -> None:
        pass
