"""A progress line for long example runs, on stderr so stdout stays the readout.

On a terminal the line is rewritten in place (at most ten times a second); when stderr is a
file or a pipe (CI logs, tests) a plain line is written at every tenth of the work instead, so
logs hold a handful of lines and no carriage returns.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

__all__ = ["Progress"]

_REDRAW_SECONDS = 0.1
_STEPS = 10


class Progress:
    """Counts finished items out of ``total`` and shows how far along the run is.

    Args:
        total: Items the run will finish.
        label: What an item is (``"conversations"``).
        detail: Extra text for the line, read each time it is drawn (counters, rates).
        stream: Where the line goes; stderr by default.
        clock: Seconds, monotonic.
    """

    def __init__(
        self,
        total: int,
        label: str,
        *,
        detail: Callable[[], str] | None = None,
        stream: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.total = max(total, 0)
        self.done = 0
        self._label = label
        self._detail = detail
        self._stream = stream or sys.stderr
        self._clock = clock
        self._started = clock()
        self._live = _is_terminal(self._stream)
        self._drawn_at = -_REDRAW_SECONDS
        self._next_step = 1

    def advance(self, items: int = 1) -> None:
        """Count ``items`` more finished items and redraw when it is time to."""
        self.done += items
        if self._live:
            now = self._clock()
            if now - self._drawn_at >= _REDRAW_SECONDS or self.done >= self.total:
                self._drawn_at = now
                self._stream.write("\r" + self._line() + "\x1b[K")
                self._stream.flush()
            return
        while self.total and self.done * _STEPS >= self._next_step * self.total:
            self._next_step += 1
            self._stream.write(self._line() + "\n")
            self._stream.flush()

    def close(self) -> None:
        """End the in-place line (a terminal keeps it as the final state)."""
        if self._live:
            self._stream.write("\r" + self._line() + "\x1b[K\n")
            self._stream.flush()
            self._live = False

    def _line(self) -> str:
        seconds = self._clock() - self._started
        share = self.done / self.total if self.total else 1.0
        text = f"  {self.done}/{self.total} {self._label} ({share:.0%}, {seconds:.1f} s)"
        if self._detail is not None:
            text += "  " + self._detail()
        return text


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
