"""The Redis store against a server that accepts connections and never answers, plain and TLS:
every call is bounded by its timeouts, the breaker stops callers from waiting at all once it is
open, and after its retry interval exactly one caller probes the server."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import pytest

from featbit_experiments.continuity import LedgerKey, RedisStore, StoreUnavailable
from featbit_experiments.continuity.breaker import CircuitBreaker
from tests.support.hanging_server import HangingServer

SOCKET_TIMEOUT = 0.25
KEY = LedgerKey("exp", "run-1", "conversation", "c-1")


@pytest.fixture
def stalled() -> Iterator[HangingServer]:
    with HangingServer() as server:
        yield server


def stalled_store(server: HangingServer, scheme: str = "redis", **options: object) -> RedisStore:
    if scheme == "rediss":
        options.setdefault("ssl_cert_reqs", "none")
    return RedisStore(
        server.url(scheme),
        socket_timeout=SOCKET_TIMEOUT,
        connect_timeout=SOCKET_TIMEOUT,
        **options,  # type: ignore[arg-type]
    )


def call_from_threads(
    call: Callable[[], object], threads: int = 16, calls: int = 1
) -> tuple[list[float], list[str]]:
    """Each thread makes ``calls`` calls after a common start; returns every call's duration
    and every error message (a call that did not raise StoreUnavailable is a failure)."""
    durations: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(threads)

    def work() -> None:
        barrier.wait()
        for _ in range(calls):
            started = time.perf_counter()
            try:
                call()
                message = "answered (expected StoreUnavailable)"
            except StoreUnavailable as error:
                message = str(error)
            with lock:
                durations.append(time.perf_counter() - started)
                errors.append(message)

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return durations, errors


@pytest.mark.parametrize("scheme", ["redis", "rediss"])
def test_no_call_waits_longer_than_twice_the_socket_timeout(
    stalled: HangingServer, scheme: str
) -> None:
    store = stalled_store(stalled, scheme, retry_interval=0.05)
    durations, errors = call_from_threads(lambda: store.touch(KEY), threads=16, calls=8)
    store.close()
    assert len(durations) == 128
    assert all(message.startswith("Redis unavailable") for message in errors)
    assert max(durations) < 2 * SOCKET_TIMEOUT


def test_callers_fail_at_once_while_the_breaker_is_open(stalled: HangingServer) -> None:
    store = stalled_store(stalled, failure_threshold=3, retry_interval=3600)
    for _ in range(3):
        with pytest.raises(StoreUnavailable):
            store.touch(KEY)
    sent = store.round_trips
    _, errors = call_from_threads(lambda: store.touch(KEY), threads=16, calls=4)
    store.close()
    assert store.round_trips == sent
    assert len(errors) == 64
    assert all("retrying shortly" in message for message in errors)


def test_after_the_retry_interval_one_caller_probes_and_the_others_fail_at_once(
    stalled: HangingServer,
) -> None:
    store = stalled_store(stalled, failure_threshold=1, retry_interval=0.3)
    with pytest.raises(StoreUnavailable):
        store.touch(KEY)
    assert store.breaker.is_open
    deadline = time.monotonic() + 10
    while store.breaker.is_open and time.monotonic() < deadline:
        time.sleep(0.01)
    sent = store.round_trips
    _, errors = call_from_threads(lambda: store.touch(KEY), threads=16)
    store.close()
    assert store.round_trips == sent + 1  # the probe's script call
    assert sum("retrying shortly" in message for message in errors) == 15
    assert store.breaker.is_open  # the probe failed: open again


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_caller_admitted_before_the_breaker_opened_may_not_open_a_connection() -> None:
    breaker = CircuitBreaker(2, 1.0, clock=FakeClock())
    assert breaker.admit() is False
    breaker.failed("TimeoutError", probe=False)
    breaker.failed("TimeoutError", probe=False)
    assert breaker.allows_connect() is False
    assert breaker.admit() is None


def test_a_successful_probe_closes_the_breaker() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(1, 1.0, clock=clock)
    breaker.failed("TimeoutError", probe=False)
    clock.now += 1.5
    assert breaker.admit() is True
    assert breaker.allows_connect() is True  # the probe itself may connect
    assert breaker.admit() is None  # one probe at a time
    breaker.succeeded(probe=True)
    assert breaker.is_open is False
    assert breaker.admit() is False


def test_a_failed_probe_opens_the_breaker_for_another_interval() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(1, 1.0, clock=clock)
    breaker.failed("TimeoutError", probe=False)
    clock.now += 1.5
    assert breaker.admit() is True
    breaker.failed("TimeoutError", probe=True)
    clock.now += 0.5
    assert breaker.admit() is None
    clock.now += 1.0
    assert breaker.admit() is True
