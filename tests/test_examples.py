"""The examples, run in-process at a small size, read as what they promise: the audit of each
run's event log shows no unit with mixed variants, every outcome joined to its exposure, both
variants exposed, and the HTML report written. Assertions are on the audit result and on what
the simulated people actually got, not on printed text; one run per example is shared by the
tests about it. Also: the same seed gives the same run, the examples run against a FeatBit
server speaking FeatBit's protocol (keyed by the right unit there too) and against Redis, and
their settings refuse half a configuration."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import redis
from fbclient.config import WebSocketConfig
from openfeature.transaction_context import clear_transaction_context_propagator

from examples._settings import FLAGS, FeatBitServer, Settings, SettingsError
from examples.b2b_accounts.demo import B2BOptions, B2BResult
from examples.b2b_accounts.demo import run as run_b2b
from examples.support_assistant.__main__ import main as support_main
from examples.support_assistant.demo import DemoOptions, DemoResult
from examples.support_assistant.demo import run as run_support
from examples.writing_assistant.demo import WritingOptions, WritingResult
from examples.writing_assistant.demo import run as run_writing
from featbit_experiments.audit import ExperimentAudit
from tests.support.featbit_server import FeatBitTestServer
from tests.support.redis_server import ThrowawayRedis

CONVERSATIONS = 40
WRITERS = 30
ACCOUNTS = 12


@pytest.fixture(scope="module", autouse=True)
def _clear_propagator() -> Iterator[None]:
    """The example apps install OpenFeature's contextvars propagator, as an app does at
    start-up; take it away again for the tests that follow."""
    yield
    clear_transaction_context_propagator()


def quiet(tmp: Path, **changes: Any) -> Settings:
    """Settings writing under ``tmp``: FeatBit offline and in-memory assignments unless
    ``changes`` say otherwise."""
    return replace(Settings(out_dir=tmp), **changes)


@pytest.fixture(scope="module")
def support(tmp_path_factory: pytest.TempPathFactory) -> DemoResult:
    settings = quiet(tmp_path_factory.mktemp("support"))
    return run_support(
        DemoOptions(conversations=CONVERSATIONS, settings=settings),
        out=io.StringIO(),
        err=io.StringIO(),
    )


@pytest.fixture(scope="module")
def writing(tmp_path_factory: pytest.TempPathFactory) -> WritingResult:
    settings = quiet(tmp_path_factory.mktemp("writing"))
    return run_writing(
        WritingOptions(users=WRITERS, settings=settings), out=io.StringIO(), err=io.StringIO()
    )


@pytest.fixture(scope="module")
def b2b(tmp_path_factory: pytest.TempPathFactory) -> B2BResult:
    settings = quiet(tmp_path_factory.mktemp("b2b"))
    return run_b2b(
        B2BOptions(accounts=ACCOUNTS, settings=settings), out=io.StringIO(), err=io.StringIO()
    )


def variants_exposed(audit: ExperimentAudit) -> dict[str, int]:
    return {exposure.variant: exposure.units for exposure in audit.exposures}


# -- support assistant (the demo) ---------------------------------------------------------------


def test_support_demo_never_shows_one_conversation_two_variants(support: DemoResult) -> None:
    audit = support.audit
    assert audit.assignment_unit == "conversation" and not audit.unit_changed
    assert audit.mixed.units == 0 and audit.mixed.of_units == CONVERSATIONS


def test_support_demo_outcomes_all_join_their_conversation_exposure(support: DemoResult) -> None:
    join = support.audit.join
    # resolution once per conversation, a latency per turn, a handoff per handed-off one
    assert join.outcomes == CONVERSATIONS + support.tally.turns + support.tally.handoffs
    assert join.rate == 1.0 and join.variant_inferred == 0
    assert support.audit.metric_units == ()


def test_support_demo_exposes_both_retrieval_profiles(support: DemoResult) -> None:
    exposed = variants_exposed(support.audit)
    assert set(exposed) == {"control", "retrieval_profile_b"}
    assert min(exposed.values()) > 0 and sum(exposed.values()) == CONVERSATIONS


def test_support_demo_reads_resolution_and_both_guardrail_metrics(support: DemoResult) -> None:
    metrics = {m.metric: m for m in support.audit.metrics}
    assert metrics["resolved_without_escalation"].role == "primary"
    assert metrics["human_handoff"].role == "guardrail"
    assert metrics["turn_latency_ms"].role == "guardrail"
    resolved = metrics["resolved_without_escalation"]
    assert sum(v.units for v in resolved.variants) == CONVERSATIONS


def test_support_demo_conversations_all_complete_over_http_and_streaming(
    support: DemoResult,
) -> None:
    tally = support.tally
    assert tally.conversations == CONVERSATIONS and tally.failed_conversations == 0
    assert tally.resolved + tally.handoffs + tally.left == CONVERSATIONS
    assert 2 * CONVERSATIONS <= tally.turns <= 5 * CONVERSATIONS
    assert 0 < tally.streamed_turns < tally.turns
    assert support.audit.guardrails == {} and support.audit.fallbacks == 0


def test_support_demo_writes_the_html_report(support: DemoResult) -> None:
    page = support.files.report.read_text(encoding="utf-8")
    assert "support-retrieval-test" in page and "<svg" in page


def test_support_demo_spans_carry_the_experiment_and_the_conversation(
    support: DemoResult,
) -> None:
    spans = [json.loads(line) for line in support.files.spans.read_text().splitlines()]
    assert spans
    tagged = [s for s in spans if s["attributes"].get("experiment.key") == "support-retrieval-test"]
    assert tagged
    assert {s["attributes"]["experiment.unit"] for s in tagged} == {"conversation"}


def test_the_same_seed_gives_the_same_demo_run(tmp_path: Path) -> None:
    def once(directory: str) -> tuple[object, ...]:
        options = DemoOptions(conversations=12, seed=3, settings=quiet(tmp_path / directory))
        result = run_support(options, out=io.StringIO(), err=io.StringIO())
        metric = next(m for m in result.audit.metrics if m.metric == "resolved_without_escalation")
        return (
            result.tally.turns,
            result.tally.resolved,
            result.tally.handoffs,
            variants_exposed(result.audit),
            [(v.variant, v.estimate) for v in metric.variants],
        )

    assert once("first") == once("second")


def test_the_demo_command_exits_zero_when_the_units_agree(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert support_main(["--conversations", "6", "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert "units with mixed variants: 0 of 6" in printed
    assert (tmp_path / "support_assistant" / "audit.html").is_file()


# -- writing assistant (user level) -------------------------------------------------------------


def test_writing_example_keeps_each_writer_on_one_style_across_sessions(
    writing: WritingResult,
) -> None:
    audit = writing.audit
    assert audit.assignment_unit == "user"
    assert writing.sessions > WRITERS  # writers come back: several sessions each
    assert audit.mixed.units == 0 and audit.mixed.of_units == WRITERS
    assert writing.writers_with_both_styles == 0


def test_writing_example_outcomes_join_the_writer_exposure(writing: WritingResult) -> None:
    join = writing.audit.join
    assert join.outcomes == 2 * writing.suggestions  # accepted or not, and a latency each
    assert join.rate == 1.0 and writing.audit.metric_units == ()


def test_writing_example_exposes_both_styles_and_writes_the_report(
    writing: WritingResult,
) -> None:
    exposed = variants_exposed(writing.audit)
    assert set(exposed) == {"control", "concise_suggestions"} and min(exposed.values()) > 0
    assert writing.files.report.is_file()


# -- B2B accounts (account level) ---------------------------------------------------------------


def test_b2b_example_gives_every_user_of_a_tenant_the_same_route(b2b: B2BResult) -> None:
    audit = b2b.audit
    assert audit.assignment_unit == "account"
    assert b2b.users > ACCOUNTS  # several users per tenant
    assert audit.mixed.units == 0 and audit.mixed.of_units == ACCOUNTS
    assert b2b.accounts_with_both_routes == 0 and b2b.failed_requests == 0


def test_b2b_example_outcomes_join_the_account_exposure(b2b: B2BResult) -> None:
    join = b2b.audit.join
    assert join.outcomes == 2 * b2b.questions  # accepted or not, and a latency each
    assert join.rate == 1.0 and b2b.audit.metric_units == ()


def test_b2b_example_exposes_both_routes_and_writes_the_report(b2b: B2BResult) -> None:
    exposed = variants_exposed(b2b.audit)
    assert set(exposed) == {"standard-model", "large-model"} and min(exposed.values()) > 0
    assert b2b.audit.control == "standard-model"
    assert b2b.files.report.is_file()


# -- real services ------------------------------------------------------------------------------


def test_an_example_against_a_featbit_server_sends_featbit_the_user_as_the_key(
    tmp_path: Path,
) -> None:
    flags = json.loads(FLAGS.read_text(encoding="utf-8"))["data"]["featureFlags"]
    with FeatBitTestServer() as server:
        server.set_flags(flags)
        featbit = FeatBitServer(
            server.env_secret,
            server.streaming_url,
            server.event_url,
            {"websocket": WebSocketConfig(timeout=0.5), "events_flush_interval": 0.2},
        )
        result = run_writing(
            WritingOptions(users=8, settings=quiet(tmp_path, featbit=featbit)),
            out=io.StringIO(),
            err=io.StringIO(),
        )
        flag_events = server.flag_events("writing-assistant-style-test")
        metric_events = server.metric_events("suggestion_accepted")
    assert result.audit.mixed.units == 0 and result.audit.join.rate == 1.0
    writers = {f"writer-{n:03d}" for n in range(8)}
    assert {event.user_key for event in flag_events} == writers
    assert {event.user_key for event in metric_events} == writers


def test_an_example_with_redis_keeps_its_assignments_there(tmp_path: Path) -> None:
    with ThrowawayRedis() as server:
        result = run_writing(
            WritingOptions(users=6, settings=quiet(tmp_path, redis_url=server.url)),
            out=io.StringIO(),
            err=io.StringIO(),
        )
        stored = redis.Redis.from_url(server.url).keys("featbit-examples:writing_assistant:*")
    assert result.audit.mixed.units == 0 and result.audit.join.rate == 1.0
    assert len(stored) >= 6


def test_settings_refuse_part_of_a_featbit_configuration() -> None:
    with pytest.raises(SettingsError, match="FEATBIT_EVENT_URL"):
        Settings.from_env(
            {"FEATBIT_ENV_SECRET": "s3cret", "FEATBIT_STREAMING_URL": "wss://featbit.example"}
        )


def test_settings_describe_services_without_their_secrets() -> None:
    settings = Settings.from_env(
        {
            "FEATBIT_ENV_SECRET": "s3cret",
            "FEATBIT_STREAMING_URL": "wss://featbit.example",
            "FEATBIT_EVENT_URL": "https://featbit.example",
            "REDIS_URL": "redis://:hunter2@cache.example:6379/0",
        }
    )
    described = "\n".join(settings.describe())
    assert "wss://featbit.example" in described and "cache.example:6379" in described
    assert "s3cret" not in described and "hunter2" not in described
