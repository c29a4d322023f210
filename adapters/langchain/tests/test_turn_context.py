"""Reading a turn's unit IDs from run metadata and configurable values."""

from __future__ import annotations

import uuid

import pytest
from featbit_experiments_langchain import TurnContextReader

from featbit_experiments.units import Unit, UnitCatalog

reader = TurnContextReader()


def test_metadata_ids_become_the_evaluation_context_with_canonical_ids_for_telemetry() -> None:
    context = reader.from_metadata(
        {"conversation_id": "c-1", "user_id": "u-1", "account_id": "a-1", "ls_provider": "x"}
    )

    assert dict(context.evaluation_context.attributes) == {
        "conversation_id": "c-1",
        "user_id": "u-1",
        "account_id": "a-1",
    }
    assert context.ids == {"conversation": "c-1", "user": "u-1", "account": "a-1"}
    assert context.conversation_id == "c-1"


def test_user_id_is_the_targeting_key() -> None:
    assert reader.from_metadata({"user_id": "u-1"}).evaluation_context.targeting_key == "u-1"


def test_configurable_fills_in_what_metadata_lacks() -> None:
    context = reader.from_config(
        {"metadata": {"user_id": "u-1"}, "configurable": {"thread_id": "t-1"}}
    )

    assert context.ids == {"conversation": "t-1", "user": "u-1"}


def test_langgraph_thread_id_is_the_conversation_id() -> None:
    config_only = reader.from_config({"configurable": {"thread_id": "t-9"}})
    metadata_copy = reader.from_metadata({"thread_id": "t-9"})

    assert config_only.conversation_id == metadata_copy.conversation_id == "t-9"


def test_same_key_disagreeing_between_metadata_and_configurable_is_left_out() -> None:
    context = reader.from_config(
        {"metadata": {"thread_id": "t-1"}, "configurable": {"thread_id": "t-2", "user_id": "u"}}
    )

    assert context.conflicts == ("thread_id",)
    assert "thread_id" not in context.attributes
    assert context.conversation_id is None


def test_two_spellings_of_one_conversation_that_disagree_give_no_conversation_id() -> None:
    context = reader.from_metadata({"conversation_id": "c-1", "session_id": "s-1"})

    assert context.conversation_id is None
    assert set(context.attributes) == {"conversation_id", "session_id"}


def test_uuid_ids_are_read_as_strings() -> None:
    thread = uuid.uuid4()

    assert reader.from_metadata({"thread_id": thread}).conversation_id == str(thread)


def test_malformed_id_is_passed_on_for_the_provider_to_refuse() -> None:
    context = reader.from_metadata({"conversation_id": "has spaces in it"})

    assert context.attributes == {"conversation_id": "has spaces in it"}
    assert context.ids == {}


def test_custom_key_maps_to_the_units_canonical_attribute() -> None:
    custom = TurnContextReader({"chat_id": "conversation", "tenant": "account"})

    context = custom.from_metadata({"chat_id": "c-5", "tenant": "acme", "thread_id": "ignored"})

    assert dict(context.attributes) == {"conversationId": "c-5", "accountId": "acme"}


def test_custom_unit_from_the_policy_catalog_is_read() -> None:
    catalog = UnitCatalog([Unit("ticket", "ticketId")])
    custom = TurnContextReader({"ticket_id": "ticket"}, catalog=catalog)

    assert custom.from_metadata({"ticket_id": "T-1"}).ids == {"ticket": "T-1"}


def test_key_naming_an_unknown_unit_is_refused_at_construction() -> None:
    with pytest.raises(ValueError, match="unknown unit 'ticket'"):
        TurnContextReader({"ticket_id": "ticket"})


def test_run_without_ids_has_an_empty_context() -> None:
    assert reader.from_config({"metadata": {"langgraph_step": 1}}).is_empty
    assert reader.from_metadata(None).is_empty


def test_a_conflict_is_reported_even_after_the_same_ids_were_read_without_one() -> None:
    first = reader.from_metadata({"conversation_id": "c-1"})
    again = reader.from_config(
        {
            "metadata": {"conversation_id": "c-1", "user_id": "u-1"},
            "configurable": {"user_id": "u-2"},
        }
    )

    assert first.conflicts == ()
    assert again.ids == {"conversation": "c-1"}
    assert again.conflicts == ("user_id",)


def test_ids_of_other_types_that_compare_equal_are_read_apart() -> None:
    as_int = reader.from_metadata({"user_id": 1})
    as_bool = reader.from_metadata({"user_id": True})

    assert type(as_int.evaluation_context.attributes["user_id"]) is int
    assert as_bool.evaluation_context.attributes["user_id"] is True
