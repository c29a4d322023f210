"""``evaluation.feature`` (the deprecated v1 suite): typed values and details, the
``context-aware`` flag, FLAG_NOT_FOUND and TYPE_MISMATCH, with its own step wording."""

from __future__ import annotations

from typing import Any

from openfeature.evaluation_context import EvaluationContext
from pytest_bdd import parsers, scenarios, then, when

from tests.conformance.values import FlagRequest, Kind, parse, same_value
from tests.conformance.world import World

scenarios("features/evaluation.feature")

_KINDS = r"(?P<kind>boolean|string|integer|float|object)"
# A value written quoted ("false", "bye") or bare (1, 0.1), as the v1 steps do.
_VALUE = r'(?:"(?P<quoted>[^"]*)"|(?P<bare>[^",\s]+))'


def _text(quoted: str | None, bare: str | None) -> str:
    text = quoted if quoted is not None else bare
    assert text is not None
    return text


def _flag(world: World, kind: str, key: str, default: Any) -> None:
    world.flag = FlagRequest(Kind.named(kind), key, default)
    world.evaluate()


@when(
    parsers.re(
        rf'an? {_KINDS} flag with key "(?P<key>[^"]*)" is evaluated '
        rf"(?:with details and )?(?:with )?default value {_VALUE}"
    )
)
def flag_evaluated(world: World, kind: str, key: str, quoted: str | None, bare: str | None) -> None:
    _flag(world, kind, key, parse(kind, _text(quoted, bare)))


@when(
    parsers.re(
        r'an object flag with key "(?P<key>[^"]*)" is evaluated '
        r"(?:with details and )?(?:with )?a null default value"
    )
)
def object_flag_evaluated(world: World, key: str) -> None:
    _flag(world, "object", key, None)


@then(parsers.re(rf"the resolved {_KINDS} value should be {_VALUE}"))
def resolved_value(world: World, kind: str, quoted: str | None, bare: str | None) -> None:
    expected = parse(kind, _text(quoted, bare))
    assert same_value(world.result.value, expected), world.result


@then(
    parsers.re(
        rf"the resolved {_KINDS} details value should be {_VALUE}, "
        r'the variant should be "(?P<variant>[^"]*)", '
        r'and the reason should be "(?P<reason>[^"]*)"'
    )
)
def resolved_details(
    world: World, kind: str, quoted: str | None, bare: str | None, variant: str, reason: str
) -> None:
    expected = parse(kind, _text(quoted, bare))
    details = world.result
    assert same_value(details.value, expected), details
    assert (details.variant, details.reason) == (variant, reason), details


@then(
    parsers.re(
        r"the resolved object (?:details )?value should be contain fields "
        r'"(?P<f1>[^"]*)", "(?P<f2>[^"]*)", and "(?P<f3>[^"]*)", '
        r'with values "(?P<v1>[^"]*)", "(?P<v2>[^"]*)" and (?P<v3>\d+), respectively'
    )
)
def resolved_object(world: World, f1: str, f2: str, f3: str, v1: str, v2: str, v3: str) -> None:
    value = world.result.value
    assert isinstance(value, dict), world.result
    assert value == {f1: parse("boolean", v1), f2: v2, f3: int(v3)}


@then(
    parsers.re(
        r'the variant should be "(?P<variant>[^"]*)", and the reason should be "(?P<reason>[^"]*)"'
    )
)
def variant_and_reason(world: World, variant: str, reason: str) -> None:
    assert (world.result.variant, world.result.reason) == (variant, reason), world.result


# -- context-aware -----------------------------------------------------------------------------


@when(
    parsers.re(
        r'context contains keys "(?P<k1>[^"]*)", "(?P<k2>[^"]*)", "(?P<k3>[^"]*)", '
        r'"(?P<k4>[^"]*)" with values "(?P<v1>[^"]*)", "(?P<v2>[^"]*)", (?P<v3>\d+), '
        r'"(?P<v4>[^"]*)"'
    )
)
def context_with_keys(
    world: World, k1: str, k2: str, k3: str, k4: str, v1: str, v2: str, v3: str, v4: str
) -> None:
    """Quoted values are strings and the bare one an integer, as the step writes them."""
    world.attributes = {k1: v1, k2: v2, k3: int(v3), k4: v4}


@when(
    parsers.re(
        r'a flag with key "(?P<key>[^"]*)" is evaluated with default value "(?P<default>[^"]*)"'
    )
)
def string_flag_evaluated(world: World, key: str, default: str) -> None:
    _flag(world, "string", key, default)


@then(parsers.re(r'the resolved string response should be "(?P<value>[^"]*)"'))
def string_response(world: World, value: str) -> None:
    assert world.result.value == value, world.result


@then(parsers.re(r'the resolved flag value is "(?P<value>[^"]*)" when the context is empty'))
def value_with_empty_context(world: World, value: str) -> None:
    assert world.flag is not None
    details = world.client.get_string_details(
        world.flag.key, world.flag.default, EvaluationContext()
    )
    assert details.value == value, details


# -- errors ------------------------------------------------------------------------------------


@when(
    parsers.re(
        r'a non-existent string flag with key "(?P<key>[^"]*)" is evaluated with details '
        r'and a default value "(?P<default>[^"]*)"'
    )
)
def missing_flag_evaluated(world: World, key: str, default: str) -> None:
    _flag(world, "string", key, default)


@when(
    parsers.re(
        r'a string flag with key "(?P<key>[^"]*)" is evaluated as an integer, with details '
        r"and a default value (?P<default>\d+)"
    )
)
def string_flag_as_integer(world: World, key: str, default: str) -> None:
    _flag(world, "integer", key, int(default))


@then(parsers.re(rf"the default {_KINDS} value should be returned"))
def default_returned(world: World, kind: str) -> None:
    assert world.flag is not None and world.flag.kind is Kind.named(kind)
    assert same_value(world.result.value, world.flag.default), world.result


@then(
    parsers.re(
        r"the reason should indicate an error and the error code should indicate "
        r'(?:a missing flag|a type mismatch) with "(?P<code>[^"]*)"'
    )
)
def error_reason_and_code(world: World, code: str) -> None:
    assert (world.result.reason, world.result.error_code) == ("ERROR", code), world.result
