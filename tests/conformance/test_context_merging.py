"""``contextMerging.feature``: the context our provider receives is API < transaction < client
< invocation < before hooks, merged by the SDK and passed through unaltered."""

from __future__ import annotations

from openfeature import api
from openfeature.evaluation_context import EvaluationContext
from openfeature.hook import Hook, HookContext, HookHints
from openfeature.transaction_context import ContextVarsTransactionContextPropagator
from pytest_bdd import given, parsers, scenarios, then, when

from tests.conformance.providers import RecordingProvider
from tests.conformance.world import World

scenarios("features/contextMerging.feature")

LEVELS = ("API", "Transaction", "Client", "Invocation", "Before Hooks")


class _ContextHook(Hook):
    """A before hook that returns the context entries given at the "Before Hooks" level."""

    def __init__(self, context: EvaluationContext) -> None:
        self.context = context

    def before(self, hook_context: HookContext, hints: HookHints) -> EvaluationContext:
        return self.context


def _add_entry(world: World, level: str, key: str, value: str) -> None:
    entry = EvaluationContext(attributes={key: value})
    if level == "API":
        api.set_evaluation_context(api.get_evaluation_context().merge(entry))
    elif level == "Transaction":
        api.set_transaction_context(api.get_transaction_context().merge(entry))
    elif level == "Client":
        world.client.context = world.client.context.merge(entry)
    elif level == "Invocation":
        world.add_attribute(key, value)
    elif level == "Before Hooks":
        world.extra["hook_context"] = world.extra["hook_context"].merge(entry)
    else:
        raise ValueError(f"unknown context level {level!r}")


@given("a stable provider with retrievable context is registered")
def recording_provider(world: World) -> None:
    world.provider = world.providers.register_recording(world.domain)
    api.set_transaction_context_propagator(ContextVarsTransactionContextPropagator())
    api.set_transaction_context(EvaluationContext())
    world.extra["hook_context"] = EvaluationContext()


@given(
    parsers.re(
        r'A context entry with key "(?P<key>[^"]*)" and value "(?P<value>[^"]*)" '
        r'is added to the "(?P<level>[^"]*)" level'
    )
)
def context_entry_at_level(world: World, key: str, value: str, level: str) -> None:
    _add_entry(world, level, key, value)


@given("A table with levels of increasing precedence")
def precedence_table(world: World, datatable: list[list[str]]) -> None:
    levels = [row[0] for row in datatable]
    assert tuple(levels) == LEVELS, levels
    world.extra["levels"] = levels


@given(
    parsers.re(
        r'Context entries for each level from API level down to the "(?P<level>[^"]*)" level,? '
        r'with key "(?P<key>[^"]*)" and value "(?P<value>[^"]*)"'
    )
)
def entries_down_to(world: World, level: str, key: str, value: str) -> None:
    """Every level up to ``level`` gets an entry for ``key``: the lower levels with their own
    name as value, ``level`` itself with ``value``, so only the right precedence yields
    ``value``. (Newer spec text adds a comma before "with key"; both are accepted.)"""
    levels: list[str] = world.extra["levels"]
    for current in levels[: levels.index(level) + 1]:
        _add_entry(world, current, key, value if current == level else current)


@when("Some flag was evaluated")
def some_flag_evaluated(world: World) -> None:
    world.client.add_hooks([_ContextHook(world.extra["hook_context"])])
    details = world.client.get_boolean_details("boolean-flag", False, world.context)
    assert details.error_code is None, details


@then(
    parsers.re(
        r'The merged context contains an entry with key "(?P<key>[^"]*)" '
        r'and value "(?P<value>[^"]*)"'
    )
)
def merged_context_contains(world: World, key: str, value: str) -> None:
    provider = world.provider
    assert isinstance(provider, RecordingProvider)
    assert provider.last_context is not None, "the provider saw no context"
    assert provider.last_context.attributes.get(key) == value, provider.last_context
