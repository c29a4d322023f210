"""Periodic upkeep off the evaluation path: one background thread per process runs the
registered tasks (purging expired units, rotating per-unit memory, flushing throttled reports)
so that memory follows the work even when no traffic arrives, and no evaluation pays for it.

A task is a bound method held weakly: registering never keeps an object alive, and a task whose
object is gone is dropped. The thread starts with the first task and ends when none is left
(:meth:`Task.cancel`, or the objects were collected). Tasks must be short and must not raise
(an exception is logged and the task keeps its schedule); they may do a little I/O bounded by a
timeout (the store's durability check).
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

logger = logging.getLogger("featbit_experiments")

THREAD_NAME = "featbit-experiments-upkeep"
#: How long :meth:`Upkeep.remove` waits for a run of the task already under way. Tasks make
#: bounded calls (store calls within their timeouts), so this only caps a stuck one.
REMOVE_WAIT_SECONDS = 1.0


class Task:
    """One registered task; :meth:`cancel` removes it."""

    __slots__ = ("_method", "_upkeep", "cancelled", "due", "interval")

    def __init__(
        self, upkeep: Upkeep, method: Callable[[], Any], interval: float | None, due: float
    ) -> None:
        self._upkeep = upkeep
        self._method = weakref.WeakMethod(method)
        self.interval = interval
        self.due = due
        self.cancelled = False

    def method(self) -> Callable[[], Any] | None:
        """The bound method, or None once its object is gone."""
        return self._method()

    def call(self) -> bool:
        """Run once; False when the task's object is gone."""
        method = self._method()
        if method is None:
            return False
        try:
            method()
        except Exception:
            logger.exception("upkeep task %r failed", method)
        return True

    def cancel(self) -> None:
        self._upkeep.remove(self)


class Upkeep:
    """Runs tasks on one daemon thread, each every ``interval`` seconds (or once)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._tasks: list[Task] = []
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None
        self._current: Task | None = None  # the task running now, outside the lock

    def every(self, interval: float, method: Callable[[], Any]) -> Task:
        """Run ``method`` (a bound method) every ``interval`` seconds."""
        return self._add(Task(self, method, interval, self._clock() + interval))

    def soon(self, method: Callable[[], Any]) -> Task:
        """Run ``method`` (a bound method) once, as soon as the thread gets to it."""
        return self._add(Task(self, method, None, self._clock()))

    def remove(self, task: Task) -> None:
        """Remove ``task``; if it is running on the upkeep thread, wait (at most
        :data:`REMOVE_WAIT_SECONDS`) for that run to end, so its owner can close what the task
        uses once this returns (a store closed under a running check failed it with a
        traceback in the log)."""
        with self._wake:
            task.cancelled = True
            if task in self._tasks:
                self._tasks.remove(task)
                self._wake.notify_all()
            if threading.current_thread() is not self._thread:
                self._wake.wait_for(lambda: self._current is not task, REMOVE_WAIT_SECONDS)

    def owners(self) -> list[object]:
        """The live objects whose tasks are registered (for diagnostics and tests)."""
        with self._wake:
            methods = [task.method() for task in self._tasks]
        return [getattr(method, "__self__", None) for method in methods if method is not None]

    def settle(self, timeout: float) -> bool:
        """Once no task is left (the last owner closed its own), wait up to ``timeout`` for
        the thread to end; True when no upkeep thread runs (a provider's shutdown leaves no
        thread behind)."""
        with self._wake:
            thread = None if self._tasks else self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        return not self.running

    @property
    def running(self) -> bool:
        thread = self._thread
        return thread is not None and thread.is_alive()

    def _add(self, task: Task) -> Task:
        with self._wake:
            self._tasks.append(task)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=THREAD_NAME, daemon=True)
                self._thread.start()
            self._wake.notify_all()
        return task

    def _run(self) -> None:
        while True:
            with self._wake:
                if not self._tasks:
                    self._thread = None
                    return
                now = self._clock()
                due = [task for task in self._tasks if task.due <= now]
                if not due:
                    self._wake.wait(min(task.due for task in self._tasks) - now)
                    continue
                for task in due:
                    if task.interval is None:
                        self._tasks.remove(task)
                    else:
                        task.due = now + task.interval
            for task in due:
                with self._wake:
                    if task.cancelled:
                        continue  # removed since it fell due
                    self._current = task
                try:
                    alive = task.call()
                finally:
                    with self._wake:
                        self._current = None
                        self._wake.notify_all()
                if not alive:
                    self.remove(task)


#: The process's upkeep thread, shared by every provider.
UPKEEP = Upkeep()
