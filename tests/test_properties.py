"""Property-based tests: context mapping, unit ID validation and policy resolution hold for
any input hypothesis can think of, and never raise."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import ErrorCode

from featbit_experiments.featbit_user import RESERVED_ATTRIBUTES, featbit_user
from featbit_experiments.policy import Declaration, Refusal, UnitPolicy
from featbit_experiments.units import UnitCatalog, UnitKey, UnitKeyProblem

catalog = UnitCatalog()
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(),
    st.datetimes(timezones=st.one_of(st.none(), st.just(timezone.utc))),
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=4,
)
attributes = st.dictionaries(st.text(min_size=1, max_size=20), values, max_size=8)


@given(key=st.text(min_size=1).filter(str.strip), attrs=attributes)
def test_featbit_user_is_all_strings_and_keeps_the_key(key: str, attrs: dict[str, Any]) -> None:
    user = featbit_user(key, attrs)
    assert user["key"] == key
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in user.items())
    assert user["name"].strip()
    for name, value in attrs.items():
        if name.lower() in RESERVED_ATTRIBUTES:
            continue
        if value is None or isinstance(value, (list, dict)):
            assert name not in user
        elif isinstance(value, bool):
            assert user[name] in ("true", "false")
        elif isinstance(value, datetime):
            assert datetime.fromisoformat(user[name]).tzinfo is not None


@given(attrs=attributes, targeting_key=st.one_of(st.none(), st.text()))
def test_reading_any_unit_never_raises_and_valid_ids_come_from_the_context(
    attrs: dict[str, Any], targeting_key: str | None
) -> None:
    context = EvaluationContext(targeting_key, attrs)
    for unit in catalog:
        result = catalog.read(unit, context)
        if isinstance(result, UnitKey):
            assert unit.problem_with(result.value) is None
            assert result.value in (
                [attrs.get(name) for name in unit.attribute_names] + [targeting_key]
            )
        else:
            assert isinstance(result, UnitKeyProblem)
            assert result.error_code in (
                ErrorCode.TARGETING_KEY_MISSING,
                ErrorCode.INVALID_CONTEXT,
            )


@given(value=st.text(max_size=300))
def test_a_valid_id_is_printable_bounded_and_whitespace_free(value: str) -> None:
    unit = catalog["conversation"]
    if unit.problem_with(value) is None:
        assert 0 < len(value) <= unit.max_length
        assert value.isascii() and value.isprintable()
        assert not any(c.isspace() for c in value)


unit_names = st.sampled_from(["request", "conversation", "user", "account", "workflow"])
tags = st.lists(st.one_of(unit_names.map(lambda u: f"unit:{u}"), st.text(max_size=12)), max_size=4)


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(declared=st.one_of(st.none(), unit_names), flag_tags=tags)
def test_policy_resolution_never_picks_a_side(declared: str | None, flag_tags: list[str]) -> None:
    from featbit_experiments import Experiment

    experiments = [] if declared is None or declared == "request" else [Experiment("f", declared)]
    policy = UnitPolicy(experiments)
    result = policy.declaration_for("f", flag_tags)
    tag_units = {t.removeprefix("unit:") for t in flag_tags if t.startswith("unit:")}
    code_unit = experiments[0].unit if experiments else None
    if isinstance(result, Declaration):
        units_said = tag_units | ({code_unit} if code_unit else set())
        assert units_said == {result.unit.name}
        assert result.unit.name != "request"
    elif isinstance(result, Refusal):
        assert len(tag_units | ({code_unit} if code_unit else set())) > 1 or tag_units == {
            "request"
        }
    else:
        assert not tag_units and code_unit is None
