"""Fixtures for the LangChain adapter: the core's real provider fixtures, a provider serving
the experiment flag, and a real OpenTelemetry SDK tracer with an in-memory exporter handed to
a real callback handler."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from featbit_experiments_langchain import ExperimentCallbackHandler
from openfeature.client import OpenFeatureClient
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from adapters.langchain.tests.lc_support import experiment_flag
from featbit_experiments import FeatBitProvider
from tests.conftest import make_provider, of_client, sink, write_bootstrap

__all__ = ["make_provider", "of_client", "sink", "write_bootstrap"]


@pytest.fixture
def provider(make_provider: Callable[..., FeatBitProvider]) -> FeatBitProvider:
    return make_provider([experiment_flag()])


@pytest.fixture
def client(
    provider: FeatBitProvider, of_client: Callable[[FeatBitProvider], OpenFeatureClient]
) -> OpenFeatureClient:
    return of_client(provider)


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def tracer_provider(exporter: InMemorySpanExporter) -> Iterator[TracerProvider]:
    """A real SDK tracer provider, passed to the handler (the global one is never set)."""
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider
    provider.shutdown()


@pytest.fixture
def handler(tracer_provider: TracerProvider) -> ExperimentCallbackHandler:
    return ExperimentCallbackHandler(tracer_provider=tracer_provider)
