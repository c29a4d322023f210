"""Fixtures for the Starlette adapter: the core's real provider fixtures, OpenFeature's
contextvars propagator, a real uvicorn server on loopback, and a tracer with an in-memory
exporter."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import pytest
import uvicorn
from featbit_experiments_starlette import use_contextvars_propagator
from openfeature import api
from openfeature.evaluation_context import EvaluationContext
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from starlette.types import ASGIApp

from tests.conftest import make_provider, of_client, sink, write_bootstrap

__all__ = ["make_provider", "of_client", "sink", "write_bootstrap"]

Serve = Callable[[ASGIApp], str]


@pytest.fixture(autouse=True)
def propagator() -> Iterator[None]:
    """OpenFeature's contextvars propagator, installed as an application would at start-up."""
    use_contextvars_propagator()
    api.set_transaction_context(EvaluationContext())  # nothing left over from other tests
    yield
    api.set_transaction_context(EvaluationContext())
    api.clear_transaction_context_propagator()


@pytest.fixture
def serve() -> Iterator[Serve]:
    """Run an ASGI app under uvicorn on 127.0.0.1 (free port) in a thread; returns host:port."""
    running: list[tuple[uvicorn.Server, threading.Thread]] = []

    def start(app: ASGIApp) -> str:
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=0,
            log_level="warning",
            lifespan="off",
            ws="websockets-sansio",
            backlog=2048,
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        running.append((server, thread))
        port = server.servers[0].sockets[0].getsockname()[1]
        return f"127.0.0.1:{port}"

    yield start
    for server, thread in running:
        server.should_exit = True
        thread.join(10)


@pytest.fixture
def spans() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def tracer_provider(spans: InMemorySpanExporter) -> TracerProvider:
    """A real SDK tracer provider, passed explicitly (the global one is left alone)."""
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    return provider
