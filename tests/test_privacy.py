"""Privacy: unit IDs leaving the process (spans, event sinks, flag metadata) are kept, replaced
by a keyed HMAC pseudonym, or left out, while FeatBit still gets the real key."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from openfeature.evaluation_context import EvaluationContext
from openfeature.track import TrackingEventDetails
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from featbit_experiments import (
    ConfigurationError,
    Experiment,
    InMemorySink,
    JsonLinesSink,
    Metric,
    Privacy,
    Unit,
    UnitPolicy,
)
from featbit_experiments import event_schema as schema
from featbit_experiments import telemetry_names as names
from featbit_experiments.guardrails import EventFanout
from featbit_experiments.privacy import (
    _PSEUDONYM_CACHE_SIZE,
    MIN_KEY_BYTES,
    PrivacyMode,
    id_fields_of,
    unit_id_from_context_id,
)
from featbit_experiments.units import STANDARD_UNITS, UnitKey
from tests.support import flags as fl
from tests.support.capture import CapturedInsights

KEY = "0123456789abcdef-privacy-test-key"
SUPPORT = "support-retrieval-test"
STYLE = "assistant-style"
SKEWED = "skewed-rollout"
RAW_IDS = ("conv-raw-81", "user-raw-17", "acct-raw-5", "wf-raw-3", "tk-raw-99")
CTX = EvaluationContext(
    "user-raw-17",
    {
        "conversationId": "conv-raw-81",
        "userId": "user-raw-17",
        "accountId": "acct-raw-5",
        "workflowId": "wf-raw-3",
    },
)


# -- the setting itself ----------------------------------------------------------------------


def test_hashing_is_stable_and_keyed() -> None:
    first, again = Privacy.hashed(KEY), Privacy.hashed(KEY)
    other = Privacy.hashed(KEY + "-rotated")
    assert first.protect("conv-1") == again.protect("conv-1")
    assert first.protect("conv-1") != other.protect("conv-1")
    assert first.protect("conv-1") != first.protect("conv-2")
    pseudonym = first.protect("conv-1")
    assert pseudonym is not None and pseudonym.startswith("h_") and "conv-1" not in pseudonym


def test_hashing_without_a_long_enough_key_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="16 bytes"):
        Privacy("hash", "short")
    with pytest.raises(ConfigurationError, match="16 bytes"):
        Privacy("hash")


def test_an_unknown_mode_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="raw, hash, omit"):
        Privacy("encrypt", KEY)


def test_a_key_of_exactly_the_minimum_length_is_enough() -> None:
    assert MIN_KEY_BYTES == 16
    exact = Privacy.hashed("k" * MIN_KEY_BYTES)
    assert exact.mode is PrivacyMode.HASH and exact.protect("c-1") != Privacy.hashed(KEY).protect(
        "c-1"
    )
    with pytest.raises(ConfigurationError, match="16 bytes"):
        Privacy.hashed("k" * (MIN_KEY_BYTES - 1))
    # Bytes are counted, not characters: eight two-byte characters are a 16-byte key.
    assert Privacy.hashed("é" * 8).protect("c-1") == Privacy.hashed("é".encode() * 8).protect("c-1")


@pytest.mark.parametrize(
    ("given", "mode"),
    [("raw", PrivacyMode.RAW), ("hash", PrivacyMode.HASH), ("omit", PrivacyMode.OMIT)],
)
def test_a_mode_given_as_a_string_behaves_as_that_mode(given: str, mode: PrivacyMode) -> None:
    """Settings read from configuration name the mode as text; it must act exactly as the
    enum does (a "raw" string treated as not raw would drop every ID)."""
    privacy = Privacy(given, KEY if mode is PrivacyMode.HASH else None)
    assert privacy.mode is mode and str(privacy.mode) == given
    assert privacy.is_raw is (mode is PrivacyMode.RAW)
    assert (
        privacy.protect("c-1")
        == {
            PrivacyMode.RAW: "c-1",
            PrivacyMode.HASH: Privacy.hashed(KEY).protect("c-1"),
            PrivacyMode.OMIT: None,
        }[mode]
    )


def test_a_pseudonym_is_remembered_for_later_turns_within_its_bound() -> None:
    """A conversation's later turns reuse the pseudonym (the same object, no new HMAC); the
    memory is bounded, so past the bound the least recent ID is computed again (equal)."""
    privacy = Privacy.hashed(KEY)
    first = privacy.protect("conv-0")
    assert privacy.protect("conv-0") is first
    for i in range(1, _PSEUDONYM_CACHE_SIZE + 1):
        privacy.protect(f"conv-{i}")
    again = privacy.protect("conv-0")
    assert again == first and again is not first


def test_the_unit_id_is_read_back_from_its_context_id() -> None:
    privacy = Privacy.hashed(KEY)
    context_id = privacy.context_id(UnitKey("conversation", "conv-1", "conversationId"))
    assert context_id == f"conversation:{privacy.protect('conv-1')}"
    assert unit_id_from_context_id(context_id, "conversation") == privacy.protect("conv-1")
    assert unit_id_from_context_id("conversation:c:1", "conversation") == "c:1"
    assert unit_id_from_context_id("user:u-1", "conversation") is None
    assert unit_id_from_context_id("conversation-x:c-1", "conversation") is None


def test_the_key_never_shows_in_repr() -> None:
    assert KEY not in repr(Privacy.hashed(KEY))


def test_scrub_covers_custom_units_aliases_and_tracking_attributes() -> None:
    session = Unit("session", "sessionKey", ("session_key",))
    fields = id_fields_of([*STANDARD_UNITS, session])
    record = {
        "event": "experiment_outcome",
        "unitId": "s-1",
        "sessionKey": "s-1",
        "thread_id": "t-1",
        "attributes": {"session_key": "s-1", "userId": "u-1", "turns": 3},
        "value": 1.0,
    }
    scrubbed = Privacy.hashed(KEY).scrub(record, fields)
    assert "s-1" not in json.dumps(scrubbed) and "u-1" not in json.dumps(scrubbed)
    assert "t-1" not in json.dumps(scrubbed)
    assert scrubbed["attributes"]["turns"] == 3 and scrubbed["value"] == 1.0
    omitted = Privacy.omitted().scrub(record, fields)
    assert omitted == {"event": "experiment_outcome", "attributes": {"turns": 3}, "value": 1.0}


def test_the_event_fanout_protects_ids_before_any_sink_sees_them() -> None:
    sink = InMemorySink()
    events = EventFanout([sink], privacy=Privacy.hashed(KEY))
    events.guardrail("missing_unit_id", "no conversation ID", userId="u-1", flagKey="f")
    [record] = sink.events
    assert record["userId"] == Privacy.hashed(KEY).protect("u-1")
    assert record["flagKey"] == "f"


# -- IDs that are not strings ---------------------------------------------------------------

MODES = [Privacy(), Privacy.hashed(KEY), Privacy.omitted()]
MODE_IDS = ["raw", "hash", "omit"]
NON_STRING_IDS: list[Any] = [42, 4.2, True, ["u-1"], {"id": "u-1"}]


@pytest.mark.parametrize("privacy", MODES, ids=MODE_IDS)
@pytest.mark.parametrize("value", NON_STRING_IDS, ids=lambda v: type(v).__name__)
def test_a_non_string_id_field_is_kept_only_when_ids_are_raw(privacy: Privacy, value: Any) -> None:
    """Unit IDs are strings: a hashed or omitted setting cannot give a non-string one a
    pseudonym that joins, so it leaves the field out rather than pass the raw value on."""
    fields = id_fields_of(STANDARD_UNITS)
    record = {
        "event": "experiment_outcome",
        "userId": value,
        "conversationId": "c-1",
        "attributes": {"accountId": value, "thread_id": "c-1", "turns": 3},
        "value": 1.0,
    }

    scrubbed = dict(privacy.scrub(record, fields))

    kept = {k: v for k, v in scrubbed.items() if k != "attributes"}
    if privacy.is_raw:
        assert scrubbed == record
        return
    expected_id = privacy.protect("c-1")
    assert kept == {
        "event": "experiment_outcome",
        **({} if expected_id is None else {"conversationId": expected_id}),
        "value": 1.0,
    }
    assert scrubbed["attributes"] == {
        **({} if expected_id is None else {"thread_id": expected_id}),
        "turns": 3,
    }


@pytest.mark.parametrize("privacy", MODES, ids=MODE_IDS)
def test_protect_passes_a_non_string_on_only_when_ids_are_raw(privacy: Privacy) -> None:
    assert privacy.protect(42) == (42 if privacy.is_raw else None)  # type: ignore[arg-type]


@pytest.mark.parametrize("privacy", MODES, ids=MODE_IDS)
def test_integer_ids_in_tracking_attributes_never_leave_raw_unless_ids_are_raw(
    make_provider, privacy: Privacy
) -> None:
    memory = InMemorySink()
    policy = UnitPolicy(
        [Experiment(SUPPORT, "conversation")], [Metric("resolved", "conversation", (SUPPORT,))]
    )
    provider = make_provider(
        [fl.flag(SUPPORT, ["control", "b"])], policy, sinks=[memory], privacy=privacy
    )
    context = EvaluationContext("user-raw-17", {"conversationId": "conv-raw-81"})
    provider.resolve_string_details(SUPPORT, "control", context)

    provider.track(
        "resolved",
        context,
        TrackingEventDetails(1.0, {"userId": 1717, "workflowId": 3.5, "turns": 2}),
    )

    [outcome] = memory.of_kind(schema.OUTCOME)
    if privacy.is_raw:
        assert outcome[schema.ATTRIBUTES] == {"userId": 1717, "workflowId": 3.5, "turns": 2}
    else:
        assert outcome[schema.ATTRIBUTES] == {"turns": 2}
        assert outcome.get(schema.UNIT_ID) == privacy.protect("conv-raw-81")
        assert "1717" not in json.dumps(memory.events)


@pytest.mark.parametrize("privacy", MODES, ids=MODE_IDS)
def test_an_integer_targeting_key_is_recorded_in_the_span_under_every_mode(
    make_provider, of_client, privacy: Privacy, caplog: pytest.LogCaptureFixture
) -> None:
    """The evaluation event is recorded (no error in the telemetry hook), with the
    targeting key as context ID only when IDs are raw."""
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    client = of_client(make_provider([fl.flag("banner", ["on", "off"])], privacy=privacy))

    with tracer_provider.get_tracer("tests").start_as_current_span("turn"):
        client.get_string_details("banner", "off", EvaluationContext(1717))  # type: ignore[arg-type]

    [span] = exporter.get_finished_spans()
    [event] = [e for e in span.events if e.name == names.FEATURE_FLAG_EVALUATION_EVENT]
    attributes = dict(event.attributes or {})
    assert attributes[names.FEATURE_FLAG_KEY] == "banner"
    if privacy.is_raw:
        assert attributes[names.FEATURE_FLAG_CONTEXT_ID] == 1717
    else:
        assert names.FEATURE_FLAG_CONTEXT_ID not in attributes
        assert "1717" not in json.dumps(attributes)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


# -- end to end: nothing raw leaves through spans or sinks -----------------------------------


class Run:
    """A provider under a privacy setting, with every way an ID could leave the process
    exercised inside a span: experiment and ordinary evaluations, refusals, guardrails,
    outcomes with IDs in their tracking attributes."""

    def __init__(self, make_provider, of_client, tmp_path: Path, privacy: Privacy) -> None:
        self.exporter = InMemorySpanExporter()
        tracer_provider = TracerProvider()
        tracer_provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.tracer = tracer_provider.get_tracer("tests")
        self.memory = InMemorySink()
        self.path = tmp_path / "events.jsonl"
        self.file = JsonLinesSink(self.path)
        self.insights = CapturedInsights()
        policy = UnitPolicy(
            [
                Experiment(SUPPORT, "conversation"),
                Experiment(STYLE, "user"),
                Experiment(SKEWED, "account"),
            ],
            [
                Metric("resolved", "conversation", (SUPPORT,)),
                Metric("conversation_rating", "conversation", (STYLE,)),
            ],
        )
        flags = [
            fl.flag(SUPPORT, ["control", "b"]),
            fl.flag(STYLE, ["plain", "fancy"]),
            fl.flag(SKEWED, ["x", "y"], dispatch_key="userId"),
            fl.flag("banner", ["on", "off"]),
        ]
        self.provider = make_provider(
            flags,
            policy,
            sinks=[self.memory, self.file],
            privacy=privacy,
            event_processor=self.insights.processor,
        )
        self.client = of_client(self.provider)
        self.details: list[Any] = []

    def exercise(self) -> None:
        attributes = {"conversationId": "conv-raw-81", "note": "ok"}
        missing = EvaluationContext("tk-raw-99", {"userId": "user-raw-17"})
        with self.tracer.start_as_current_span("turn"):
            self.details.append(self.client.get_string_details(SUPPORT, "control", CTX))
            self.details.append(self.client.get_string_details(STYLE, "plain", CTX))
            self.details.append(self.client.get_string_details("banner", "off", CTX))
            self.details.append(self.client.get_string_details(SUPPORT, "control", missing))
            self.details.append(self.client.get_string_details(SKEWED, "x", CTX))
            self.client.track("resolved", CTX, TrackingEventDetails(2.0, attributes))
            self.client.track("conversation_rating", CTX, TrackingEventDetails(4.0))
        self.file.close()

    def span_text(self) -> str:
        parts = []
        for span in self.exporter.get_finished_spans():
            parts.append(json.dumps(dict(span.attributes or {})))
            parts.extend(json.dumps(dict(e.attributes or {})) for e in span.events)
        return "\n".join(parts)

    def sink_text(self) -> str:
        return json.dumps(self.memory.events) + "\n" + self.path.read_text(encoding="utf-8")

    def metadata_text(self) -> str:
        return json.dumps([dict(d.flag_metadata) for d in self.details])


@pytest.fixture
def hashed_run(make_provider, of_client, tmp_path: Path) -> Iterator[Run]:
    run = Run(make_provider, of_client, tmp_path, Privacy.hashed(KEY))
    run.exercise()
    yield run


def test_with_hashing_no_raw_id_appears_in_any_span(hashed_run: Run) -> None:
    text = hashed_run.span_text()
    assert names.EXPERIMENT_UNIT_ID in text and names.FEATURE_FLAG_CONTEXT_ID in text
    for raw in RAW_IDS:
        assert raw not in text


def test_with_hashing_no_raw_id_appears_in_any_sink_record(hashed_run: Run) -> None:
    text = hashed_run.sink_text()
    kinds = {e["event"] for e in hashed_run.memory.events}
    assert kinds == {schema.EXPOSURE, schema.OUTCOME, schema.GUARDRAIL}
    guardrails = {e["guardrail"] for e in hashed_run.memory.guardrails()}
    assert guardrails == {"missing_unit_id", "dispatch_key_mismatch", "metric_unit_mismatch"}
    for raw in RAW_IDS:
        assert raw not in text


def test_with_hashing_each_experiment_evaluation_event_carries_its_units_pseudonym(
    hashed_run: Run,
) -> None:
    privacy = Privacy.hashed(KEY)
    evaluations = {
        (e.attributes or {}).get(names.FEATURE_FLAG_KEY): dict(e.attributes or {})
        for span in hashed_run.exporter.get_finished_spans()
        for e in span.events
        if e.name == names.FEATURE_FLAG_EVALUATION_EVENT
        and names.ERROR_TYPE not in (e.attributes or {})
    }
    for flag, unit, raw in (
        (SUPPORT, "conversation", "conv-raw-81"),
        (STYLE, "user", "user-raw-17"),
    ):
        pseudonym = privacy.protect(raw)
        assert evaluations[flag][names.EXPERIMENT_UNIT_ID] == pseudonym
        assert evaluations[flag][names.FEATURE_FLAG_CONTEXT_ID] == f"{unit}:{pseudonym}"


def test_with_hashing_flag_metadata_context_id_is_the_pseudonym(hashed_run: Run) -> None:
    for raw in RAW_IDS:
        assert raw not in hashed_run.metadata_text()
    pseudonym = Privacy.hashed(KEY).protect("conv-raw-81")
    assert hashed_run.details[0].flag_metadata["contextId"] == f"conversation:{pseudonym}"


def test_with_hashing_the_pseudonyms_still_join(hashed_run: Run) -> None:
    [exposure] = [e for e in hashed_run.memory.of_kind(schema.EXPOSURE) if e["flagKey"] == SUPPORT]
    [outcome] = [e for e in hashed_run.memory.of_kind(schema.OUTCOME) if e["metric"] == "resolved"]
    assert outcome[schema.UNIT_ID] == exposure[schema.UNIT_ID] == exposure["conversationId"]
    assert outcome[schema.VARIATION] == exposure[schema.VARIATION]


def test_with_hashing_featbit_still_gets_the_real_key(hashed_run: Run) -> None:
    keys = {item["user"]["keyId"] for item in hashed_run.insights.items}
    assert {"conv-raw-81", "user-raw-17"} <= keys


def test_with_omission_records_and_spans_carry_no_ids_but_still_count(
    make_provider, of_client, tmp_path: Path
) -> None:
    run = Run(make_provider, of_client, tmp_path, Privacy.omitted())
    run.exercise()
    for text in (run.span_text(), run.sink_text(), run.metadata_text()):
        for raw in RAW_IDS:
            assert raw not in text
    assert names.EXPERIMENT_UNIT_ID not in run.span_text()
    [exposure] = [e for e in run.memory.of_kind(schema.EXPOSURE) if e["flagKey"] == SUPPORT]
    assert schema.UNIT_ID not in exposure and exposure[schema.VARIATION] in ("control", "b")
    assert "contextId" not in run.details[0].flag_metadata


def test_raw_mode_keeps_ids_for_joins_inside_a_trusted_pipeline(
    make_provider, of_client, tmp_path: Path
) -> None:
    run = Run(make_provider, of_client, tmp_path, Privacy())
    run.exercise()
    assert "conv-raw-81" in run.span_text() and "conv-raw-81" in run.sink_text()
