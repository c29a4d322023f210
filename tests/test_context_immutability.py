"""The provider never changes the caller's evaluation context (OpenFeature spec 1.4.14.1).

The conformance scenario "Evaluation context immutability" is a strict xfail for a part the
SDK owns (mutable evaluation details), so it cannot tell whether the provider's own step holds.
These tests do: every resolver of every type, sync and async, called directly and through the
OpenFeature client, on experiment flags (the unit ID read, aliases copied to the canonical
attribute for FeatBit, refusals) and ordinary flags, and ``track``. The targeting key, the
attributes mapping (the same object, the same items) and every nested list and dict are
checked against a deep copy taken before the call.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from openfeature.client import OpenFeatureClient
from openfeature.evaluation_context import EvaluationContext
from openfeature.track import TrackingEventDetails

from featbit_experiments import Experiment, FeatBitProvider, Metric, UnitPolicy
from tests.support import flags as fl

#: One experiment (by conversation) and one ordinary flag per OpenFeature type.
TYPES: dict[str, list[Any]] = {
    "boolean": [True, False],
    "string": ["control", "treatment"],
    "integer": [3, 5],
    "float": [0.25, 0.75],
    "object": [{"model": "a", "k": [1]}, {"model": "b", "k": [2]}],
}
DEFAULTS: dict[str, Any] = {
    "boolean": False,
    "string": "fallback",
    "integer": 0,
    "float": 0.0,
    "object": {"model": "fallback"},
}
POLICY = UnitPolicy(
    [Experiment(f"exp-{kind}", "conversation") for kind in TYPES]
    + [Experiment("exp-user", "user")],
    [Metric("resolved", "conversation", tuple(f"exp-{kind}" for kind in TYPES))],
)
FLAGS = (
    [fl.flag(f"exp-{kind}", values) for kind, values in TYPES.items()]
    + [fl.flag(f"plain-{kind}", values, dispatch_key="plan") for kind, values in TYPES.items()]
    + [fl.flag("exp-user", ["a", "b"])]
)


def nested() -> dict[str, Any]:
    return {"roles": ["admin"], "profile": {"plan": "pro", "tags": ["beta"]}, "age": 65}


#: Contexts that reach each path: the canonical attribute, an alias only (copied to the
#: canonical name for FeatBit), aliases that disagree, a missing and a malformed unit ID.
CONTEXTS: dict[str, Callable[[], EvaluationContext]] = {
    "canonical": lambda: EvaluationContext(
        "user-1", {"conversationId": "conv-1", "userId": "user-1", "plan": "pro", **nested()}
    ),
    "alias": lambda: EvaluationContext(
        "user-1", {"thread_id": "conv-2", "plan": "pro", **nested()}
    ),
    "disagreeing": lambda: EvaluationContext(
        "user-1", {"conversationId": "conv-3", "thread_id": "conv-4", **nested()}
    ),
    "missing": lambda: EvaluationContext("user-1", nested()),
    "malformed": lambda: EvaluationContext("user 1", {"conversationId": "c 1\n", **nested()}),
    "no-targeting-key": lambda: EvaluationContext(None, {"conversationId": "conv-5", **nested()}),
}


class Snapshot:
    """A context's state before a call, to compare with after it: values and identities."""

    def __init__(self, context: EvaluationContext) -> None:
        self.context = context
        self.targeting_key = context.targeting_key
        self.attributes = context.attributes
        self.copy = copy.deepcopy(dict(context.attributes))
        self.objects = {
            name: value
            for name, value in context.attributes.items()
            if isinstance(value, (list, dict))
        }

    def assert_unchanged(self, what: str) -> None:
        assert self.context.targeting_key == self.targeting_key, what
        assert self.context.attributes is self.attributes, what
        assert dict(self.context.attributes) == self.copy, what
        for name, value in self.objects.items():
            assert self.context.attributes[name] is value, (what, name)


def sync_resolvers(provider: FeatBitProvider) -> dict[str, Callable[..., Any]]:
    return {
        "boolean": provider.resolve_boolean_details,
        "string": provider.resolve_string_details,
        "integer": provider.resolve_integer_details,
        "float": provider.resolve_float_details,
        "object": provider.resolve_object_details,
    }


def async_resolvers(provider: FeatBitProvider) -> dict[str, Callable[..., Awaitable[Any]]]:
    return {
        "boolean": provider.resolve_boolean_details_async,
        "string": provider.resolve_string_details_async,
        "integer": provider.resolve_integer_details_async,
        "float": provider.resolve_float_details_async,
        "object": provider.resolve_object_details_async,
    }


def client_getters(client: OpenFeatureClient) -> dict[str, Callable[..., Any]]:
    return {
        "boolean": client.get_boolean_details,
        "string": client.get_string_details,
        "integer": client.get_integer_details,
        "float": client.get_float_details,
        "object": client.get_object_details,
    }


def client_async_getters(client: OpenFeatureClient) -> dict[str, Callable[..., Awaitable[Any]]]:
    return {
        "boolean": client.get_boolean_details_async,
        "string": client.get_string_details_async,
        "integer": client.get_integer_details_async,
        "float": client.get_float_details_async,
        "object": client.get_object_details_async,
    }


def flag_keys(kind: str) -> list[str]:
    keys = [f"exp-{kind}", f"plain-{kind}"]
    return [*keys, "exp-user"] if kind == "string" else keys


@pytest.fixture
def provider(make_provider: Callable[..., FeatBitProvider]) -> FeatBitProvider:
    return make_provider(FLAGS, POLICY)


@pytest.mark.parametrize("shape", CONTEXTS)
def test_sync_resolvers_leave_the_context_as_it_was(provider: FeatBitProvider, shape: str) -> None:
    served = 0
    for kind, resolve in sync_resolvers(provider).items():
        for key in flag_keys(kind):
            for _ in range(2):  # a repeat turn may take another path (remembered IDs)
                snapshot = Snapshot(CONTEXTS[shape]())
                details = resolve(key, copy.deepcopy(DEFAULTS[kind]), snapshot.context)
                snapshot.assert_unchanged(f"{key} ({kind})")
                served += details.error_code is None
    assert served > 0 or shape in ("missing", "malformed")


@pytest.mark.parametrize("shape", CONTEXTS)
async def test_async_resolvers_leave_the_context_as_it_was(
    provider: FeatBitProvider, shape: str
) -> None:
    for kind, resolve in async_resolvers(provider).items():
        for key in flag_keys(kind):
            for _ in range(2):
                snapshot = Snapshot(CONTEXTS[shape]())
                await resolve(key, copy.deepcopy(DEFAULTS[kind]), snapshot.context)
                snapshot.assert_unchanged(f"{key} ({kind}, async)")


@pytest.mark.parametrize("shape", CONTEXTS)
def test_the_openfeature_client_and_track_leave_the_context_as_it_was(
    provider: FeatBitProvider,
    of_client: Callable[[FeatBitProvider], OpenFeatureClient],
    shape: str,
) -> None:
    """Through the client the provider sees a merged copy whose nested values are still the
    caller's (the SDK's merge is shallow), so a provider changing them would show here."""
    client = of_client(provider)
    for kind, get in client_getters(client).items():
        for key in flag_keys(kind):
            snapshot = Snapshot(CONTEXTS[shape]())
            get(key, copy.deepcopy(DEFAULTS[kind]), snapshot.context)
            snapshot.assert_unchanged(f"{key} ({kind}, client)")
            asynchronous = Snapshot(CONTEXTS[shape]())
            asyncio.run(
                client_async_getters(client)[kind](
                    key, copy.deepcopy(DEFAULTS[kind]), asynchronous.context
                )
            )
            asynchronous.assert_unchanged(f"{key} ({kind}, client async)")
    snapshot = Snapshot(CONTEXTS[shape]())
    details = TrackingEventDetails(1.0, {"turns": 2, "tags": ["x"]})
    tracked = copy.deepcopy(details.attributes)
    client.track("resolved", snapshot.context, details)
    provider.track("resolved", snapshot.context, details)
    snapshot.assert_unchanged("track")
    assert details.attributes == tracked and details.value == 1.0
