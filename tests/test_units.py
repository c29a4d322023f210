"""Reading a unit's ID from an evaluation context never guesses."""

from __future__ import annotations

import pytest
from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import ErrorCode

from featbit_experiments.units import (
    DEFAULT_MAX_ID_LENGTH,
    READ_KEYS_REMEMBERED,
    Unit,
    UnitCatalog,
    UnitKey,
    UnitKeyProblem,
    unit_from_mapping,
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


CONVERSATION_NAMES = "conversationId, conversation_id, thread_id, threadId, session_id, sessionId"


@pytest.mark.parametrize(
    ("attributes", "expected"),
    [
        (
            {},
            UnitKeyProblem(
                "conversation",
                ErrorCode.TARGETING_KEY_MISSING,
                f"no conversation ID in the evaluation context (looked for {CONVERSATION_NAMES})",
                "missing_unit_id",
            ),
        ),
        (
            {"thread_id": " "},
            UnitKeyProblem(
                "conversation",
                ErrorCode.TARGETING_KEY_MISSING,
                "conversation ID is blank (attribute thread_id)",
                "missing_unit_id",
            ),
        ),
        (
            {"conversationId": "c 1"},
            UnitKeyProblem(
                "conversation",
                ErrorCode.INVALID_CONTEXT,
                "conversation ID has characters outside the allowed set (attribute conversationId)",
                "invalid_unit_id",
            ),
        ),
        (
            {"sessionId": 7},
            UnitKeyProblem(
                "conversation",
                ErrorCode.INVALID_CONTEXT,
                "conversation ID must be a string, got int (attribute sessionId)",
                "invalid_unit_id",
            ),
        ),
        (
            {"conversationId": "c-1", "thread_id": "c-2"},
            UnitKeyProblem(
                "conversation",
                ErrorCode.INVALID_CONTEXT,
                "conversation ID is ambiguous: conversationId and thread_id disagree",
                "invalid_unit_id",
            ),
        ),
    ],
)
def test_a_problem_names_its_unit_attribute_error_code_and_guardrail(
    attributes: dict[str, object], expected: UnitKeyProblem
) -> None:
    assert read(conversation, **attributes) == expected


def test_a_missing_id_lists_the_targeting_key_only_for_the_unit_it_stands_for() -> None:
    missing_user = read(user)
    assert isinstance(missing_user, UnitKeyProblem)
    assert missing_user.message.endswith("(looked for userId, user_id, targetingKey)")
    missing_conversation = read(conversation, "u-1")
    assert isinstance(missing_conversation, UnitKeyProblem)
    assert "targetingKey" not in missing_conversation.message


def test_a_checked_id_is_served_from_memory_on_later_reads() -> None:
    fresh = UnitCatalog()
    unit = fresh["conversation"]
    context = EvaluationContext(attributes={"conversationId": "c-mem"})
    first = fresh.read(unit, context)
    assert isinstance(first, UnitKey)
    assert fresh.read(unit, context) is first
    both = EvaluationContext(attributes={"conversationId": "c-mem", "thread_id": "c-mem"})
    assert fresh.read(unit, both) is first
    disagreeing = EvaluationContext(attributes={"conversationId": "c-mem", "thread_id": "c-x"})
    assert isinstance(fresh.read(unit, disagreeing), UnitKeyProblem)


def test_forgetting_a_unit_id_makes_the_next_read_check_it_again() -> None:
    fresh = UnitCatalog()
    unit = fresh["user"]
    by_attribute = EvaluationContext(attributes={"userId": "u-f"})
    by_targeting_key = EvaluationContext("u-f")
    first = fresh.read(unit, by_attribute)
    first_by_key = fresh.read(unit, by_targeting_key)
    fresh.forget("user", "u-f")
    again = fresh.read(unit, by_attribute)
    assert again == first and again is not first
    assert fresh.read(unit, by_targeting_key) is not first_by_key
    fresh.forget("no-such-unit", "u-f")  # an unknown unit has nothing to forget
    assert fresh.read(unit, by_attribute) is again


def test_the_memory_of_checked_ids_starts_over_past_its_bound() -> None:
    fresh = UnitCatalog()
    unit = fresh["request"]
    first = fresh.read(unit, EvaluationContext(attributes={"requestId": "r-0"}))
    for i in range(1, READ_KEYS_REMEMBERED):
        fresh.read(unit, EvaluationContext(attributes={"requestId": f"r-{i}"}))
    assert fresh.read(unit, EvaluationContext(attributes={"requestId": "r-0"})) is first
    fresh.read(unit, EvaluationContext(attributes={"requestId": "r-past"}))
    assert fresh.read(unit, EvaluationContext(attributes={"requestId": "r-0"})) is not first


def test_known_ids_ignore_a_targeting_key_no_unit_stands_for() -> None:
    strict = UnitCatalog(targeting_key_unit=None)
    assert strict.known_ids(EvaluationContext("u-1", {"thread_id": "t-1"})) == {
        "conversationId": "t-1"
    }


def test_a_unit_needs_a_name_and_an_attribute() -> None:
    with pytest.raises(ValueError, match=r"^a unit needs a non-blank name$"):
        Unit("  ", "ticketId")
    with pytest.raises(ValueError, match=r"^unit 'ticket' needs the name of the attribute"):
        Unit("ticket", "")
    with pytest.raises(ValueError, match=r"^targeting_key_unit 'ticket' is not a known unit$"):
        UnitCatalog(targeting_key_unit="ticket")


def test_aliases_given_as_a_list_are_kept_as_a_tuple() -> None:
    unit = Unit("ticket", "ticketId", ["ticket"])  # type: ignore[arg-type]
    assert unit.aliases == ("ticket",)
    assert hash(unit) == hash(Unit("ticket", "ticketId", ("ticket",)))


def test_a_unit_from_a_policy_file_table_keeps_its_pattern_and_length() -> None:
    assert unit_from_mapping("ticket", {"attribute": "ticketId"}) == Unit("ticket", "ticketId")
    unit = unit_from_mapping(
        "ticket",
        {"attribute": "ticketId", "aliases": ["ticket"], "pattern": r"T-\d+", "max_length": 6},
    )
    assert unit == Unit("ticket", "ticketId", ("ticket",), r"T-\d+", 6)


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"attribute": 5}, "needs 'attribute', the context attribute with its ID"),
        ({"attribute": ""}, "needs 'attribute', the context attribute with its ID"),
        ({"attribute": "ticketId", "aliases": ["t", 1]}, "'aliases' must be a list of strings"),
        ({"attribute": "ticketId", "aliases": "ticket"}, "'aliases' must be a list of strings"),
    ],
)
def test_a_malformed_unit_table_is_refused_with_the_reason(
    table: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=f"^unit 'ticket'.*{message}"):
        unit_from_mapping("ticket", table)
