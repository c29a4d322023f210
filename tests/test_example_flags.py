"""The examples' flags are defined in code (``examples/_flags.py``); ``examples/data/flags.json``
holds the same data in FeatBit's format and must never drift from it."""

from __future__ import annotations

from examples._flags import bootstrap_json
from examples._settings import FLAGS


def test_flags_json_is_what_the_flags_in_code_generate() -> None:
    assert FLAGS.read_text(encoding="utf-8") == bootstrap_json(), (
        "examples/data/flags.json is stale: run `.venv/bin/python -m examples._flags`"
    )
