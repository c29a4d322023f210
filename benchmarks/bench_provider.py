"""Provider overhead: one evaluation through our provider and through the OpenFeature client,
against a raw ``fbclient`` ``variation`` call on the same flag and key in the same run."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from openfeature import api
from openfeature.evaluation_context import EvaluationContext

from benchmarks._report import Row, per_call_seconds, print_rows
from featbit_experiments import FeatBitProvider, UnitPolicy

FLAG = "support-retrieval-test"


def _bootstrap() -> Path:
    flag = {
        "id": "f1",
        "key": FLAG,
        "name": FLAG,
        "variationType": "string",
        "variations": [{"id": "a", "value": "control"}, {"id": "b", "value": "treatment"}],
        "targetUsers": [],
        "rules": [],
        "isEnabled": True,
        "disabledVariationId": "a",
        "fallthrough": {
            "dispatchKey": None,
            "includedInExpt": True,
            "variations": [
                {"id": "a", "rollout": [0, 0.5], "exptRollout": 1},
                {"id": "b", "rollout": [0.5, 1], "exptRollout": 1},
            ],
        },
        "exptIncludeAllTargets": True,
        "tags": ["unit:conversation"],
        "isArchived": False,
        "updatedAt": "2026-01-01T00:00:00Z",
    }
    path = Path(tempfile.mkdtemp()) / "bench.json"
    path.write_text(json.dumps({"featureFlags": [flag], "segments": []}))
    return path


def run() -> list[Row]:
    provider = FeatBitProvider.offline(_bootstrap(), policy=UnitPolicy(), sinks=[])
    api.set_provider_and_wait(provider, domain="bench-provider")
    client = api.get_client("bench-provider")
    fb = provider.client
    user = {"key": "conv-1", "name": "conv-1", "conversationId": "conv-1", "userId": "u-1"}
    context = EvaluationContext("u-1", {"conversationId": "conv-1", "userId": "u-1"})

    raw = per_call_seconds(lambda: fb.variation(FLAG, user, "control"))
    resolve = per_call_seconds(lambda: provider.resolve_string_details(FLAG, "control", context))
    through_of = per_call_seconds(lambda: client.get_string_value(FLAG, "control", context))
    provider.shutdown()
    api.clear_providers()
    return [
        Row(name="raw fbclient variation", value=raw * 1e6, unit="us/call", ratio=1.0),
        Row(
            name="provider resolve (policy + unit key + FeatBit)",
            value=resolve * 1e6,
            unit="us/call",
            ratio=resolve / raw,
            baseline="raw fbclient",
        ),
        Row(
            name="OpenFeature client get_string_value",
            value=through_of * 1e6,
            unit="us/call",
            ratio=through_of / raw,
            baseline="raw fbclient",
        ),
    ]


if __name__ == "__main__":
    print_rows("bench_provider", run())
