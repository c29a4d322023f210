"""``evaluation_v2.feature``: typed evaluation, reasons, errors, provider status, hooks in
evaluation options and async evaluation, all through ``FeatBitProvider``."""

from __future__ import annotations

import asyncio
import copy
import dataclasses
from typing import Any

import pytest
from openfeature.flag_evaluation import FlagEvaluationDetails, FlagEvaluationOptions
from openfeature.hook import Hook, HookContext, HookHints
from pytest_bdd import given, parsers, scenario, scenarios, then, when

from tests.conformance.values import evaluate_async, parse
from tests.conformance.world import World

FEATURE = "features/evaluation_v2.feature"


@pytest.mark.skip(
    reason="the scenario's flags are ordinary flags, which are evaluated against FeatBit's store "
    "every time; only experiment flags are served from the assignment ledger (reason CACHED), "
    "as tests/test_continuity*.py show"
)
@scenario(FEATURE, "CACHED reason")
def test_cached_reason() -> None:
    """Tagged ``@reason-codes-cached`` upstream (spec v0.9.0)."""


@pytest.mark.skip(
    reason="FeatBit flags carry tags, not typed key/value metadata, so metadata-flag's "
    "flagMetadata cannot be configured in FeatBit"
)
@scenario(FEATURE, "Flag metadata in evaluation details")
def test_flag_metadata_in_evaluation_details() -> None:
    """``metadata.feature`` "Returns no metadata" still runs: ordinary flags carry none."""


@pytest.mark.xfail(
    strict=True,
    reason="openfeature-sdk 0.10 FlagEvaluationDetails is a mutable dataclass; the context part "
    "of the scenario passes, the details part cannot until the SDK freezes it",
)
@scenario(FEATURE, "Evaluation context immutability")
def test_evaluation_context_immutability() -> None:
    """Runs every step; only the SDK-owned last one is expected to fail."""


scenarios(FEATURE)


# -- context ---------------------------------------------------------------------------------


@given(
    parsers.re(
        r'a context containing a key "(?P<key>[^"]*)", with type "(?P<kind>[^"]*)" '
        r'and with value "(?P<value>[^"]*)"'
    )
)
def context_entry(world: World, key: str, kind: str, value: str) -> None:
    world.add_attribute(key, parse(kind, value))


@given(parsers.re(r'a context containing a key "(?P<key>[^"]*)" with null value'))
def null_context_entry(world: World, key: str) -> None:
    world.add_attribute(key, None)


# -- provider status -------------------------------------------------------------------------


@then(parsers.re(r'the provider status should be "(?P<status>[^"]*)"'))
def provider_status_is(world: World, status: str) -> None:
    assert world.client.get_provider_status().name == status


# -- evaluation options with hooks ------------------------------------------------------------


class _OrderHook(Hook):
    """Appends ``(name, stage)`` to a shared log at every stage."""

    def __init__(self, name: str, log: list[tuple[str, str]]) -> None:
        self.name = name
        self.log = log

    def before(self, hook_context: HookContext, hints: HookHints) -> None:
        self.log.append((self.name, "before"))

    def after(
        self, hook_context: HookContext, details: FlagEvaluationDetails[Any], hints: HookHints
    ) -> None:
        self.log.append((self.name, "after"))

    def error(self, hook_context: HookContext, exception: Exception, hints: HookHints) -> None:
        self.log.append((self.name, "error"))

    def finally_after(
        self, hook_context: HookContext, details: FlagEvaluationDetails[Any], hints: HookHints
    ) -> None:
        self.log.append((self.name, "finally"))


@given("evaluation options containing specific hooks")
def options_with_hooks(world: World) -> None:
    log: list[tuple[str, str]] = []
    world.extra["hook_log"] = log
    world.extra["options"] = FlagEvaluationOptions(
        hooks=[_OrderHook("first", log), _OrderHook("second", log)]
    )


@when("the flag was evaluated with details using the evaluation options")
def evaluated_with_options(world: World) -> None:
    world.evaluate(world.extra["options"])


@then("the specified hooks should execute during evaluation")
def hooks_executed(world: World) -> None:
    stages = {(name, stage) for name, stage in world.extra["hook_log"]}
    for name in ("first", "second"):
        assert {(name, "before"), (name, "after"), (name, "finally")} <= stages, stages
    assert world.result.error_code is None, world.result


@then("the hook order should be maintained")
def hook_order(world: World) -> None:
    """Spec 4.4.2: before hooks run in order; after and finally hooks in reverse."""
    assert world.extra["hook_log"] == [
        ("first", "before"),
        ("second", "before"),
        ("second", "after"),
        ("first", "after"),
        ("second", "finally"),
        ("first", "finally"),
    ]


# -- immutability ----------------------------------------------------------------------------


@given("an evaluation context with modifiable data")
def modifiable_context(world: World) -> None:
    world.attributes = {"email": "ballmer@macrosoft.com", "roles": ["admin"], "age": 65}
    world.extra["original"] = copy.deepcopy(world.attributes)


@then("the original evaluation context should remain unmodified")
def context_unmodified(world: World) -> None:
    assert world.attributes == world.extra["original"]


@then("the evaluation details should be immutable")
def details_immutable(world: World) -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        world.result.value = "changed"


# -- async -----------------------------------------------------------------------------------


@when("the flag was evaluated with details asynchronously")
def evaluated_async(world: World) -> None:
    assert world.flag is not None
    world.details = asyncio.run(evaluate_async(world.client, world.flag, world.context))


@then("the evaluation should complete without blocking")
def completed_without_blocking(world: World) -> None:
    """The awaitable resolved on the event loop; our async resolvers do no blocking I/O."""
    assert world.result.error_code is None, world.result
