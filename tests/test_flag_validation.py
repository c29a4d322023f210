"""The flag validator refuses what FeatBit refuses (its back-end's create-flag checks and its
targeting page's checks), so offline data and tests never rely on a flag FeatBit cannot hold."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from featbit_experiments import Flag, Rule, when
from featbit_experiments.flag_validation import flag_problems


def valid() -> dict[str, Any]:
    return Flag.string(
        "model-route",
        ["small", "large"],
        split={"small": 50, "large": 50},
        rules=[Rule("vip", [when("plan", "Equal", "enterprise")], serve="large")],
        targets={"small": ["u-1"]},
    ).to_featbit()


def test_a_built_flag_has_no_problems() -> None:
    assert flag_problems(valid()) == []


def variation_ids(flag: dict[str, Any]) -> list[str]:
    return [v["id"] for v in flag["variations"]]


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(flag: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target: Any = flag
        for part in parents:
            target = target[int(part)] if part.isdigit() else target[part]
        target[int(last) if last.isdigit() else last] = value

    return change


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (_set("key", ""), "key is required"),
        (_set("key", "has space"), "letters, digits"),
        (_set("key", "k" * 129), "letters, digits"),
        (_set("name", " "), "name is required"),
        (_set("variationType", "text"), "variationType 'text'"),
        (_set("variations", []), "non-empty list"),
        (_set("variations.0.name", ""), "needs a name"),
        (_set("variations.0.id", ""), "needs an id"),
        (_set("variations.1.id", None), "needs an id"),
        (_set("disabledVariationId", "nope"), "disabledVariationId 'nope'"),
        (_set("fallthrough.variations", []), "serves no variation"),
        (_set("fallthrough.variations.0.id", "nope"), "serves unknown variation 'nope'"),
        (_set("fallthrough.variations.1.rollout", [0.5, 0.9]), "not [0, 1]"),
        (_set("fallthrough.variations.1.rollout", [0.6, 1.0]), "gap at 0.5"),
        (_set("fallthrough.variations.1.rollout", [0.4, 1.0]), "overlap at 0.5"),
        (_set("fallthrough.variations.1.rollout", [0.5, 1.5]), "not a [low, high] range"),
        (_set("fallthrough.variations.1.exptRollout", 2), "exptRollout"),
        (_set("rules.0.conditions", []), "has no conditions"),
        (_set("rules.0.conditions.0.op", "Resembles"), "unknown operator 'Resembles'"),
        (_set("rules.0.conditions.0.value", ""), "needs a value"),
        (_set("rules.0.variations.0.id", "nope"), "rule 'vip' serves unknown variation"),
        (_set("rules.0.variations.0.rollout", [0, 0.5]), "rule 'vip': rollouts cover"),
        (_set("targetUsers.0.variationId", "nope"), "targetUsers serve unknown variation"),
        (_set("isEnabled", "yes"), "isEnabled"),
        (_set("updatedAt", "yesterday"), "updatedAt"),
        (_set("tags", "unit:user"), "tags"),
    ],
)
def test_featbit_would_refuse(change: Callable[[dict[str, Any]], None], problem: str) -> None:
    flag = valid()
    change(flag)
    problems = flag_problems(flag)
    assert any(problem in p for p in problems), problems


def test_an_is_one_of_condition_needs_a_list_of_values() -> None:
    flag = valid()
    flag["rules"][0]["conditions"][0].update(op="IsOneOf", value="enterprise")
    assert any("non-empty JSON list" in p for p in flag_problems(flag))


def test_is_true_needs_no_value() -> None:
    flag = valid()
    flag["rules"][0]["conditions"][0].update(op="IsTrue", value="")
    assert flag_problems(flag) == []


def test_a_segment_condition_needs_segment_ids() -> None:
    flag = valid()
    flag["rules"][0]["conditions"][0].update(property="User is in segment", op="", value="[]")
    assert any("segment ids" in p for p in flag_problems(flag))


@pytest.mark.parametrize(
    ("variation_type", "value"),
    [("boolean", "True"), ("number", "fast"), ("number", "NaN"), ("json", "{oops")],
)
def test_a_value_that_does_not_parse_as_the_flag_type_is_refused(
    variation_type: str, value: str
) -> None:
    flag = valid()
    flag["variationType"] = variation_type
    flag["variations"][0]["value"] = value
    assert any(f"is not a {variation_type}" in p for p in flag_problems(flag))


def test_every_problem_is_listed_at_once() -> None:
    flag = valid()
    flag["name"] = ""
    flag["variations"][0]["name"] = ""
    assert len(flag_problems(flag)) == 2
