"""Evaluations under load, for the reliability tests and benchmark: threads calling the sync
API and asyncio tasks calling the async API at the same time, every result checked and tallied.

A worker is a function of ``(worker index, call index)`` returning ``(unit id, details)``: the ID
of the unit the call evaluated for, and OpenFeature's evaluation details. Whatever a call raises
is caught here and counted, since the whole point is to show that nothing reaches the caller.
"""

from __future__ import annotations

import asyncio
import threading
import traceback
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any

from featbit_experiments import metadata_keys

SyncCall = Callable[[int, int], tuple[str, Any]]
AsyncCall = Callable[[int, int], Awaitable[tuple[str, Any]]]


class Tally:
    """What the callers saw: evaluations served, exceptions raised, error codes, the values each
    unit was served, and results whose ``contextId`` named another unit (cross-talk)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.served = 0
        self.exceptions: list[str] = []
        self.error_codes: Counter[str] = Counter()
        self.values: Counter[Any] = Counter()
        self.by_unit: defaultdict[str, set[Any]] = defaultdict(set)
        self.foreign = 0
        self._begun = 0

    def begin(self) -> None:
        """A call that will report here has begun (the load calls this before each call)."""
        with self._lock:
            self._begun += 1

    @property
    def in_flight(self) -> int:
        """Calls begun for this tally that have not reported yet: once a tally is replaced,
        zero means every call begun before the change has finished."""
        with self._lock:
            return self._begun - self.served - len(self.exceptions)

    def record(self, unit_id: str, details: Any) -> None:
        context_id = (details.flag_metadata or {}).get(metadata_keys.CONTEXT_ID)
        with self._lock:
            self.served += 1
            if details.error_code is not None:
                self.error_codes[str(details.error_code)] += 1
            self.values[details.value] += 1
            self.by_unit[unit_id].add(details.value)
            # contextId is "<unit>:<unit id>" (kind-prefixed, as OpenFeature's telemetry wants)
            if context_id is not None and str(context_id).partition(":")[2] != unit_id:
                self.foreign += 1

    def record_exception(self, error: BaseException) -> None:
        with self._lock:
            self.exceptions.append("".join(traceback.format_exception(error)))

    @property
    def errors(self) -> int:
        """Evaluations that reached the caller as an exception or an error result."""
        with self._lock:
            return len(self.exceptions) + sum(self.error_codes.values())

    def units_with_several_values(self) -> dict[str, set[Any]]:
        with self._lock:
            return {unit: values for unit, values in self.by_unit.items() if len(values) > 1}


class Load:
    """Runs ``sync_call`` from ``threads`` threads and ``async_call`` from ``tasks`` asyncio
    tasks (on one event loop in its own thread), each worker ``calls`` times or, with
    ``calls=None``, until :meth:`stop`.

    A call's result goes to the tally that was current when the call began, so assigning a
    new :attr:`tally` separates the calls begun before and after a change (a thread the GIL
    starves can finish a call begun before the change long after it).

    Args:
        tally: Where results go.
        sync_call: One sync evaluation.
        async_call: One async evaluation (needed when ``tasks`` > 0).
        threads: Sync worker threads.
        tasks: Async worker tasks.
        calls: Calls per worker, or None to run until stopped.
    """

    def __init__(
        self,
        tally: Tally,
        sync_call: SyncCall | None = None,
        async_call: AsyncCall | None = None,
        *,
        threads: int = 4,
        tasks: int = 0,
        calls: int | None = None,
    ) -> None:
        if threads and sync_call is None:
            raise ValueError("threads need a sync_call")
        if tasks and async_call is None:
            raise ValueError("tasks need an async_call")
        self.tally = tally
        self._sync_call = sync_call
        self._async_call = async_call
        self._tasks = tasks
        self._calls = calls
        self._stop = threading.Event()
        self._workers = [
            threading.Thread(target=self._run_sync, args=(n,), name=f"load-{n}", daemon=True)
            for n in range(threads)
        ]
        if tasks:
            self._workers.append(
                threading.Thread(target=self._run_loop, name="load-asyncio", daemon=True)
            )

    def start(self) -> Load:
        for worker in self._workers:
            worker.start()
        return self

    def join(self, timeout: float) -> bool:
        """Wait for every worker; False when one is still running after ``timeout`` seconds
        (a hang or a deadlock)."""
        deadline = threading.Event()
        timer = threading.Timer(timeout, deadline.set)
        timer.start()
        try:
            for worker in self._workers:
                while worker.is_alive() and not deadline.is_set():
                    worker.join(0.05)
        finally:
            timer.cancel()
        return not any(worker.is_alive() for worker in self._workers)

    def stop(self, timeout: float = 30.0) -> bool:
        """Ask every worker to finish its current call and stop; see :meth:`join`."""
        self._stop.set()
        return self.join(timeout)

    def __enter__(self) -> Load:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _more(self, n: int) -> bool:
        return not self._stop.is_set() and (self._calls is None or n < self._calls)

    def _run_sync(self, worker: int) -> None:
        assert self._sync_call is not None
        n = 0
        while self._more(n):
            tally = self.tally
            tally.begin()
            try:
                unit_id, details = self._sync_call(worker, n)
            except Exception as error:
                tally.record_exception(error)
            else:
                tally.record(unit_id, details)
            n += 1

    def _run_loop(self) -> None:
        asyncio.run(self._run_tasks())

    async def _run_tasks(self) -> None:
        await asyncio.gather(*(self._run_task(worker) for worker in range(self._tasks)))

    async def _run_task(self, worker: int) -> None:
        assert self._async_call is not None
        n = 0
        while self._more(n):
            tally = self.tally
            tally.begin()
            try:
                unit_id, details = await self._async_call(worker, n)
            except Exception as error:
                tally.record_exception(error)
            else:
                tally.record(unit_id, details)
            n += 1
            await asyncio.sleep(0)  # let the other tasks in even when the call never awaits
