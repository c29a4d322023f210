"""Shared fixtures: real fbclient clients fed from offline bootstrap files, wrapped in our
provider and registered with the real OpenFeature API; the Redis shared by the run (the
machine's, or a throwaway one when none answers)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from openfeature import api
from openfeature.client import OpenFeatureClient

from featbit_experiments import FeatBitProvider, InMemorySink, UnitPolicy
from tests.support import flags as fl
from tests.support.redis_server import main_redis_url

ProviderFactory = Callable[..., FeatBitProvider]


@pytest.fixture(scope="session")
def main_redis() -> str:
    """The URL of a Redis every test may use with its own key prefix (never flushed)."""
    return main_redis_url()


@pytest.fixture
def sink() -> InMemorySink:
    return InMemorySink()


@pytest.fixture
def write_bootstrap(tmp_path: Path) -> Callable[[Sequence[dict[str, Any]]], Path]:
    def write(flag_list: Sequence[dict[str, Any]], segments: Sequence[dict[str, Any]] = ()) -> Path:
        path = tmp_path / f"bootstrap-{uuid.uuid4().hex[:8]}.json"
        path.write_text(fl.bootstrap_json(flag_list, segments), encoding="utf-8")
        return path

    return write


@pytest.fixture
def make_provider(
    write_bootstrap: Callable[[Sequence[dict[str, Any]]], Path], sink: InMemorySink
) -> Iterator[ProviderFactory]:
    made: list[FeatBitProvider] = []

    def make(
        flag_list: Sequence[dict[str, Any]], policy: UnitPolicy | None = None, **options: Any
    ) -> FeatBitProvider:
        options.setdefault("sinks", [sink])
        provider = FeatBitProvider.offline(write_bootstrap(flag_list), policy=policy, **options)
        made.append(provider)
        return provider

    yield make
    for provider in made:
        provider.shutdown()


@pytest.fixture
def of_client() -> Iterator[Callable[[FeatBitProvider], OpenFeatureClient]]:
    """Register a provider under a fresh OpenFeature domain and return a client for it."""
    domains: list[str] = []

    def register(provider: FeatBitProvider) -> OpenFeatureClient:
        domain = f"test-{uuid.uuid4().hex[:8]}"
        domains.append(domain)
        api.set_provider_and_wait(provider, domain=domain)
        return api.get_client(domain)

    yield register
    api.clear_providers()
