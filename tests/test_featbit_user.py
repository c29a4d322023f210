"""Context attributes become FeatBit custom attributes predictably."""

from __future__ import annotations

from datetime import date, datetime, timezone

from featbit_experiments.featbit_user import featbit_user


def test_key_and_name_come_first_and_name_falls_back_to_key() -> None:
    assert featbit_user("c-1", {}) == {"key": "c-1", "name": "c-1"}
    assert featbit_user("c-1", {"name": "Ada"})["name"] == "Ada"
    assert featbit_user("c-1", {"name": "  "})["name"] == "c-1"


def test_scalars_become_strings_with_featbit_boolean_spelling() -> None:
    user = featbit_user("k", {"vip": True, "beta": False, "age": 42, "score": 0.5, "plan": "pro"})
    assert user["vip"] == "true" and user["beta"] == "false"
    assert user["age"] == "42" and user["score"] == "0.5" and user["plan"] == "pro"


def test_dates_become_iso_8601_with_naive_taken_as_utc() -> None:
    user = featbit_user(
        "k",
        {
            "at": datetime(2026, 1, 2, 3, 4, 5),
            "day": date(2026, 1, 2),
            "aware": datetime(2026, 1, 2, tzinfo=timezone.utc),
        },
    )
    assert user["at"] == "2026-01-02T03:04:05+00:00"
    assert user["day"] == "2026-01-02"
    assert user["aware"] == "2026-01-02T00:00:00+00:00"


def test_nested_values_and_none_are_left_out() -> None:
    user = featbit_user("k", {"tags": ["a"], "profile": {"x": 1}, "nothing": None})
    assert set(user) == {"key", "name"}


def test_reserved_names_cannot_override_the_key() -> None:
    user = featbit_user("c-1", {"key": "evil", "keyId": "evil", "targetingKey": "evil"})
    assert user == {"key": "c-1", "name": "c-1"}


def test_extra_attributes_win_over_context_attributes() -> None:
    user = featbit_user("c-1", {"assignmentUnit": "user"}, extra={"assignmentUnit": "conversation"})
    assert user["assignmentUnit"] == "conversation"
