"""Offline bootstrap files: a broken file is a start-up error naming it, never an empty set."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from featbit_experiments import BootstrapError, FeatBitProvider
from featbit_experiments.bootstrap import checked_bootstrap
from tests.support import flags as fl


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "flags.json"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "is empty"),
        ("{not json", "not valid JSON (line 1"),
        ("[]", "top level must be a JSON object"),
        ('{"messageType": "hello"}', "data-sync envelope"),
        (fl.bootstrap_json([]), "no feature flags"),
        (json.dumps({"featureFlags": [{"key": "x"}]}), "lacks"),
    ],
)
def test_broken_bootstrap_names_the_file_and_the_problem(
    tmp_path: Path, text: str, expected: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(BootstrapError) as raised:
        FeatBitProvider.offline(path)
    assert str(path) in str(raised.value)
    assert expected in str(raised.value)


def test_missing_bootstrap_file(tmp_path: Path) -> None:
    with pytest.raises(BootstrapError, match="not found"):
        FeatBitProvider.offline(tmp_path / "absent.json")


def test_duplicate_flag_keys_are_refused() -> None:
    flag = fl.flag("a", ["x", "y"])
    with pytest.raises(BootstrapError, match="appears twice"):
        checked_bootstrap(fl.bootstrap_json([flag, flag]))


def test_fallthrough_serving_an_unknown_variation_is_refused() -> None:
    flag = fl.flag("a", ["x", "y"])
    flag["fallthrough"]["variations"][0]["id"] = "ghost"
    with pytest.raises(BootstrapError, match="unknown variation 'ghost'"):
        checked_bootstrap(fl.bootstrap_json([flag]))


def test_bare_latest_all_payload_with_minimal_flags_is_accepted(tmp_path: Path) -> None:
    minimal = {
        "featureFlags": [
            {
                "id": "f1",
                "key": "greeting",
                "variationType": "string",
                "variations": [{"id": "a", "value": "hello"}],
                "isEnabled": True,
                "disabledVariationId": "a",
                "fallthrough": {"variations": [{"id": "a", "rollout": [0, 1]}]},
                "updatedAt": "2026-01-01T00:00:00Z",
            }
        ]
    }
    provider = FeatBitProvider.offline(write(tmp_path, json.dumps(minimal)))
    try:
        assert provider.resolve_string_details("greeting", "x").value == "hello"
    finally:
        provider.shutdown()
