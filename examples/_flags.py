"""The examples' FeatBit flags, defined in code with :class:`featbit_experiments.Flag`.

The examples serve these offline (``FeatBitProvider.offline(flags=EXAMPLE_FLAGS)``).
``examples/data/flags.json`` is the same data in FeatBit's ``data-sync`` format, for a FeatBit
environment or any other bootstrap reader; ``python -m examples._flags`` rewrites it, and a
test keeps the two equal. The fixed ``updatedAt`` keeps the file the same from run to run.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime, timezone

from featbit_experiments import Flag, bootstrap_document

__all__ = ["EXAMPLE_FLAGS", "bootstrap_json"]

UPDATED_AT = datetime(2025, 1, 1, 0, 0, 1, 250000, tzinfo=timezone.utc)

EXAMPLE_FLAGS = (
    Flag.string(
        "support-retrieval-test",
        ["control", "retrieval_profile_b"],
        split={"control": 50, "retrieval_profile_b": 50},
        tags=["unit:conversation", "team:support"],
        updated_at=UPDATED_AT,
    ),
    Flag.string(
        "writing-assistant-style-test",
        ["control", "concise_suggestions"],
        split={"control": 50, "concise_suggestions": 50},
        tags=["unit:user"],
        updated_at=UPDATED_AT,
    ),
    Flag.string(
        "b2b-model-route-test",
        ["standard-model", "large-model"],
        split={"standard-model": 50, "large-model": 50},
        tags=["unit:account"],
        updated_at=UPDATED_AT,
    ),
    # An ordinary flag that every example could read but none does: the lifecycle command
    # lists it as serving one variant to everyone, a candidate for removal.
    Flag.number(
        "assistant-temperature",
        {"low": 0.2, "high": 0.7},
        serve="low",
        updated_at=UPDATED_AT,
    ),
)


def bootstrap_json() -> str:
    """``examples/data/flags.json`` as it should read."""
    return json.dumps(bootstrap_document(EXAMPLE_FLAGS), indent=2) + "\n"


if __name__ == "__main__":
    from examples._settings import FLAGS

    FLAGS.write_text(bootstrap_json(), encoding="utf-8")
    sys.stdout.write(f"wrote {FLAGS}\n")
