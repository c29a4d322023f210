"""``hooks.feature``: hooks see the evaluation details our provider produced (value, variant,
reason, error code), including for a missing flag and a type mismatch."""

from __future__ import annotations

from typing import Any

from openfeature.flag_evaluation import FlagEvaluationDetails
from openfeature.hook import Hook, HookContext, HookHints
from pytest_bdd import given, parsers, scenarios, then

from tests.conformance.values import parse, parse_optional_string, same_value
from tests.conformance.world import World

scenarios("features/hooks.feature")


class RecordingHook(Hook):
    """Keeps the details each stage was called with, keyed by the stage names the feature file
    uses (``before``, ``after``, ``error``, ``finally``); before and error get no details."""

    def __init__(self) -> None:
        self.calls: dict[str, FlagEvaluationDetails[Any] | None] = {}

    def before(self, hook_context: HookContext, hints: HookHints) -> None:
        self.calls["before"] = None

    def after(
        self, hook_context: HookContext, details: FlagEvaluationDetails[Any], hints: HookHints
    ) -> None:
        self.calls["after"] = details

    def error(self, hook_context: HookContext, exception: Exception, hints: HookHints) -> None:
        self.calls["error"] = None

    def finally_after(
        self, hook_context: HookContext, details: FlagEvaluationDetails[Any], hints: HookHints
    ) -> None:
        self.calls["finally"] = details


def _hook(world: World) -> RecordingHook:
    hook = world.extra["hook"]
    assert isinstance(hook, RecordingHook)
    return hook


@given("a client with added hook")
def client_with_hook(world: World) -> None:
    hook = RecordingHook()
    world.extra["hook"] = hook
    world.client.add_hooks([hook])


@then(parsers.re(r'the "(?P<stage>[^"]*)" hook should have been executed'))
def hook_executed(world: World, stage: str) -> None:
    assert stage in _hook(world).calls, _hook(world).calls


@then(parsers.re(r'the "(?P<stages>[^"]*)" hooks should be called with evaluation details'))
def hooks_saw_details(world: World, stages: str, datatable: list[list[str]]) -> None:
    header, *rows = datatable
    assert header == ["data_type", "key", "value"], header
    calls = _hook(world).calls
    for stage in (s.strip() for s in stages.split(",")):
        details = calls.get(stage)
        assert details is not None, f"{stage} hook did not receive details: {calls}"
        for data_type, key, text in rows:
            expected = (
                parse_optional_string(text) if data_type == "string" else parse(data_type, text)
            )
            actual = getattr(details, key)
            if key == "value":
                assert same_value(actual, expected), f"{stage}: {key}={actual!r}"
            else:
                assert actual == expected, f"{stage}: {key}={actual!r}, expected {expected!r}"
