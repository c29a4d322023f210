"""A :class:`~tests.support.featbit_server.FeatBitTestServer` in a child process, for measurements.

In the same process the server shares the GIL and the heap with the client being measured: its
loop competes with the evaluating threads for the interpreter, and every insight it keeps shows
up in the client's memory. Run in its own process (a ``multiprocessing`` manager), it is just
another server on loopback, as a real FeatBit is. Tests use the in-process server; this is for
``benchmarks/bench_reliability.py``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from multiprocessing.managers import BaseManager
from types import TracebackType
from typing import Any

from tests.support.featbit_server import FeatBitTestServer


class _Control:
    """Lives in the child process; the parent calls it through a manager proxy."""

    def __init__(self, flags: Sequence[Mapping[str, Any]]) -> None:
        self._server = FeatBitTestServer()
        self._server.set_flags(flags)
        self._server.start()

    def addresses(self) -> tuple[str, str, str]:
        return self._server.env_secret, self._server.streaming_url, self._server.event_url

    def set_insights(self, status: int, delay: float, hanging: bool = False) -> None:
        self._server.insights_status = status
        self._server.insights_delay = delay
        self._server.insights_hanging = hanging

    def hanging_posts(self) -> int:
        return self._server.hanging_posts

    def stall_streaming(self) -> int:
        return self._server.stall_streaming()

    def start(self) -> None:
        self._server.start()

    def stop(self) -> None:
        self._server.stop()

    def pause_streaming(self, code: int | None) -> int:
        return self._server.pause_streaming(code)

    def resume_streaming(self) -> None:
        self._server.resume_streaming()

    def drop_connections(self, code: int | None) -> int:
        return self._server.drop_connections(code)

    def connection_count(self) -> int:
        return self._server.connection_count

    def push_flag(self, flag: Mapping[str, Any]) -> int:
        return self._server.push_flag(flag)

    def delivered(self) -> dict[str, int]:
        """Insight items the server accepted (200) and the POSTs it answered otherwise."""
        requests = self._server.insight_requests
        return {
            "flag_events": len(self._server.flag_events()),
            "metric_events": len(self._server.metric_events()),
            "posts_ok": sum(1 for r in requests if r.status == 200),
            "posts_failed": sum(1 for r in requests if r.status != 200),
        }

    def clear_records(self) -> None:
        self._server.clear_records()

    def close(self) -> None:
        self._server.close()


class _Manager(BaseManager):
    pass


_Manager.register("Control", _Control)


class FeatBitServerProcess:
    """Starts a FeatBit test server with ``flags`` in a child process; ``control`` forwards the
    calls of :class:`_Control` (``set_insights``, ``pause_streaming``, ``delivered``, ...)."""

    def __init__(self, flags: Sequence[Mapping[str, Any]]) -> None:
        self._manager = _Manager()
        self._manager.start()
        self.control: Any = self._manager.Control(list(flags))  # type: ignore[attr-defined]
        self.env_secret, self.streaming_url, self.event_url = self.control.addresses()

    def close(self) -> None:
        try:
            self.control.close()
        finally:
            self._manager.shutdown()

    def __enter__(self) -> FeatBitServerProcess:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
