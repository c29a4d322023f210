"""Reading a unit's ID from an evaluation context never guesses."""

from __future__ import annotations

import pytest
from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import ErrorCode

from featbit_experiments.units import (
    DEFAULT_MAX_ID_LENGTH,
    Unit,
    UnitCatalog,
    UnitKey,
    UnitKeyProblem,
)

catalog = UnitCatalog()
conversation = catalog["conversation"]
user = catalog["user"]


def read(unit: Unit, targeting_key: str | None = None, **attributes: object) -> object:
    return catalog.read(unit, EvaluationContext(targeting_key, attributes))  # type: ignore[arg-type]


def test_canonical_attribute_is_read_with_its_source() -> None:
    key = read(conversation, conversationId="c-1")
    assert key == UnitKey("conversation", "c-1", "conversationId")
    assert isinstance(key, UnitKey) and key.context_id == "conversation:c-1"


def test_alias_is_accepted_for_the_same_unit() -> None:
    assert read(conversation, thread_id="t-9") == UnitKey("conversation", "t-9", "thread_id")


def test_missing_id_is_targeting_key_missing_not_another_id() -> None:
    problem = read(conversation, "user-1", userId="user-1")
    assert isinstance(problem, UnitKeyProblem)
    assert problem.error_code == ErrorCode.TARGETING_KEY_MISSING
    assert problem.guardrail == "missing_unit_id"


def test_blank_id_counts_as_missing() -> None:
    problem = read(conversation, conversationId="   ")
    assert isinstance(problem, UnitKeyProblem)
    assert problem.error_code == ErrorCode.TARGETING_KEY_MISSING


def test_malformed_id_is_invalid_context() -> None:
    for bad in ["c 1", "c\n1", "ü-1", "x" * 129, "<script>"]:
        problem = read(conversation, conversationId=bad)
        assert isinstance(problem, UnitKeyProblem), bad
        assert problem.error_code == ErrorCode.INVALID_CONTEXT
        assert bad not in problem.message


def test_an_id_of_exactly_the_maximum_length_is_accepted_one_more_is_refused() -> None:
    longest = "c" * DEFAULT_MAX_ID_LENGTH
    assert conversation.problem_with(longest) is None
    assert read(conversation, conversationId=longest) == UnitKey(
        "conversation", longest, "conversationId"
    )

    problem = read(conversation, conversationId=longest + "c")

    assert isinstance(problem, UnitKeyProblem)
    assert problem.error_code == ErrorCode.INVALID_CONTEXT
    assert problem.message == (
        f"conversation ID is longer than {DEFAULT_MAX_ID_LENGTH} characters "
        "(attribute conversationId)"
    )


@pytest.mark.parametrize("max_length", [1, 8, 200])
def test_a_units_own_length_bound_is_inclusive(max_length: int) -> None:
    unit = Unit("ticket", "ticketId", max_length=max_length)
    assert unit.problem_with("T" * max_length) is None
    assert unit.problem_with("T" * (max_length + 1)) == (
        f"ticket ID is longer than {max_length} characters"
    )


def test_non_string_id_is_invalid_context() -> None:
    problem = read(conversation, conversationId=12345)
    assert isinstance(problem, UnitKeyProblem)
    assert problem.error_code == ErrorCode.INVALID_CONTEXT
    assert "string" in problem.message


def test_aliases_that_disagree_are_refused() -> None:
    problem = read(conversation, conversationId="c-1", thread_id="c-2")
    assert isinstance(problem, UnitKeyProblem)
    assert problem.error_code == ErrorCode.INVALID_CONTEXT
    assert "disagree" in problem.message


def test_targeting_key_stands_for_the_user_unit_by_default() -> None:
    assert read(user, "u-7") == UnitKey("user", "u-7", "targetingKey")


def test_targeting_key_and_user_attribute_must_agree() -> None:
    problem = read(user, "u-7", userId="u-8")
    assert isinstance(problem, UnitKeyProblem)
    assert problem.error_code == ErrorCode.INVALID_CONTEXT


def test_targeting_key_can_be_unbound_from_any_unit() -> None:
    strict = UnitCatalog(targeting_key_unit=None)
    problem = strict.read(strict["user"], EvaluationContext("u-7"))
    assert isinstance(problem, UnitKeyProblem)


def test_custom_unit_with_its_own_pattern() -> None:
    tickets = UnitCatalog([Unit("ticket", "ticketId", ("ticket",), pattern=r"T-\d+")])
    unit = tickets["ticket"]
    assert tickets.read(unit, EvaluationContext(attributes={"ticket": "T-42"})) == UnitKey(
        "ticket", "T-42", "ticket"
    )
    assert isinstance(
        tickets.read(unit, EvaluationContext(attributes={"ticketId": "42"})), UnitKeyProblem
    )


def test_known_ids_lists_every_valid_unit_id_by_canonical_name() -> None:
    context = EvaluationContext(
        "u-1", {"thread_id": "t-1", "accountId": "acct 1", "workflowId": "wf-1"}
    )
    assert catalog.known_ids(context) == {
        "conversationId": "t-1",
        "userId": "u-1",
        "workflowId": "wf-1",
    }
