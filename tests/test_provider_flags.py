"""Ordinary flags of all five types: values, reasons, variants and error codes."""

from __future__ import annotations

import pytest
from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import Reason

from featbit_experiments import FeatBitProvider, InMemorySink
from tests.support import flags as fl

FLAGS = [
    fl.flag("bool-flag", [True, False], serve=0, names=["on", "off"]),
    fl.flag("str-flag", ["hi", "bye"], serve=0),
    fl.flag("int-flag", [10, 20], serve=1, names=["ten", "twenty"]),
    fl.flag("float-flag", [0.5, 1], serve=1),
    fl.flag("half-flag", [0.5, 2], serve=0),
    fl.flag("obj-flag", [{"a": 1}, [1, 2]], serve=0, names=["template", "list"]),
    fl.flag("split-flag", ["a", "b"]),
    fl.flag(
        "targeted",
        ["inside", "outside"],
        serve=1,
        rules=[
            fl.rule([fl.condition("email", "Equal", "ada@example.com")], fl.serve("targeted-v0"))
        ],
    ),
    fl.flag(
        "listed",
        ["vip", "normal"],
        serve=1,
        targets=[{"keyIds": ["u-vip"], "variationId": "listed-v0"}],
    ),
    fl.flag("broken-json", ["{}", "[]"], serve=0, variation_type="json"),
]
FLAGS[-1]["variations"][0]["value"] = "{not json"


@pytest.fixture
def client(make_provider, of_client):
    return of_client(make_provider(FLAGS))


def test_each_type_resolves_with_readable_variant_and_static_reason(client) -> None:
    ctx = EvaluationContext("u-1")
    assert (client.get_boolean_details("bool-flag", False, ctx).variant) == "on"
    assert client.get_boolean_value("bool-flag", False, ctx) is True
    assert client.get_string_value("str-flag", "", ctx) == "hi"
    details = client.get_integer_details("int-flag", 0, ctx)
    assert (details.value, details.variant, details.reason) == (20, "twenty", Reason.STATIC)
    float_value = client.get_float_value("float-flag", 0.0, ctx)
    assert float_value == 1.0 and isinstance(float_value, float)
    assert client.get_object_details("obj-flag", {}, ctx).value == {"a": 1}
    assert client.get_string_details("str-flag", "", ctx).variant == "hi"


def test_ordinary_flags_carry_no_metadata(client) -> None:
    assert (
        client.get_boolean_details("bool-flag", False, EvaluationContext("u")).flag_metadata == {}
    )


def test_percentage_rollout_reports_split(client) -> None:
    assert (
        client.get_string_details("split-flag", "", EvaluationContext("u-1")).reason == Reason.SPLIT
    )


def test_rule_match_is_targeting_match_and_no_match_is_default(client) -> None:
    hit = client.get_string_details(
        "targeted", "", EvaluationContext("u-1", {"email": "ada@example.com"})
    )
    miss = client.get_string_details("targeted", "", EvaluationContext("u-1", {"email": None}))
    assert (hit.value, hit.reason) == ("inside", Reason.TARGETING_MATCH)
    assert (miss.value, miss.reason) == ("outside", Reason.DEFAULT)


def test_individual_target_is_targeting_match(client) -> None:
    details = client.get_string_details("listed", "", EvaluationContext("u-vip"))
    assert (details.value, details.reason) == ("vip", Reason.TARGETING_MATCH)


def test_unknown_flag_is_flag_not_found(client) -> None:
    details = client.get_string_details("nope", "dflt", EvaluationContext("u"))
    assert (details.value, details.error_code, details.reason, details.variant) == (
        "dflt",
        ErrorCode.FLAG_NOT_FOUND,
        Reason.ERROR,
        None,
    )


@pytest.mark.parametrize(
    ("method", "flag_key", "default"),
    [
        ("get_boolean_details", "str-flag", True),
        ("get_string_details", "bool-flag", "x"),
        ("get_integer_details", "bool-flag", 1),
        ("get_float_details", "bool-flag", 1.0),
        ("get_object_details", "bool-flag", {"x": 1}),
        ("get_integer_details", "half-flag", 3),
    ],
)
def test_type_mismatch_returns_the_callers_own_default(client, method, flag_key, default) -> None:
    details = getattr(client, method)(flag_key, default, EvaluationContext("u"))
    assert details.error_code == ErrorCode.TYPE_MISMATCH
    assert details.value is default
    assert details.reason == Reason.ERROR and details.variant is None


def test_float_default_is_not_altered_on_error(client) -> None:
    # The raw SDK round-trips defaults through strings (1.0 becomes 1); the provider must not.
    value = client.get_float_value("absent", 1.0, EvaluationContext("u"))
    assert value == 1.0 and isinstance(value, float)


def test_json_flag_that_does_not_parse_is_parse_error(client) -> None:
    details = client.get_object_details("broken-json", {"safe": True}, EvaluationContext("u"))
    assert details.error_code == ErrorCode.PARSE_ERROR
    assert details.value == {"safe": True}


def test_static_flag_needs_no_targeting_key(client) -> None:
    details = client.get_boolean_details("bool-flag", False, EvaluationContext())
    assert details.value is True and details.error_code is None


def test_split_flag_without_targeting_key_is_refused_not_bucketed_together(
    client, sink: InMemorySink
) -> None:
    details = client.get_string_details("split-flag", "dflt", EvaluationContext())
    assert details.error_code == ErrorCode.TARGETING_KEY_MISSING and details.value == "dflt"
    assert sink.guardrails("missing_unit_id")


def test_split_on_missing_custom_dispatch_attribute_is_refused(
    make_provider, of_client, sink
) -> None:
    client = of_client(make_provider([fl.flag("by-team", ["a", "b"], dispatch_key="team")]))
    missing = client.get_string_details("by-team", "dflt", EvaluationContext("u-1"))
    present = client.get_string_details("by-team", "dflt", EvaluationContext("u-1", {"team": "t1"}))
    assert missing.error_code == ErrorCode.TARGETING_KEY_MISSING
    assert present.error_code is None
    assert sink.guardrails("missing_unit_id")


def test_unsynced_client_is_provider_not_ready(sink: InMemorySink) -> None:
    from fbclient.client import FBClient
    from fbclient.config import Config

    client = FBClient(Config("secret", "http://127.0.0.1:9", "ws://127.0.0.1:9", offline=True), 0)
    provider = FeatBitProvider(client, sinks=[sink], owns_client=True)
    try:
        for _ in range(50):
            details = provider.resolve_boolean_details("bool-flag", False, EvaluationContext("u"))
            assert details.error_code == ErrorCode.PROVIDER_NOT_READY and details.value is False
        [guardrail] = sink.guardrails("provider_not_ready")  # throttled, not one per evaluation
        assert guardrail["suppressed"] == 0
    finally:
        provider.shutdown()
        provider.shutdown()  # idempotent
