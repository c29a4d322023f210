"""One service instance in its own process, for tests of the shared ledger across instances.

The test process starts :func:`run_instance` with ``multiprocessing`` (spawn) and drives it over
a pipe with small commands. The instance builds a real provider with
``FeatBitProvider.connect`` (streaming from the FeatBit test server) and a ``RedisStore`` on
the shared Redis, registers it with OpenFeature and evaluates through the OpenFeature client,
as a service would.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

#: How long the test process waits for one answer from an instance.
ANSWER_TIMEOUT = 60.0


@dataclass(frozen=True)
class InstanceSettings:
    """Everything an instance needs, as plain picklable data."""

    env_secret: str
    streaming_url: str
    event_url: str
    redis_url: str
    key_prefix: str
    experiments: tuple[tuple[str, str, str], ...]  # (flag key, unit, rollback mode)
    # These tests are about agreement through a reachable ledger, not about Redis latency: on a
    # loaded 2-core machine, 16 evaluating threads in two processes can starve a store call past
    # the default 100 ms, which the store reports (correctly) as an outage and the test as a
    # disagreement. Outages and stalls are tested with their own timeouts elsewhere.
    store_timeout: float = 2.0


def run_instance(connection: Connection, settings: InstanceSettings) -> None:
    """The instance's main loop: build the provider, then answer commands until ``stop``."""
    from fbclient.config import WebSocketConfig
    from openfeature import api
    from openfeature.evaluation_context import EvaluationContext

    from featbit_experiments import Experiment, FeatBitProvider, InMemorySink, UnitPolicy
    from featbit_experiments.continuity import RedisStore

    sink = InMemorySink()
    store = RedisStore(
        settings.redis_url,
        key_prefix=settings.key_prefix,
        socket_timeout=settings.store_timeout,
        connect_timeout=settings.store_timeout,
    )
    provider = FeatBitProvider.connect(
        settings.env_secret,
        settings.streaming_url,
        settings.event_url,
        policy=UnitPolicy(
            [Experiment(flag, unit, rollback=mode) for flag, unit, mode in settings.experiments]
        ),
        sinks=[sink],
        store=store,
        streaming_first_retry_delay=0.1,
        events_flush_interval=0.2,
        websocket=WebSocketConfig(timeout=0.5),
    )
    domain = f"instance-{uuid.uuid4().hex[:8]}"
    api.set_provider_and_wait(provider, domain=domain)
    client = api.get_client(domain)

    def turn(flag: str, conversation_id: str) -> tuple[str, str | None]:
        context = EvaluationContext(attributes={"conversationId": conversation_id})
        details = client.get_string_details(flag, "default", context)
        return details.value, details.reason

    connection.send("ready")
    while True:
        command, args = connection.recv()
        answer: Any = None
        if command == "turns":
            flag, conversations = args
            answer = [turn(flag, c) for c in conversations]
        elif command == "turns_at_once":
            flag, conversations, threads = args
            with ThreadPoolExecutor(threads) as pool:
                answer = [
                    value for value, _ in pool.map(turn, [flag] * len(conversations), conversations)
                ]
        elif command == "end_units":
            answer = [provider.end_unit("conversation", c) for c in args]
        elif command == "flag_version":
            view = provider.resolver.view(args)
            answer = None if view is None else view.version
        elif command == "guardrails":
            answer = sink.guardrails(args)
        elif command == "round_trips":
            answer = store.round_trips
        elif command == "stop":
            api.clear_providers()
            store.close()
            connection.send(None)
            return
        connection.send(answer)


class Instance:
    """The test process's handle on one instance process."""

    def __init__(self, settings: InstanceSettings) -> None:
        context = multiprocessing.get_context("spawn")
        self._connection, child = context.Pipe()
        self._process = context.Process(target=run_instance, args=(child, settings), daemon=True)
        self._process.start()
        child.close()

    def wait_ready(self) -> None:
        if self._receive() != "ready":
            raise RuntimeError("instance did not start")

    def call(self, command: str, args: Any = None) -> Any:
        self.send(command, args)
        return self._receive()

    def send(self, command: str, args: Any = None) -> None:
        """Send a command without waiting, to start two instances at once; then :meth:`answer`."""
        self._connection.send((command, args))

    def answer(self) -> Any:
        return self._receive()

    def stop(self) -> None:
        if self._process.is_alive():
            with contextlib.suppress(EOFError, OSError, TimeoutError):
                self.call("stop")
            self._process.join(10)
        if self._process.is_alive():
            self._process.terminate()
            self._process.join(5)
        self._connection.close()

    def _receive(self) -> Any:
        if not self._connection.poll(ANSWER_TIMEOUT):
            raise TimeoutError(f"instance gave no answer within {ANSWER_TIMEOUT:g}s")
        return self._connection.recv()
