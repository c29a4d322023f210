"""Minimal end-to-end run on embedded defaults: offline FeatBit bootstrap file, unit policy
file, events to the console. Shows conversation-level assignment staying stable across turns
and a turn without a conversation ID getting the default plus a guardrail."""

from __future__ import annotations

from pathlib import Path

from openfeature import api
from openfeature.evaluation_context import EvaluationContext
from openfeature.track import TrackingEventDetails

from featbit_experiments import FeatBitProvider, InMemorySink, load_policy

DATA = Path(__file__).resolve().parent.parent / "data"
FLAG = "support-retrieval-test"


def main() -> None:
    sink = InMemorySink()
    provider = FeatBitProvider.offline(
        DATA / "flags.json", policy=load_policy(DATA / "policy.toml"), sinks=[sink]
    )
    api.set_provider_and_wait(provider)
    client = api.get_client()
    print(f"{'conversation':14} {'turn':>4}  {'variant':22} reason")
    for n in range(6):
        conversation = f"conv-{n:03d}"
        for turn in range(1, 4):
            context = EvaluationContext(
                "user-142", {"conversationId": conversation, "userId": "user-142"}
            )
            details = client.get_string_details(FLAG, "control", context)
            print(f"{conversation:14} {turn:>4}  {details.value:22} {details.reason}")
        client.track("resolved_without_escalation", context, TrackingEventDetails(value=1.0))
    missing = client.get_string_details(FLAG, "control", EvaluationContext("user-142"))
    print(f"\nno conversation ID -> {missing.value!r} ({missing.error_code})")
    for event in sink.guardrails():
        print(f"guardrail {event['guardrail']}: {event['message']}")
    api.shutdown()


if __name__ == "__main__":
    main()
