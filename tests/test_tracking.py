"""Outcomes through OpenFeature ``track()``: keyed by the unit they are measured at, and a
metric measured at another unit than its experiment is flagged or, in strict mode, refused."""

from __future__ import annotations

from openfeature.evaluation_context import EvaluationContext
from openfeature.track import TrackingEventDetails

from featbit_experiments import Experiment, InMemorySink, Metric, UnitPolicy
from tests.support import flags as fl
from tests.support.capture import CapturedInsights

SUPPORT = "support-retrieval-test"
CTX = EvaluationContext("u-1", {"conversationId": "c-1", "userId": "u-1", "accountId": "a-1"})


def policy(strict: bool = False) -> UnitPolicy:
    return UnitPolicy(
        [Experiment(SUPPORT, "conversation"), Experiment("style", "user")],
        [
            Metric("resolved", "conversation", (SUPPORT,)),
            Metric("retained", "user", (SUPPORT,)),
        ],
        strict_metrics=strict,
    )


def make(make_provider, of_client, strict: bool = False):
    insights = CapturedInsights()
    provider = make_provider(
        [fl.flag(SUPPORT, ["control", "b"]), fl.flag("style", ["plain", "fancy"])],
        policy(strict),
        event_processor=insights.processor,
    )
    return of_client(provider), insights


def test_outcome_and_exposure_are_keyed_by_the_same_conversation(make_provider, of_client) -> None:
    client, insights = make(make_provider, of_client)
    client.get_string_value(SUPPORT, "control", CTX)
    client.track("resolved", CTX, TrackingEventDetails(value=1.0))
    [exposure] = insights.flag_events()
    [metric] = insights.metric_events()
    assert exposure["user"]["keyId"] == "c-1"
    assert metric["user"]["keyId"] == "c-1"
    assert metric["metrics"][0]["eventName"] == "resolved"
    custom = {p["name"]: p["value"] for p in exposure["user"]["customizedProperties"]}
    assert custom["assignmentUnit"] == "conversation" and custom["userId"] == "u-1"


def test_value_defaults_to_one_and_is_preserved(make_provider, of_client) -> None:
    client, insights = make(make_provider, of_client)
    client.track("resolved", CTX)
    client.track("resolved", CTX, TrackingEventDetails(value=2.5))
    values = [m["metrics"][0]["numericValue"] for m in insights.metric_events()]
    assert values == [1.0, 2.5]


def test_user_metric_in_conversation_experiment_is_flagged_but_sent(
    make_provider, of_client, sink: InMemorySink
) -> None:
    client, insights = make(make_provider, of_client)
    client.track("retained", CTX)
    [guardrail] = sink.guardrails("metric_unit_mismatch")
    assert guardrail["metricUnit"] == "user" and guardrail["assignmentUnit"] == "conversation"
    [metric] = insights.metric_events()
    assert metric["user"]["keyId"] == "u-1"


def test_strict_mode_refuses_a_metric_at_another_unit(
    make_provider, of_client, sink: InMemorySink
) -> None:
    client, insights = make(make_provider, of_client, strict=True)
    client.track("retained", CTX)
    assert sink.guardrails("metric_unit_mismatch")
    assert insights.metric_events() == []


def test_experiment_named_in_tracking_attributes_is_checked(
    make_provider, of_client, sink: InMemorySink
) -> None:
    client, _ = make(make_provider, of_client)
    details = TrackingEventDetails(attributes={"experimentKey": "style"})
    client.track("resolved", CTX, details)
    [guardrail] = sink.guardrails("metric_unit_mismatch")
    assert guardrail["experimentKey"] == "style"


def test_outcome_without_its_unit_id_is_not_sent(
    make_provider, of_client, sink: InMemorySink
) -> None:
    client, insights = make(make_provider, of_client)
    client.track("resolved", EvaluationContext("u-1", {"userId": "u-1"}))
    assert insights.metric_events() == []
    assert sink.guardrails("missing_unit_id")
