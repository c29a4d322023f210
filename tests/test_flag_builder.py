"""Flags in code: ``Flag`` builds FeatBit flag data that the real fbclient serves through
``FeatBitProvider.offline(flags=[...])``, with named variations, GUID ids and microsecond
``updatedAt`` timestamps, and refuses names that do not resolve."""

from __future__ import annotations

import re
import uuid
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

import pytest
from openfeature.evaluation_context import EvaluationContext
from openfeature.flag_evaluation import Reason

from featbit_experiments import (
    BootstrapError,
    Experiment,
    FeatBitProvider,
    Flag,
    FlagDataError,
    Rule,
    UnitPolicy,
    bootstrap_document,
    when,
)

ARMS = ["control", "retrieval_profile_b"]


@pytest.fixture
def offline():
    made: list[FeatBitProvider] = []

    def make(*flags: Flag, policy: UnitPolicy | None = None) -> FeatBitProvider:
        provider = FeatBitProvider.offline(flags=list(flags), policy=policy, sinks=[])
        made.append(provider)
        return provider

    yield make
    for provider in made:
        provider.shutdown()


def test_a_split_serves_each_variation_its_share(offline) -> None:
    flag = Flag.string(
        "support-retrieval-test", ARMS, split={"control": 30, "retrieval_profile_b": 70}
    )
    provider = offline(flag, policy=UnitPolicy([Experiment(flag.key, "conversation")]))
    served = Counter(
        provider.resolve_string_details(
            flag.key, "x", EvaluationContext("u", {"conversationId": f"c-{n}"})
        ).value
        for n in range(2000)
    )
    assert 0.25 < served["control"] / 2000 < 0.35
    assert set(served) == set(ARMS)


def test_serve_gives_everyone_one_variation(offline) -> None:
    provider = offline(
        Flag.string("model-route", {"small": "gpt-small", "large": "gpt-large"}, serve="large")
    )
    details = provider.resolve_string_details("model-route", "x", EvaluationContext("u-1"))
    assert (details.value, details.variant, details.reason) == ("gpt-large", "large", Reason.STATIC)


def test_a_disabled_flag_serves_its_off_variation(offline) -> None:
    flag = Flag.string("model-route", ["a", "b"], serve="b", off="a", enabled=False)
    details = offline(flag).resolve_string_details("model-route", "x", EvaluationContext("u-1"))
    assert (details.value, details.reason) == ("a", Reason.DISABLED)


def test_a_rule_serves_matching_users_and_the_default_serves_the_rest(offline) -> None:
    flag = Flag.string(
        "model-route",
        ["small", "large"],
        serve="small",
        rules=[
            Rule("enterprise", [when("accountId", "IsOneOf", ["acct-1", "acct-2"])], serve="large")
        ],
    )
    provider = offline(flag)
    matching = provider.resolve_string_details(
        "model-route", "x", EvaluationContext("u", {"accountId": "acct-2"})
    )
    other = provider.resolve_string_details(
        "model-route", "x", EvaluationContext("u", {"accountId": "acct-9"})
    )
    assert (matching.value, matching.reason) == ("large", Reason.TARGETING_MATCH)
    assert other.value == "small"


def test_targets_give_listed_users_their_variation(offline) -> None:
    flag = Flag.boolean("new-ui", serve=False, targets={"true": ["u-beta"]})
    provider = offline(flag)
    assert (
        provider.resolve_boolean_details("new-ui", False, EvaluationContext("u-beta")).value is True
    )
    assert (
        provider.resolve_boolean_details("new-ui", True, EvaluationContext("u-other")).value
        is False
    )


def test_number_and_json_flags_serve_typed_values(offline) -> None:
    provider = offline(
        Flag.number("max-tokens", {"short": 256, "long": 1024}, serve="long"),
        Flag.json("retrieval", {"narrow": {"k": 3}, "wide": {"k": 12}}, serve="wide"),
    )
    assert provider.resolve_integer_details("max-tokens", 0, EvaluationContext("u")).value == 1024
    assert provider.resolve_object_details("retrieval", {}, EvaluationContext("u")).value == {
        "k": 12
    }


def test_the_dispatch_key_reaches_featbit() -> None:
    flag = Flag.string("by-team", ["a", "b"], split={"a": 50, "b": 50}, dispatch_key="team")
    assert flag.to_featbit()["fallthrough"]["dispatchKey"] == "team"


def test_tags_declare_an_experiment_unit(offline) -> None:
    flag = Flag.string(
        "support-retrieval-test",
        ARMS,
        split={"control": 50, "retrieval_profile_b": 50},
        tags=["unit:conversation"],
    )
    details = offline(flag).resolve_string_details(
        flag.key, "x", EvaluationContext("u", {"conversationId": "c-1"})
    )
    assert details.flag_metadata["assignmentUnit"] == "conversation"


def test_ids_are_guids_stable_across_builds() -> None:
    first = Flag.string("model-route", ["small", "large"]).to_featbit()
    second = Flag.string("model-route", ["small", "large"]).to_featbit()
    ids = [first["id"], *(v["id"] for v in first["variations"])]
    assert all(uuid.UUID(i) for i in ids) and len(set(ids)) == 3
    assert [v["id"] for v in first["variations"]] == [v["id"] for v in second["variations"]]


def test_updated_at_keeps_microseconds_as_featbit_on_postgresql_sends_them() -> None:
    stamp = datetime(2026, 3, 1, 12, 30, 5, 123456, tzinfo=timezone.utc)
    flag = Flag.string("model-route", ["a"], updated_at=stamp).to_featbit()
    assert flag["updatedAt"] == "2026-03-01T12:30:05.123456Z"
    assert re.fullmatch(r".*\.\d{6}Z", Flag.string("now", ["a"]).to_featbit()["updatedAt"])


def test_a_name_that_is_no_variation_is_refused_naming_it() -> None:
    with pytest.raises(FlagDataError, match="'treatment'"):
        Flag.string("model-route", ["control", "b"], split={"control": 50, "treatment": 50})


def test_a_split_that_does_not_sum_to_100_is_refused() -> None:
    with pytest.raises(FlagDataError, match="cover"):
        Flag.string("model-route", ["a", "b"], split={"a": 50, "b": 40})


def test_serve_and_split_together_are_refused() -> None:
    with pytest.raises(FlagDataError, match="not both"):
        Flag.string("model-route", ["a", "b"], serve="a", split={"a": 50, "b": 50})


def test_offline_takes_a_file_or_flags_not_both(tmp_path: Path) -> None:
    with pytest.raises(BootstrapError, match="one of them"):
        FeatBitProvider.offline(tmp_path / "flags.json", flags=[Flag.boolean("x")])
    with pytest.raises(BootstrapError, match="one of them"):
        FeatBitProvider.offline()


def test_offline_checks_raw_flag_data_like_built_flags() -> None:
    raw = Flag.string("model-route", ["a", "b"]).to_featbit()
    del raw["variations"][1]["name"]
    with pytest.raises(FlagDataError, match="needs a name"):
        FeatBitProvider.offline(flags=[raw])


def test_the_same_key_twice_is_refused() -> None:
    with pytest.raises(FlagDataError, match="twice"):
        bootstrap_document([Flag.boolean("x"), Flag.boolean("x", serve=False)])


def test_a_bootstrap_document_is_a_file_offline_mode_reads(tmp_path: Path) -> None:
    import json

    file = tmp_path / "flags.json"
    file.write_text(
        json.dumps(bootstrap_document([Flag.string("model-route", ["a", "b"], serve="b")]))
    )
    provider = FeatBitProvider.offline(file, sinks=[])
    try:
        assert (
            provider.resolve_string_details("model-route", "x", EvaluationContext("u")).value == "b"
        )
    finally:
        provider.shutdown()
