"""The audit on a log written by the real producers: a real fbclient (offline bootstrap), the
real OpenFeature API, the provider's exposure and outcome recorders, and the JSON Lines sink.
What the core writes is what the audit reads."""

from __future__ import annotations

from pathlib import Path

from openfeature.evaluation_context import EvaluationContext
from openfeature.track import TrackingEventDetails

from featbit_experiments import Experiment, JsonLinesSink, Metric, UnitPolicy
from featbit_experiments.audit import Action, AuditOptions, ExperimentAudit, audit_file
from tests.support import flags as fl
from tests.support.event_logs import ARMS, SUPPORT

CONVERSATIONS = 200
TURNS = 3


def policy() -> UnitPolicy:
    return UnitPolicy(
        [Experiment(SUPPORT, "conversation")],
        [
            Metric("resolved", "conversation", (SUPPORT,)),
            Metric("retained", "user", (SUPPORT,)),
        ],
    )


def context(i: int) -> EvaluationContext:
    # Ten users, each with many conversations: user and conversation IDs differ.
    return EvaluationContext(
        f"user-{i % 10}", {"conversationId": f"conv-{i}", "accountId": f"acct-{i % 3}"}
    )


def simulate(make_provider, of_client, path: Path, *, retained: bool = False) -> None:
    """Several turns per conversation, then one outcome (and optionally a per-user metric)."""
    events = JsonLinesSink(path)
    provider = make_provider(
        [fl.flag(SUPPORT, list(ARMS), tags=["unit:conversation"])], policy(), sinks=[events]
    )
    client = of_client(provider)
    for i in range(CONVERSATIONS):
        ctx = context(i)
        variant = "control"
        for _ in range(TURNS):
            variant = client.get_string_value(SUPPORT, "control", ctx)
        resolved = 1.0 if (i % 10) < (8 if variant == ARMS[1] else 5) else 0.0
        client.track("resolved", ctx, TrackingEventDetails(value=resolved))
        if retained:
            client.track("retained", ctx, TrackingEventDetails(value=1.0))
    events.close()


def audit_of(path: Path, guardrail_metrics: tuple[str, ...] = ()) -> ExperimentAudit:
    options = AuditOptions(primary_metric="resolved", guardrail_metrics=guardrail_metrics)
    report = audit_file(path, options)
    assert report.malformed_count == 0
    [only] = report.experiments
    return only


def test_a_log_from_the_real_producers_audits_clean(make_provider, of_client, tmp_path) -> None:
    path = tmp_path / "events.jsonl"
    simulate(make_provider, of_client, path)
    result = audit_of(path)
    assert result.assignment_unit == "conversation" and not result.unit_changed
    assert result.exposed_units == CONVERSATIONS
    assert result.mixed.units == 0
    assert result.join.outcomes == CONVERSATIONS and result.join.rate == 1.0
    assert result.join.variant_inferred == 0
    assert result.metric_units == ()
    assert result.sample_ratio is not None and result.sample_ratio.p_value > 0.001
    assert result.decision.action in (Action.CONTINUE, Action.SHIP)
    [resolved] = result.metrics
    assert resolved.kind == "binary" and sum(v.units for v in resolved.variants) == CONVERSATIONS


def test_a_per_user_metric_from_the_real_producers_is_named(
    make_provider, of_client, tmp_path
) -> None:
    path = tmp_path / "events.jsonl"
    simulate(make_provider, of_client, path, retained=True)
    result = audit_of(path)
    [mismatch] = result.metric_units
    assert (mismatch.metric, mismatch.unit, mismatch.outcomes) == (
        "retained",
        "user",
        CONVERSATIONS,
    )
    assert result.guardrails == {"metric_unit_mismatch": CONVERSATIONS}
    assert {"metric_unit_mismatch", "guardrail_events"} <= {f.code for f in result.findings}
    # Secondary here (the primary is 'resolved'), so reported but not decisive.
    assert result.decision.action in (Action.CONTINUE, Action.SHIP)
    strict = audit_of(path, guardrail_metrics=("retained:higher",))
    assert strict.decision.rule == "redesign.metric_unit"
