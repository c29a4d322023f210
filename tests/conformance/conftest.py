"""Shared fixture and steps for OpenFeature's conformance suites run against ``FeatBitProvider``.

Every scenario gets a fresh :class:`~tests.conformance.world.World` (its own OpenFeature domain
and providers built by :class:`~tests.conformance.providers.Providers`), and OpenFeature's global
state (providers, API hooks, API context, transaction propagator) is restored afterwards.
Steps used by more than one feature file live here; each ``test_*.py`` module holds the steps
only its own feature uses.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from openfeature import api
from openfeature.evaluation_context import EvaluationContext
from openfeature.transaction_context import clear_transaction_context_propagator
from pytest_bdd import given, parsers, then, when

from featbit_experiments import InMemorySink
from tests.conformance.providers import Providers
from tests.conformance.values import FlagRequest, Kind, parse, same_value
from tests.conformance.world import World

FEATURES = Path(__file__).parent / "features"
_TAG = re.compile(r"@([^\s@#]+)")


def pytest_configure(config: pytest.Config) -> None:
    """Declare the gherkin tags as markers (pytest-bdd turns tags into marks)."""
    tags: set[str] = set()
    for feature in FEATURES.glob("*.feature"):
        for line in feature.read_text(encoding="utf-8").splitlines():
            if line.lstrip().startswith("@"):
                tags.update(_TAG.findall(line))
    for tag in sorted(tags):
        config.addinivalue_line("markers", f"{tag}: OpenFeature conformance gherkin tag")


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    providers = Providers(tmp_path, InMemorySink())
    state = World(domain=f"conformance-{uuid.uuid4().hex[:8]}", providers=providers)
    try:
        yield state
    finally:
        api.clear_providers()
        api.clear_hooks()
        api.set_evaluation_context(EvaluationContext())
        api.set_transaction_context(EvaluationContext())  # empties the shared ContextVar
        clear_transaction_context_propagator()
        providers.close()


# -- providers -------------------------------------------------------------------------------


@given(parsers.re(r"an? (?P<status>stable|not ready|error|fatal|stale) provider"))
def provider_in_status(world: World, status: str) -> None:
    world.provider = world.providers.register(status, world.domain)


@given("a provider is registered with cache disabled")
def provider_without_cache(world: World) -> None:
    """evaluation.feature (v1): our provider has no cache to disable."""
    world.provider = world.providers.register("stable", world.domain)


# -- flags and evaluation -----------------------------------------------------------------


@given(
    parsers.re(
        r'an? (?P<kind>\w+)-flag with key "(?P<key>[^"]*)" '
        r'and a (?:fallback|default) value "(?P<default>.*)"'
    )
)
def flag_with_fallback(world: World, kind: str, key: str, default: str) -> None:
    """Accepts both wordings: "a default value" (older suites) and "a fallback value"."""
    flag_kind = Kind.named(kind)
    world.flag = FlagRequest(flag_kind, key, parse(flag_kind, default))


@when("the flag was evaluated with details")
def evaluated_with_details(world: World) -> None:
    world.evaluate()


@then(parsers.re(r'the resolved details value should be "(?P<value>.*)"'))
def resolved_value(world: World, value: str) -> None:
    assert world.flag is not None
    expected = parse(world.flag.kind, value)
    actual = world.result.value
    assert same_value(actual, expected), f"value {actual!r}, expected {expected!r}"


@then(parsers.re(r'the reason should be "(?P<reason>[^"]*)"'))
def reason_is(world: World, reason: str) -> None:
    assert world.result.reason == reason, world.result


@then(parsers.re(r'the error-code should be "(?P<code>[^"]*)"'))
def error_code_is(world: World, code: str) -> None:
    assert world.result.error_code == code, world.result


@then(parsers.re(r'the flag key should be "(?P<key>[^"]*)"'))
def flag_key_is(world: World, key: str) -> None:
    assert world.result.flag_key == key


@then(parsers.re(r'the variant should be "(?P<variant>[^"]*)"'))
def variant_is(world: World, variant: str) -> None:
    assert world.result.variant == variant, world.result


# -- metadata -------------------------------------------------------------------------------


@then("the resolved metadata should contain")
def metadata_contains(world: World, datatable: list[list[str]]) -> None:
    header, *rows = datatable
    assert header == ["key", "metadata_type", "value"], header
    for key, kind, text in rows:
        expected = parse(kind, text)
        actual = world.result.flag_metadata.get(key)
        assert same_value(actual, expected), f"metadata {key}={actual!r}, expected {expected!r}"


@then("the resolved metadata is empty")
def metadata_is_empty(world: World) -> None:
    assert dict(world.result.flag_metadata) == {}, world.result.flag_metadata
