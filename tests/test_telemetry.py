"""OpenTelemetry through the real SDK (in-memory exporter): every evaluation adds a
``feature_flag.evaluation`` event to the current span with the semantic-convention names and
our ``experiment.*`` attributes, errors included, and guardrails become span events."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from openfeature.evaluation_context import EvaluationContext
from openfeature.track import TrackingEventDetails
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
from opentelemetry.trace import Tracer

from featbit_experiments import (
    PROVIDER_NAME,
    EvaluationTelemetry,
    Experiment,
    Metric,
    UnitPolicy,
)
from featbit_experiments import telemetry_names as names
from tests.support import flags as fl

SUPPORT = "support-retrieval-test"
STYLE = "assistant-style"
ARMS = ["control", "retrieval_profile_b"]
CTX = EvaluationContext("u-1", {"conversationId": "c-1", "userId": "u-1"})


class Spans:
    """A tracer from a private SDK provider (the global one is never set) and its exports."""

    def __init__(self, sampler: Any = None) -> None:
        self.exporter = InMemorySpanExporter()
        provider = TracerProvider(sampler=sampler) if sampler else TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.tracer: Tracer = provider.get_tracer("tests")

    def finished(self) -> list[ReadableSpan]:
        return list(self.exporter.get_finished_spans())

    def events(self, name: str) -> list[dict[str, Any]]:
        return [
            dict(event.attributes or {})
            for span in self.finished()
            for event in span.events
            if event.name == name
        ]


@pytest.fixture
def spans() -> Iterator[Spans]:
    spans = Spans()
    yield spans
    spans.exporter.clear()


def provider_for(make_provider, **options: Any):
    policy = UnitPolicy(
        [Experiment(SUPPORT, "conversation", run_id="run-3"), Experiment(STYLE, "user")],
        [Metric("conversation_rating", "conversation", (STYLE,))],
    )
    flags = [
        fl.flag(SUPPORT, ARMS, version=4),
        fl.flag(STYLE, ["plain", "fancy"]),
        fl.flag("banner", [True, False], serve=0),
    ]
    return make_provider(flags, policy, **options)


def evaluations(spans: Spans) -> list[dict[str, Any]]:
    return spans.events(names.FEATURE_FLAG_EVALUATION_EVENT)


def test_experiment_evaluation_event_has_semconv_and_experiment_attributes(
    make_provider, of_client, spans: Spans
) -> None:
    client = of_client(provider_for(make_provider))
    with spans.tracer.start_as_current_span("turn"):
        details = client.get_string_details(SUPPORT, "control", CTX)
    [event] = evaluations(spans)
    assert event == {
        names.FEATURE_FLAG_KEY: SUPPORT,
        names.FEATURE_FLAG_PROVIDER_NAME: PROVIDER_NAME,
        names.FEATURE_FLAG_RESULT_REASON: "split",
        names.FEATURE_FLAG_RESULT_VARIANT: details.variant,
        names.FEATURE_FLAG_CONTEXT_ID: "conversation:c-1",
        names.FEATURE_FLAG_VERSION: str(details.flag_metadata["version"]),
        names.EXPERIMENT_KEY: SUPPORT,
        names.EXPERIMENT_RUN_ID: "run-3",
        names.EXPERIMENT_VARIANT: details.variant,
        names.EXPERIMENT_UNIT: "conversation",
        names.EXPERIMENT_UNIT_ID: "c-1",
    }


def test_each_evaluation_is_one_event_on_the_span_it_ran_under(
    make_provider, of_client, spans: Spans
) -> None:
    client = of_client(provider_for(make_provider))
    with spans.tracer.start_as_current_span("turn-1"):
        client.get_string_value(SUPPORT, "control", CTX)
        client.get_string_value(SUPPORT, "control", CTX)
    with spans.tracer.start_as_current_span("turn-2"):
        client.get_string_value(STYLE, "plain", CTX)
    by_span = {
        span.name: [dict(e.attributes or {})[names.FEATURE_FLAG_KEY] for e in span.events]
        for span in spans.finished()
    }
    assert by_span == {"turn-1": [SUPPORT, SUPPORT], "turn-2": [STYLE]}


def test_missing_unit_id_is_recorded_with_error_type(
    make_provider, of_client, spans: Spans
) -> None:
    client = of_client(provider_for(make_provider))
    with spans.tracer.start_as_current_span("turn"):
        client.get_string_value(SUPPORT, "control", EvaluationContext("u-1", {"userId": "u-1"}))
    [event] = evaluations(spans)
    assert event[names.ERROR_TYPE] == "targeting_key_missing"
    assert event[names.FEATURE_FLAG_RESULT_REASON] == "error"
    assert "conversation ID" in event[names.FEATURE_FLAG_ERROR_MESSAGE]
    assert event[names.EXPERIMENT_KEY] == SUPPORT
    assert event[names.EXPERIMENT_UNIT] == "conversation"
    assert names.FEATURE_FLAG_RESULT_VARIANT not in event
    assert names.EXPERIMENT_UNIT_ID not in event
    assert event[names.FEATURE_FLAG_RESULT_VALUE] == "control"  # no variant: the value served


def test_unknown_flag_is_recorded_as_flag_not_found(make_provider, of_client, spans: Spans) -> None:
    client = of_client(provider_for(make_provider))
    with spans.tracer.start_as_current_span("turn"):
        client.get_boolean_value("no-such-flag", False, CTX)
    [event] = evaluations(spans)
    assert event[names.ERROR_TYPE] == "flag_not_found"
    assert event[names.FEATURE_FLAG_KEY] == "no-such-flag"


def test_ordinary_flag_uses_the_targeting_key_as_context_id(
    make_provider, of_client, spans: Spans
) -> None:
    client = of_client(provider_for(make_provider))
    with spans.tracer.start_as_current_span("turn"):
        client.get_boolean_value("banner", False, CTX)
    [event] = evaluations(spans)
    assert event[names.FEATURE_FLAG_CONTEXT_ID] == "u-1"
    assert event[names.FEATURE_FLAG_RESULT_REASON] == "static"
    assert not any(key.startswith("experiment.") for key in event)


async def test_async_evaluations_are_recorded_too(make_provider, of_client, spans: Spans) -> None:
    client = of_client(provider_for(make_provider))
    with spans.tracer.start_as_current_span("turn"):
        await client.get_string_value_async(SUPPORT, "control", CTX)
    [event] = evaluations(spans)
    assert event[names.EXPERIMENT_UNIT_ID] == "c-1"


def test_guardrail_becomes_a_span_event(make_provider, of_client, spans: Spans) -> None:
    client = of_client(provider_for(make_provider))
    with spans.tracer.start_as_current_span("turn"):
        client.get_string_value(STYLE, "plain", CTX)
        client.track("conversation_rating", CTX, TrackingEventDetails(value=5.0))
    [event] = spans.events(names.GUARDRAIL_EVENT)
    assert event[names.GUARDRAIL_NAME] == "metric_unit_mismatch"
    assert event[names.EXPERIMENT_KEY] == STYLE
    assert event[names.EXPERIMENT_UNIT] == "user"
    assert event[names.EXPERIMENT_UNIT_ID] == "u-1"
    assert event[names.EXPERIMENT_METRIC] == "conversation_rating"
    assert event[names.EXPERIMENT_METRIC_UNIT] == "conversation"
    assert event[names.UNIT_ID_PREFIX + "conversation"] == "c-1"
    assert "measured per conversation" in event[names.GUARDRAIL_MESSAGE]


def test_refused_evaluation_guardrail_carries_error_type(
    make_provider, of_client, spans: Spans
) -> None:
    client = of_client(provider_for(make_provider))
    with spans.tracer.start_as_current_span("turn"):
        client.get_string_value(SUPPORT, "control", EvaluationContext("u-1", {"userId": "u-1"}))
    [event] = spans.events(names.GUARDRAIL_EVENT)
    assert event[names.GUARDRAIL_NAME] == "missing_unit_id"
    assert event[names.ERROR_TYPE] == "targeting_key_missing"
    assert event[names.FEATURE_FLAG_KEY] == SUPPORT


def test_telemetry_off_adds_no_events(make_provider, of_client, spans: Spans) -> None:
    client = of_client(provider_for(make_provider, telemetry=False))
    with spans.tracer.start_as_current_span("turn"):
        client.get_string_value(SUPPORT, "control", CTX)
        client.get_string_value(SUPPORT, "control", EvaluationContext("u-1", {}))
    [span] = spans.finished()
    assert span.events == ()


def test_the_recorder_also_works_as_an_openfeature_hook(
    make_provider, of_client, spans: Spans
) -> None:
    client = of_client(provider_for(make_provider, telemetry=False))
    client.add_hooks([EvaluationTelemetry(PROVIDER_NAME)])
    with spans.tracer.start_as_current_span("turn"):
        client.get_string_value(SUPPORT, "control", CTX)
    [event] = evaluations(spans)
    assert event[names.EXPERIMENT_UNIT_ID] == "c-1"
    assert event[names.FEATURE_FLAG_KEY] == SUPPORT


def test_an_unsampled_span_gets_nothing_and_evaluation_still_works(
    make_provider, of_client
) -> None:
    unsampled = Spans(sampler=ALWAYS_OFF)
    client = of_client(provider_for(make_provider))
    with unsampled.tracer.start_as_current_span("turn") as span:
        assert not span.is_recording()
        details = client.get_string_details(SUPPORT, "control", CTX)
    assert details.error_code is None and details.variant in ARMS
    assert unsampled.finished() == []


def test_runtime_needs_only_the_opentelemetry_api() -> None:
    """In a fresh interpreter with no SDK configured, evaluating records nothing and never
    imports ``opentelemetry.sdk``."""
    script = textwrap.dedent(
        """
        import json, sys, tempfile
        from openfeature import api
        from openfeature.evaluation_context import EvaluationContext
        from featbit_experiments import FeatBitProvider, InMemorySink
        from tests.support import flags as fl
        path = tempfile.mktemp(suffix=".json")
        flag = fl.flag("x", ["a", "b"], tags=["unit:conversation"])
        open(path, "w").write(fl.bootstrap_json([flag]))
        sink = InMemorySink()
        api.set_provider_and_wait(FeatBitProvider.offline(path, sinks=[sink]), domain="d")
        client = api.get_client("d")
        ok = client.get_string_details("x", "a", EvaluationContext(None, {"conversationId": "c-1"}))
        bad = client.get_string_details("x", "a", EvaluationContext(None, {}))
        print(json.dumps([ok.variant, str(bad.error_code), len(sink.events),
                          "opentelemetry.sdk" in sys.modules]))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    variant, error, events, sdk_imported = json.loads(result.stdout.strip().splitlines()[-1])
    assert variant in ("a", "b")
    assert error == "TARGETING_KEY_MISSING"
    assert events == 2  # one exposure, one guardrail: sinks work without an SDK
    assert sdk_imported is False
