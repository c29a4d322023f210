"""Outcome metrics carry their direction (``metricDirection`` on every outcome record), from
the policy's declaration or a tracking attribute, so the audit reads it from the log instead
of assuming that a latency or an error count is better when higher."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from openfeature.evaluation_context import EvaluationContext
from openfeature.track import TrackingEventDetails

from featbit_experiments import (
    Experiment,
    Guardrail,
    InMemorySink,
    Metric,
    MetricDirection,
    PolicyError,
    UnitPolicy,
    load_policy,
)
from featbit_experiments import event_schema as schema
from tests.support import flags as fl

SUPPORT = "support-retrieval-test"
CTX = EvaluationContext("u-1", {"conversationId": "c-1"})


def policy(*metrics: Metric) -> UnitPolicy:
    return UnitPolicy([Experiment(SUPPORT, "conversation")], metrics)


def track(
    make_provider: Any,
    of_client: Any,
    policy: UnitPolicy,
    name: str,
    attributes: dict[str, Any] | None = None,
) -> None:
    client = of_client(make_provider([fl.flag(SUPPORT, ["control", "b"])], policy))
    client.get_string_value(SUPPORT, "control", CTX)
    details = TrackingEventDetails(
        value=1, attributes={"experimentKey": SUPPORT, **(attributes or {})}
    )
    client.track(name, CTX, details)


def test_a_declared_direction_is_written_on_each_outcome(
    make_provider, of_client, sink: InMemorySink
) -> None:
    latency = Metric("turn_latency_ms", "conversation", (SUPPORT,), MetricDirection.LOWER_IS_BETTER)
    track(make_provider, of_client, policy(latency), "turn_latency_ms")
    [outcome] = sink.of_kind(schema.OUTCOME)
    assert outcome[schema.METRIC_DIRECTION] == schema.LOWER_IS_BETTER


def test_an_undeclared_direction_is_left_out_of_the_record(
    make_provider, of_client, sink: InMemorySink
) -> None:
    track(
        make_provider, of_client, policy(Metric("resolved", "conversation", (SUPPORT,))), "resolved"
    )
    [outcome] = sink.of_kind(schema.OUTCOME)
    assert schema.METRIC_DIRECTION not in outcome


def test_a_tracking_attribute_gives_the_direction_of_an_undeclared_metric(
    make_provider, of_client, sink: InMemorySink
) -> None:
    track(make_provider, of_client, policy(), "turn_error", {"metricDirection": "lower_is_better"})
    [outcome] = sink.of_kind(schema.OUTCOME)
    assert outcome[schema.METRIC_DIRECTION] == schema.LOWER_IS_BETTER
    assert sink.guardrails() == []


def test_an_invalid_direction_attribute_is_a_guardrail_and_not_recorded(
    make_provider, of_client, sink: InMemorySink
) -> None:
    track(make_provider, of_client, policy(), "turn_error", {"metricDirection": "down"})
    [outcome] = sink.of_kind(schema.OUTCOME)
    assert schema.METRIC_DIRECTION not in outcome
    [guardrail] = sink.guardrails(Guardrail.INVALID_METRIC_DIRECTION.value)
    assert "'down'" in guardrail["message"] and guardrail[schema.METRIC] == "turn_error"
    assert guardrail[schema.EXPERIMENT_KEY] == SUPPORT
    assert guardrail[schema.ASSIGNMENT_UNIT] == "conversation"


def test_a_non_string_direction_attribute_is_a_guardrail_not_an_exception(
    make_provider, of_client, sink: InMemorySink
) -> None:
    track(make_provider, of_client, policy(), "turn_error", {"metricDirection": 1})
    assert len(sink.of_kind(schema.OUTCOME)) == 1
    assert len(sink.guardrails(Guardrail.INVALID_METRIC_DIRECTION.value)) == 1


def test_the_policy_wins_over_a_disagreeing_attribute_with_a_guardrail(
    make_provider, of_client, sink: InMemorySink
) -> None:
    resolved = Metric("resolved", "conversation", (SUPPORT,), MetricDirection.HIGHER_IS_BETTER)
    track(
        make_provider,
        of_client,
        policy(resolved),
        "resolved",
        {"metricDirection": "lower_is_better"},
    )
    [outcome] = sink.of_kind(schema.OUTCOME)
    assert outcome[schema.METRIC_DIRECTION] == schema.HIGHER_IS_BETTER
    [guardrail] = sink.guardrails(Guardrail.METRIC_DIRECTION_CONFLICT.value)
    assert guardrail["message"] == (
        "outcome 'resolved': tracking attribute says lower_is_better but the policy declares "
        "higher_is_better; the policy's direction is recorded"
    )
    assert guardrail[schema.METRIC] == "resolved"
    assert guardrail[schema.METRIC_UNIT] == guardrail[schema.ASSIGNMENT_UNIT] == "conversation"
    assert guardrail[schema.EXPERIMENT_KEY] == SUPPORT


def test_an_agreeing_attribute_raises_no_guardrail(
    make_provider, of_client, sink: InMemorySink
) -> None:
    resolved = Metric("resolved", "conversation", (SUPPORT,), MetricDirection.HIGHER_IS_BETTER)
    track(
        make_provider,
        of_client,
        policy(resolved),
        "resolved",
        {"metricDirection": "higher_is_better"},
    )
    assert sink.guardrails() == []


def test_a_metric_declared_in_code_with_an_unknown_direction_is_refused() -> None:
    with pytest.raises(PolicyError, match="direction"):
        Metric("resolved", "conversation", direction="sideways")  # type: ignore[arg-type]


def test_a_policy_file_declares_a_direction(tmp_path: Path) -> None:
    file = tmp_path / "policy.toml"
    file.write_text(
        '[metrics.turn_latency_ms]\nunit = "conversation"\ndirection = "lower_is_better"\n'
    )
    assert load_policy(file).metrics["turn_latency_ms"].direction is MetricDirection.LOWER_IS_BETTER


def test_a_policy_file_with_an_unknown_direction_names_the_field(tmp_path: Path) -> None:
    file = tmp_path / "policy.toml"
    file.write_text('[metrics.turn_latency_ms]\nunit = "conversation"\ndirection = "lower"\n')
    with pytest.raises(PolicyError, match=r"metrics\.turn_latency_ms\.direction"):
        load_policy(file)
