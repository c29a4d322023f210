"""Property-based tests: context mapping, unit ID validation and policy resolution hold for
any input hypothesis can think of, and never raise."""

from __future__ import annotations

import string
from datetime import datetime, timezone
from typing import Any

from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import ErrorCode

from featbit_experiments.featbit_user import RESERVED_ATTRIBUTES, featbit_user
from featbit_experiments.policy import Declaration, Refusal, UnitPolicy
from featbit_experiments.units import DEFAULT_MAX_ID_LENGTH, UnitCatalog, UnitKey, UnitKeyProblem

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


#: What the default ID pattern allows, spelled out apart from the regular expression.
ID_FIRST = string.ascii_letters + string.digits
ID_CHARS = ID_FIRST + "._:@/+=-"
MAX_ID = DEFAULT_MAX_ID_LENGTH
#: Any length, with the bound's neighbours drawn often.
id_lengths = st.one_of(
    st.integers(1, MAX_ID + 8), st.sampled_from([1, MAX_ID - 1, MAX_ID, MAX_ID + 1])
)


@st.composite
def well_formed_ids(draw: st.DrawFn, lengths: st.SearchStrategy[int] = id_lengths) -> str:
    """IDs of the allowed characters, of any length around the bound."""
    length = draw(lengths)
    rest = draw(st.text(alphabet=ID_CHARS, min_size=length - 1, max_size=length - 1))
    return draw(st.sampled_from(ID_FIRST)) + rest


def looks_valid(value: str) -> bool:
    return 0 < len(value) <= MAX_ID and value[0] in ID_FIRST and all(c in ID_CHARS for c in value)


@example(value="c" * MAX_ID).via("the longest ID")
@example(value="c" * (MAX_ID + 1)).via("one past the longest")
@given(value=st.one_of(st.text(max_size=MAX_ID + 8), well_formed_ids()))
def test_an_id_is_valid_exactly_when_printable_bounded_and_whitespace_free(value: str) -> None:
    """Both ways: what is accepted is bounded, printable ASCII without whitespace, and what
    is not is refused (arbitrary text lands mostly on the refused side, well-formed IDs on
    both, around the length bound)."""
    problem = catalog["conversation"].problem_with(value)
    event("accepted" if problem is None else "refused")
    if len(value) in (MAX_ID, MAX_ID + 1) and looks_valid(value[:MAX_ID]):
        event(f"well-formed, {len(value)} characters")
    assert (problem is None) == looks_valid(value), (value, problem)
    if problem is None:
        assert value.isascii() and value.isprintable()
        assert not any(c.isspace() for c in value)
    elif looks_valid(value[:MAX_ID]) and len(value) > MAX_ID:
        assert problem == f"conversation ID is longer than {MAX_ID} characters"


defects = st.one_of(
    st.sampled_from(" \t\n\r\x0b\x0c\x85\xa0\u2028\u3000"),  # whitespace
    st.characters(codec="ascii", categories=["Cc"]),  # control characters
    st.characters(min_codepoint=0x80),  # beyond ASCII (letters, digits, emoji...)
    st.sampled_from("<>\"'`;,!#$%&*()[]{}|\\^~?"),  # punctuation the pattern leaves out
)


@given(
    value=well_formed_ids(st.integers(1, MAX_ID - 1)),
    defect=defects,
    where=st.integers(0, MAX_ID),
)
def test_an_id_within_the_bound_with_one_bad_character_is_refused(
    value: str, defect: str, where: int
) -> None:
    at = where % (len(value) + 1)
    refused = value[:at] + defect + value[at:]
    assert len(refused) <= MAX_ID
    assert catalog["conversation"].problem_with(refused) is not None


@given(value=st.one_of(st.text(alphabet=" \t\n\r\u3000", max_size=5), st.integers(), st.none()))
def test_a_blank_or_non_string_id_is_refused(value: Any) -> None:
    assert catalog["conversation"].problem_with(value) is not None


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
