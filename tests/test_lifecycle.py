"""``featbit-experiments lifecycle`` on a small sample code base: decided experiments with
every code location of their branches and event names, flags serving one variant for N days,
flags evaluated in code but missing in FeatBit, experiment flags no code evaluates; text,
JSON and an exit code for CI."""

from __future__ import annotations

import contextlib
import io
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from featbit_experiments import Flag, bootstrap_document
from featbit_experiments.cli import main
from featbit_experiments.lifecycle import scan

NOW = datetime(2026, 6, 30, tzinfo=timezone.utc)
RECENT = NOW - timedelta(days=2)
OLD = NOW - timedelta(days=90)

APP = """\
from openfeature import api

from featbit_experiments_langchain import experiment_branch

ROUTE_FLAG = "model-route-test"
client = api.get_client()


def route(chain_a, chain_b):
    return experiment_branch(ROUTE_FLAG, {"a": chain_a, "b": chain_b})


def answer(ctx):
    if client.get_boolean_value("new-checkout", False, ctx):
        pass
    tone = client.get_string_details(flag_key="reply-tnoe", default_value="plain")
    client.track("answer_accepted", ctx)
    return tone
"""


def flags_file(tmp_path: Path) -> Path:
    flags = [
        Flag.string("model-route-test", ["a", "b"], split={"a": 50, "b": 50},
                    tags=["unit:conversation"], updated_at=RECENT),
        Flag.boolean("new-checkout", serve=True, updated_at=OLD),
        Flag.string("reply-tone", ["plain", "warm"], split={"plain": 50, "warm": 50},
                    tags=["unit:user"], updated_at=RECENT),
        Flag.boolean("dark-mode", serve=True, updated_at=RECENT),
    ]  # fmt: skip
    path = tmp_path / "flags.json"
    path.write_text(json.dumps(bootstrap_document(flags)), encoding="utf-8")
    return path


def audit_file(tmp_path: Path, action: str = "ship") -> Path:
    path = tmp_path / "audit.json"
    decision = {"action": action, "rule": f"{action}.x", "reason": "b beats a on answer_accepted"}
    experiments = [
        {"experiment_key": "model-route-test", "flag_keys": ["model-route-test"],
         "decision": decision, "metrics": [{"metric": "answer_accepted"}]},
    ]  # fmt: skip
    path.write_text(json.dumps({"experiments": experiments}), encoding="utf-8")
    return path


@pytest.fixture
def code(tmp_path: Path) -> Path:
    root = tmp_path / "service"
    (root / "app").mkdir(parents=True)
    (root / "app" / "routes.py").write_text(APP, encoding="utf-8")
    (root / "web").mkdir()
    (root / "web" / "checkout.ts").write_text(
        'const enabled = flags.get("new-checkout");\nconst other = "new-checkout-v2";\n',
        encoding="utf-8",
    )
    (root / ".venv").mkdir()
    (root / ".venv" / "vendored.py").write_text('get_string_value("model-route-test")\n')
    return root


def lifecycle(*args: str | Path) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["lifecycle", *map(str, args)])
    return code, out.getvalue(), err.getvalue()


def items(tmp_path: Path, code: Path, *extra: str) -> dict[tuple[str, str], dict[str, Any]]:
    status, out, _ = lifecycle(
        code, "--flags", flags_file(tmp_path), "--audit", audit_file(tmp_path),
        "--as-of", NOW.date().isoformat(), "--json", *extra,
    )  # fmt: skip
    assert status == 1
    return {(i["kind"], i["flag_key"]): i for i in json.loads(out)["items"]}


def locations(item: dict[str, Any]) -> set[tuple[str, int, str, str]]:
    return {(Path(r["path"]).name, r["line"], r["kind"], r["key"]) for r in item["references"]}


def line_of(text: str, needle: str) -> int:
    return next(n for n, line in enumerate(text.splitlines(), 1) if needle in line)


def test_a_decided_experiment_lists_its_branch_flag_and_event_name_locations(
    tmp_path: Path, code: Path
) -> None:
    decided = items(tmp_path, code)[("decided", "model-route-test")]
    assert "ship" in decided["reason"] and decided["event_names"] == ["answer_accepted"]
    assert locations(decided) == {
        ("routes.py", line_of(APP, "ROUTE_FLAG ="), "literal", "model-route-test"),
        ("routes.py", line_of(APP, "experiment_branch(ROUTE_FLAG"), "branch", "model-route-test"),
        ("routes.py", line_of(APP, 'track("answer_accepted"'), "track", "answer_accepted"),
    }


def test_a_flag_serving_one_variant_for_n_days_is_listed_with_its_code(
    tmp_path: Path, code: Path
) -> None:
    stale = items(tmp_path, code)[("one_variant", "new-checkout")]
    assert "'true' to everyone" in stale["reason"] and "90 days" in stale["reason"]
    assert locations(stale) == {
        ("routes.py", line_of(APP, "new-checkout"), "evaluation", "new-checkout"),
        ("checkout.ts", 1, "text", "new-checkout"),
    }


def test_a_recent_one_variant_flag_is_not_listed(tmp_path: Path, code: Path) -> None:
    assert ("one_variant", "dark-mode") not in items(tmp_path, code)


def test_the_stale_threshold_is_an_option(tmp_path: Path, code: Path) -> None:
    assert ("one_variant", "dark-mode") in items(tmp_path, code, "--stale-days", "1")


def test_a_flag_evaluated_in_code_but_missing_in_featbit_is_listed(
    tmp_path: Path, code: Path
) -> None:
    missing = items(tmp_path, code)[("missing_in_featbit", "reply-tnoe")]
    assert locations(missing) == {
        ("routes.py", line_of(APP, "reply-tnoe"), "evaluation", "reply-tnoe")
    }


def test_an_experiment_flag_no_code_evaluates_is_listed(tmp_path: Path, code: Path) -> None:
    found = items(tmp_path, code)
    assert ("never_referenced", "reply-tone") in found
    assert ("never_referenced", "model-route-test") not in found


def test_vendored_directories_are_not_scanned(tmp_path: Path, code: Path) -> None:
    references = scan([code], {"model-route-test"})
    assert not any(".venv" in r.path for r in references)


def test_text_output_names_each_location(tmp_path: Path, code: Path) -> None:
    status, out, _ = lifecycle(
        code, "--flags", flags_file(tmp_path), "--audit", audit_file(tmp_path),
        "--as-of", NOW.date().isoformat(),
    )  # fmt: skip
    assert status == 1
    branch_line = line_of(APP, "experiment_branch(ROUTE_FLAG")
    assert f"routes.py:{branch_line}  branch  model-route-test" in out
    assert "model-route-test  [decided]  audit decided ship" in out


def test_nothing_to_clean_up_exits_zero(tmp_path: Path) -> None:
    root = tmp_path / "clean"
    root.mkdir()
    (root / "app.py").write_text('client.get_string_value("live-test", "a", ctx)\n')
    flags = tmp_path / "live.json"
    flags.write_text(json.dumps(bootstrap_document([
        Flag.string("live-test", ["a", "b"], split={"a": 50, "b": 50}, tags=["unit:user"]),
    ])))  # fmt: skip
    status, out, _ = lifecycle(root, "--flags", flags, "--audit", audit_file(tmp_path, "continue"))
    assert status == 0 and out.startswith("0 to clean up")


def test_an_audit_file_without_decisions_is_a_usage_error(tmp_path: Path, code: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"lines": 3}')
    status, _, err = lifecycle(code, "--flags", flags_file(tmp_path), "--audit", bad)
    assert status == 2 and "bad.json" in err and "experiments" in err


def test_flags_are_read_from_a_featbit_environment(
    tmp_path: Path, code: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.support.featbit_server import FeatBitTestServer

    document = json.loads(flags_file(tmp_path).read_text())
    with FeatBitTestServer() as server:
        server.set_flags(document["data"]["featureFlags"])
        monkeypatch.setenv("FEATBIT_ENV_SECRET", server.env_secret)
        monkeypatch.setenv("FEATBIT_STREAMING_URL", server.streaming_url)
        monkeypatch.setenv("FEATBIT_EVENT_URL", server.event_url)
        status, out, _ = lifecycle(
            code, "--featbit", "--audit", audit_file(tmp_path),
            "--as-of", NOW.date().isoformat(), "--json",
        )  # fmt: skip
    assert status == 1
    kinds = {(i["kind"], i["flag_key"]) for i in json.loads(out)["items"]}
    assert ("missing_in_featbit", "reply-tnoe") in kinds and (
        "decided",
        "model-route-test",
    ) in kinds


def test_featbit_without_its_variables_is_a_usage_error(
    tmp_path: Path, code: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("FEATBIT_ENV_SECRET", "FEATBIT_STREAMING_URL", "FEATBIT_EVENT_URL"):
        monkeypatch.delenv(name, raising=False)
    status, _, err = lifecycle(code, "--featbit")
    assert status == 2 and "FEATBIT_ENV_SECRET" in err
