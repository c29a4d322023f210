"""Outcome events through OpenFeature ``track()``: keyed by the experiment's unit, carrying the
variant that unit was served so each outcome joins back to exactly one exposure."""

from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path
from typing import Any

from openfeature.evaluation_context import EvaluationContext
from openfeature.track import TrackingEventDetails

from featbit_experiments import (
    Experiment,
    Guardrail,
    InMemorySink,
    JsonLinesSink,
    Metric,
    OutcomeRecorder,
    Privacy,
    Unit,
    UnitPolicy,
)
from featbit_experiments import event_schema as schema
from featbit_experiments.continuity.variants import ServedVariants
from featbit_experiments.exposures import ExposureRecorder
from featbit_experiments.guardrails import EventFanout
from featbit_experiments.tracking import Outcome
from featbit_experiments.units import UnitKey
from tests.support import flags as fl

SUPPORT = "support-retrieval-test"
STYLE = "assistant-style"
ARMS = ["control", "retrieval_profile_b"]


def policy() -> UnitPolicy:
    return UnitPolicy(
        [Experiment(SUPPORT, "conversation"), Experiment(STYLE, "user")],
        [
            Metric("resolved", "conversation", (SUPPORT,)),
            Metric("conversation_rating", "conversation", (STYLE,)),
            Metric("retained", "user", (STYLE,)),
            Metric("page_view", "user"),
        ],
    )


def flags() -> list[dict[str, Any]]:
    return [fl.flag(SUPPORT, ARMS), fl.flag(STYLE, ["plain", "fancy"])]


def ctx(conversation: str, user: str = "u-1") -> EvaluationContext:
    return EvaluationContext(user, {"conversationId": conversation, "userId": user})


def outcomes(sink: InMemorySink) -> list[dict[str, Any]]:
    return sink.of_kind(schema.OUTCOME)


def test_outcome_carries_the_variant_its_conversation_was_exposed_to(
    make_provider, of_client, sink: InMemorySink
) -> None:
    client = of_client(make_provider(flags(), policy()))
    served = client.get_string_details(SUPPORT, "control", ctx("c-1"))
    client.track("resolved", ctx("c-1"), TrackingEventDetails(value=3.5, attributes={"turns": 4}))
    [exposure] = sink.of_kind(schema.EXPOSURE)
    [outcome] = outcomes(sink)
    assert outcome[schema.EXPERIMENT_KEY] == SUPPORT
    assert outcome[schema.ASSIGNMENT_UNIT] == outcome[schema.METRIC_UNIT] == "conversation"
    assert outcome[schema.UNIT_ID] == exposure[schema.UNIT_ID] == "c-1"
    assert outcome[schema.VARIATION] == exposure[schema.VARIATION] == served.variant
    assert outcome[schema.VARIATION_ID] == exposure[schema.VARIATION_ID]
    assert outcome["conversationId"] == "c-1" and outcome["userId"] == "u-1"


def test_value_and_attributes_are_preserved(make_provider, of_client, sink: InMemorySink) -> None:
    client = of_client(make_provider(flags(), policy()))
    details = TrackingEventDetails(value=2.25, attributes={"channel": "chat", "escalated": False})
    client.track("resolved", ctx("c-1"), details)
    [outcome] = outcomes(sink)
    assert outcome[schema.METRIC] == "resolved"
    assert outcome[schema.VALUE] == 2.25
    assert outcome[schema.ATTRIBUTES] == {"channel": "chat", "escalated": False}


def test_an_outcome_names_the_experiment_its_run_and_its_flag_apart(
    make_provider, of_client, sink: InMemorySink
) -> None:
    renamed = Experiment(SUPPORT, "conversation", experiment_key="retrieval-q3", run_id="run-2")
    policy = UnitPolicy([renamed], [Metric("resolved", "conversation", ("retrieval-q3",))])
    client = of_client(make_provider(flags(), policy))
    client.get_string_details(SUPPORT, "control", ctx("c-1"))
    client.track("resolved", ctx("c-1"))
    [outcome] = outcomes(sink)
    assert outcome[schema.EXPERIMENT_KEY] == "retrieval-q3"
    assert outcome[schema.RUN_ID] == "run-2"
    assert outcome[schema.FLAG_KEY] == SUPPORT


def test_an_experiment_whose_unit_the_recorders_policy_lacks_gets_no_unit_id() -> None:
    """The recorder reads other units' IDs through its own policy; an outcome for an
    experiment on a unit that policy does not define (a recorder wired to another policy) is
    recorded without a unit ID, never guessed and never an exception."""
    ticket = Unit("ticket", "ticketId")
    tickets = Experiment("ticket-triage", "ticket")
    sink = InMemorySink()
    events = EventFanout([sink])
    exposures = ExposureRecorder(events, sweep_interval=None)
    lookup = ServedVariants(exposures, None, lambda flag_key: None)
    outcome = Outcome(
        "triaged",
        UnitKey("user", "u-1", "userId"),
        1.0,
        (tickets,),
        other_ids={"userId": "u-1", "ticketId": "T-1"},
    )

    OutcomeRecorder(events, UnitPolicy([tickets], units=[ticket]), lookup).record(outcome)
    OutcomeRecorder(events, UnitPolicy(), lookup).record(outcome)

    knows, lacks = outcomes(sink)
    assert knows[schema.UNIT_ID] == "T-1" and knows[schema.ASSIGNMENT_UNIT] == "ticket"
    assert schema.UNIT_ID not in lacks and lacks[schema.ASSIGNMENT_UNIT] == "ticket"
    assert lacks["ticketId"] == "T-1"  # still carried as one of the outcome's known IDs


def test_outcome_of_a_unit_never_exposed_has_no_variant(
    make_provider, of_client, sink: InMemorySink
) -> None:
    client = of_client(make_provider(flags(), policy()))
    client.track("resolved", ctx("c-never-evaluated"))
    [outcome] = outcomes(sink)
    assert outcome[schema.UNIT_ID] == "c-never-evaluated"
    assert schema.VARIATION not in outcome


def test_outcome_naming_no_experiment_is_recorded_at_its_own_unit(
    make_provider, of_client, sink: InMemorySink
) -> None:
    client = of_client(make_provider(flags(), policy()))
    client.track("page_view", ctx("c-1", "u-7"))
    [outcome] = outcomes(sink)
    assert schema.EXPERIMENT_KEY not in outcome
    assert outcome[schema.ASSIGNMENT_UNIT] == "user" and outcome[schema.UNIT_ID] == "u-7"


def test_conversation_outcome_in_a_user_experiment_produces_metric_unit_mismatch(
    make_provider, of_client, sink: InMemorySink
) -> None:
    client = of_client(make_provider(flags(), policy()))
    served = client.get_string_details(STYLE, "plain", ctx("c-1", "u-1"))
    client.track("conversation_rating", ctx("c-1", "u-1"), TrackingEventDetails(value=4.0))
    [guardrail] = sink.guardrails(Guardrail.METRIC_UNIT_MISMATCH)
    assert guardrail[schema.METRIC] == "conversation_rating"
    assert guardrail[schema.METRIC_UNIT] == "conversation"
    assert guardrail[schema.EXPERIMENT_KEY] == STYLE
    assert guardrail[schema.ASSIGNMENT_UNIT] == "user"
    assert guardrail[schema.UNIT_ID] == "u-1"
    assert guardrail["conversationId"] == "c-1"
    # The outcome is still keyed by the experiment's unit (the user), so it joins if kept.
    [outcome] = outcomes(sink)
    assert outcome[schema.UNIT_ID] == "u-1" and outcome[schema.METRIC_UNIT] == "conversation"
    assert outcome[schema.VARIATION] == served.variant


def test_user_outcome_in_a_user_experiment_raises_no_guardrail(
    make_provider, of_client, sink: InMemorySink
) -> None:
    client = of_client(make_provider(flags(), policy()))
    client.get_string_value(STYLE, "plain", ctx("c-1", "u-1"))
    client.track("retained", ctx("c-2", "u-1"))
    assert sink.guardrails() == []
    [outcome] = outcomes(sink)
    assert outcome[schema.UNIT_ID] == "u-1" and schema.VARIATION in outcome


# -- the simulated run -----------------------------------------------------------------------


def simulate(client: Any, conversations: int, seed: int = 7) -> None:
    """Conversations of 1-6 turns from 300 users; each turn evaluates the experiment, and
    about 60 % of conversations end with a resolution outcome, some with a rating too."""
    rng = random.Random(seed)
    for n in range(conversations):
        context = ctx(f"conv-{n:05d}", f"user-{rng.randrange(300):04d}")
        for _ in range(rng.randint(1, 6)):
            client.get_string_value(SUPPORT, "control", context)
        if rng.random() < 0.6:
            attributes = {"turns": rng.randint(1, 6)}
            client.track("resolved", context, TrackingEventDetails(1.0, attributes))
        if rng.random() < 0.3:
            client.track("resolved", context, TrackingEventDetails(float(rng.randint(1, 5))))


def join_report(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Join each outcome to the exposures of the same experiment, run, unit ID and variant."""
    exposures = [r for r in records if r["event"] == schema.EXPOSURE]
    outcomes_ = [r for r in records if r["event"] == schema.OUTCOME]
    key = ("experimentKey", "runId", "assignmentUnit", "unitId", "variation")
    exposure_keys = Counter(tuple(e.get(k) for k in key) for e in exposures)
    matches = [exposure_keys[tuple(o.get(k) for k in key)] for o in outcomes_]
    return {
        "exposures": len(exposures),
        "units": len({e["unitId"] for e in exposures}),
        "duplicates": sum(c - 1 for c in exposure_keys.values()),
        "outcomes": len(outcomes_),
        "joined_once": sum(1 for m in matches if m == 1),
        "variants": Counter(e["variation"] for e in exposures),
    }


def test_simulated_1000_conversations_join_every_outcome_to_one_exposure(
    make_provider, of_client, tmp_path: Path
) -> None:
    path = tmp_path / "events.jsonl"
    sink = JsonLinesSink(path)
    client = of_client(make_provider(flags(), policy(), sinks=[sink]))
    simulate(client, 1000)
    sink.close()
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    report = join_report(records)
    assert report["exposures"] == report["units"] == 1000
    assert report["duplicates"] == 0
    assert report["outcomes"] > 500
    assert report["joined_once"] == report["outcomes"]  # join rate 100 %
    assert set(report["variants"]) == set(ARMS)
    assert all(e["conversationId"] == e["unitId"] for e in records if "unitId" in e)


def test_simulated_run_still_joins_fully_with_hashed_ids(
    make_provider, of_client, tmp_path: Path
) -> None:
    path = tmp_path / "events.jsonl"
    sink = JsonLinesSink(path)
    privacy = Privacy.hashed("a-test-key-of-32-bytes-exactly!!")
    client = of_client(make_provider(flags(), policy(), sinks=[sink], privacy=privacy))
    simulate(client, 300, seed=11)
    sink.close()
    text = path.read_text(encoding="utf-8")
    report = join_report([json.loads(line) for line in text.splitlines()])
    assert report["exposures"] == report["units"] == 300
    assert report["duplicates"] == 0
    assert report["joined_once"] == report["outcomes"] > 0
    assert "conv-0" not in text and "user-0" not in text
