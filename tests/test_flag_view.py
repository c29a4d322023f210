"""What the provider reads from a FeatBit flag as fbclient stores it (``FlagView``)."""

from __future__ import annotations

from typing import Any

import pytest
from openfeature.flag_evaluation import FlagType

from featbit_experiments.flag_view import FlagView, Rollout, ValueParseError, parse_value


def split(*ranges: list[float], dispatch_key: object = None) -> dict[str, Any]:
    rollout: dict[str, Any] = {
        "variations": [{"id": f"v{i}", "rollout": r} for i, r in enumerate(ranges)]
    }
    if dispatch_key is not None:
        rollout["dispatchKey"] = dispatch_key
    return rollout


def test_a_view_reads_every_part_of_a_featbit_flag() -> None:
    flag = {
        "id": "flag-id",
        "key": "prompt-test",
        "timestamp": 1712,
        "variationType": "string",
        "isEnabled": True,
        "tags": ["unit:conversation", 7],
        "variations": [{"id": "v-a", "name": "control", "value": "A"}, {"id": "v-b", "value": "B"}],
        "fallthrough": split([0, 0.5], [0.5, 1], dispatch_key="conversationId"),
        "rules": [
            {"name": "beta", "id": "r-1", **split([0, 1])},
            {"id": "r-2", **split([0, 0.3], [0.3, 1], dispatch_key=5)},
        ],
        "targetUsers": [{"variationId": "v-a", "keyIds": ["u-1"]}],
        "disabledVariationId": "v-b",
    }
    view = FlagView.of(flag)
    assert view == FlagView(
        key="prompt-test",
        version=1712,
        variation_type="string",
        enabled=True,
        tags=("unit:conversation",),
        variation_names={"v-a": "control"},
        raw_values={"v-a": "A", "v-b": "B"},
        rollouts=(
            Rollout("fallthrough", "conversationId", True),
            Rollout("rule 'beta'", None, False),
            Rollout("rule 'r-2'", None, True),
        ),
        has_targets=True,
        disabled_variation_id="v-b",
    )
    assert view.source is flag


def test_a_sparse_flag_is_read_with_featbits_defaults() -> None:
    view = FlagView.of(
        {"id": "flag-id", "variations": [{"id": "v-a"}], "targetUsers": [{"keyIds": []}]}
    )
    assert view == FlagView(
        key="flag-id",
        version=0,
        variation_type="string",
        enabled=False,
        tags=(),
        variation_names={},
        raw_values={"v-a": ""},
        rollouts=(Rollout("fallthrough", None, False),),
        has_targets=False,
        disabled_variation_id="",
    )
    assert view.is_static


def test_only_variations_with_a_positive_width_make_a_split() -> None:
    assert not FlagView.of({"key": "f", "fallthrough": split([0, 1], [1, 1])}).rollouts[0].is_split
    malformed = {"variations": [{"id": "v0", "rollout": [0, 0.5]}, {"id": "v1"}]}
    assert not FlagView.of({"key": "f", "fallthrough": malformed}).rollouts[0].is_split
    assert FlagView.of({"key": "f", "fallthrough": split([0, 0.1], [0.1, 1])}).rollouts[0].is_split


def test_a_flag_serves_only_callers_of_its_type() -> None:
    text = FlagView.of({"key": "f", "variationType": "string"})
    assert text.accepts(FlagType.STRING)
    assert not text.accepts(FlagType.BOOLEAN)
    number = FlagView.of({"key": "f", "variationType": "number"})
    assert number.accepts(FlagType.INTEGER) and number.accepts(FlagType.FLOAT)
    assert not number.accepts(FlagType.STRING)


@pytest.mark.parametrize(
    ("variation_type", "raw", "expected"),
    [
        ("boolean", " TRUE ", True),
        ("boolean", "false", False),
        ("number", "3", 3),
        ("number", "-12", -12),
        ("number", "3.0", 3.0),
        ("number", "2.5", 2.5),
        ("number", "1e3", 1000.0),
        ("number", "2E2", 200.0),
        ("json", '{"a": 1}', {"a": 1}),
        ("json", "[1]", [1]),
        ("string", " as is ", " as is "),
    ],
)
def test_a_wire_value_parses_as_its_flag_type(variation_type: str, raw: str, expected: Any) -> None:
    value = parse_value(variation_type, raw, "f")
    assert value == expected
    assert type(value) is type(expected)


@pytest.mark.parametrize(
    ("variation_type", "raw", "reason"),
    [
        ("boolean", "yes", "'yes' is not a boolean"),
        ("json", "3", "JSON value is not an object or array"),
    ],
)
def test_a_value_that_does_not_parse_says_which_flag_and_why(
    variation_type: str, raw: str, reason: str
) -> None:
    view = FlagView.of(
        {
            "key": "prompt-test",
            "variationType": variation_type,
            "variations": [{"id": "v", "value": raw}],
        }
    )
    with pytest.raises(ValueParseError) as raised:
        view.value_of("v")
    assert str(raised.value) == (
        f"flag 'prompt-test': variation value does not parse as {variation_type}: {reason}"
    )


def test_a_variant_is_named_by_configuration_then_featbit_then_its_string_value() -> None:
    view = FlagView.of(
        {
            "key": "f",
            "variations": [
                {"id": "v-a", "name": "control", "value": "gpt-4o"},
                {"id": "v-b", "value": "gpt-4o-mini"},
                {"id": "v-c", "value": ""},
            ],
        }
    )
    assert view.variant_name("v-a", {"v-a": "configured"}) == "configured"
    assert view.variant_name("v-a", {"gpt-4o": "by value"}) == "by value"
    assert view.variant_name("v-a", {}) == "control"
    assert view.variant_name("v-b", {}) == "gpt-4o-mini"
    assert view.variant_name("v-c", {}) == "v-c"
    number = FlagView.of(
        {"key": "n", "variationType": "number", "variations": [{"id": "v", "value": "3"}]}
    )
    assert number.variant_name("v", {}) == "v"
