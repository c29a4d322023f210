"""The preflight's production checks against real parts: a pilot log written by the real
provider (stable IDs, units a day), the ledger's Redis read through CONFIG GET on a throwaway
server (persistence, eviction, refused CONFIG, unreachable), the deployment's ledger and idle
TTLs, flags from a live FeatBit environment, and the provider's opt-in start-up check."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from fbclient.config import WebSocketConfig
from openfeature.evaluation_context import EvaluationContext

from featbit_experiments import (
    Experiment,
    JsonLinesSink,
    Metric,
    RedisStore,
    RollbackMode,
    UnitPolicy,
)
from featbit_experiments import event_schema as schema
from featbit_experiments.preflight import (
    Deployment,
    ExperimentPlan,
    PreflightPlan,
    Rule,
    Severity,
    check,
    flags_from_featbit,
    preflight,
    read_pilot_log,
)
from tests.conftest import ProviderFactory
from tests.support import flags as fl
from tests.support.featbit_server import FeatBitTestServer
from tests.support.redis_server import ThrowawayRedis, free_port

FLAG = "support-retrieval-test"
ARMS = ["control", "retrieval_profile_b"]
POLICY = UnitPolicy(
    [Experiment(FLAG, "conversation", rollback=RollbackMode.FINISH_ACTIVE)],
    [Metric("resolved", "conversation", (FLAG,), direction="higher_is_better")],
)
FLAGS = [fl.flag(FLAG, ARMS, tags=["unit:conversation"])]


def redis_plan(url: str) -> PreflightPlan:
    return PreflightPlan(deployment=Deployment(instances=3, ledger="redis", redis_url=url))


def found(report: Any, rule: Rule) -> list[tuple[Severity, str]]:
    return [(f.severity, f.message) for f in report.all_findings() if f.rule is rule]


# -- stable IDs and traffic from a pilot ------------------------------------------------------


def pilot_log(make_provider: ProviderFactory, path: Path, contexts: list[dict[str, str]]) -> Path:
    """Evaluate the experiment once per context through the real provider, events to ``path``."""
    sink = JsonLinesSink(path)
    provider = make_provider(FLAGS, POLICY, sinks=[sink])
    for attributes in contexts:
        provider.resolve_string_details(FLAG, "control", EvaluationContext(None, attributes))
    provider.shutdown()
    sink.close()
    return path


def conversations(n: int) -> list[dict[str, str]]:
    return [{"conversationId": f"c-{i}"} for i in range(n)]


def test_pilot_refusals_above_ten_percent_are_an_error_counted_per_source(
    make_provider: ProviderFactory, tmp_path: Path
) -> None:
    missing = [{"userId": "u-1"}] * 6
    invalid = [{"thread_id": "has spaces in it"}] * 4
    log = pilot_log(make_provider, tmp_path / "pilot.jsonl", conversations(90) + missing + invalid)
    report = preflight(POLICY, FLAGS, events=log)
    ((severity, message),) = found(report, Rule.STABLE_IDS)
    assert severity is Severity.ERROR
    assert "10 evaluation(s) refused" in message and "at most 10.0%" in message
    assert "no ID in the context: 6" in message and "attribute thread_id: 4" in message


def test_a_few_pilot_refusals_are_a_warning(make_provider: ProviderFactory, tmp_path: Path) -> None:
    log = pilot_log(make_provider, tmp_path / "pilot.jsonl", conversations(98) + [{}] * 2)
    assert [s for s, _ in found(preflight(POLICY, FLAGS, events=log), Rule.STABLE_IDS)] == [
        Severity.WARNING
    ]


def test_a_clean_pilot_passes_the_stable_id_check(
    make_provider: ProviderFactory, tmp_path: Path
) -> None:
    log = pilot_log(make_provider, tmp_path / "pilot.jsonl", conversations(50))
    assert [s for s, _ in found(preflight(POLICY, FLAGS, events=log), Rule.STABLE_IDS)] == [
        Severity.OK
    ]


def exposure(unit_id: str, when: str) -> str:
    return json.dumps(
        {
            schema.EVENT: schema.EXPOSURE,
            schema.TIMESTAMP: when,
            schema.EXPERIMENT_KEY: FLAG,
            schema.ASSIGNMENT_UNIT: "conversation",
            schema.UNIT_ID: unit_id,
            schema.VARIATION: "control",
        }
    )


def test_units_a_day_are_measured_from_the_pilot_when_the_plan_gives_none(tmp_path: Path) -> None:
    log = tmp_path / "pilot.jsonl"
    lines = [exposure(f"c-{i}", f"2026-06-0{1 + i % 3}T10:00:00.000Z") for i in range(300)]
    log.write_text("\ufeff" + "\n".join([*lines, "{not json"]) + "\n", encoding="utf-8")
    plan = PreflightPlan({FLAG: ExperimentPlan(baseline_rate=0.3, primary_metric="resolved")})
    report = preflight(POLICY, FLAGS, plan=plan, events=log)
    duration = report.experiment(FLAG).duration
    assert duration is not None and duration.units_per_day == pytest.approx(150.0)
    assert "pilot log: 300 units over 48.0h" in duration.units_source
    assert read_pilot_log(log).malformed_lines == 1


def test_outcomes_of_an_undeclared_metric_in_the_pilot_are_a_warning(tmp_path: Path) -> None:
    log = tmp_path / "pilot.jsonl"
    outcome = {schema.EVENT: schema.OUTCOME, schema.EXPERIMENT_KEY: FLAG, schema.METRIC: "csat"}
    log.write_text(json.dumps(outcome) + "\n", encoding="utf-8")
    ((severity, message),) = found(preflight(POLICY, FLAGS, events=log), Rule.METRIC_UNIT_DECLARED)
    assert severity is Severity.WARNING and "'csat' (in the pilot)" in message


# -- how long it will take ----------------------------------------------------------------------


def test_an_account_experiment_shows_fewer_units_and_slower_learning() -> None:
    policy = UnitPolicy([Experiment(FLAG, "account", rollback=RollbackMode.CONTAIN)])
    plan = PreflightPlan({FLAG: ExperimentPlan(units_per_day=20, baseline_rate=0.5)})
    report = check(policy, [fl.flag(FLAG, ARMS, tags=["unit:account"])], plan=plan)
    ((severity, message),) = found(report, Rule.ACCOUNT_LEVEL)
    assert severity is Severity.NOTE and "fewer units and slower learning" in message
    duration = report.experiment(FLAG).duration
    assert duration is not None
    assert [row.units for row in duration.rows] == [140, 280, 560]
    # more units, smaller detectable change: the table says how much time buys
    assert duration.rows[0].absolute > duration.rows[1].absolute > duration.rows[2].absolute


def test_a_target_lift_out_of_reach_within_28_days_is_a_warning() -> None:
    plan = PreflightPlan(
        {FLAG: ExperimentPlan(units_per_day=50, baseline_rate=0.3, target_lift=0.05)}
    )
    ((severity, message),) = found(check(POLICY, FLAGS, plan=plan), Rule.TARGET_LIFT)
    assert severity is Severity.WARNING and "within 28 days" in message


def test_a_target_lift_beyond_every_unit_that_exists_is_a_warning() -> None:
    plan = PreflightPlan(
        {
            FLAG: ExperimentPlan(
                units_per_day=1_000, max_units=500, baseline_rate=0.3, target_lift=0.05
            )
        }
    )
    report = check(POLICY, FLAGS, plan=plan)
    ((severity, message),) = found(report, Rule.TARGET_LIFT)
    assert severity is Severity.WARNING and "every conversation" in message
    duration = report.experiment(FLAG).duration
    assert duration is not None and {row.units for row in duration.rows} == {500}
    assert json.loads(json.dumps(duration.to_dict(), allow_nan=False))["daysToTargetLift"] is None


def test_an_uneven_ramp_is_planned_on_its_smallest_arm() -> None:
    plan = PreflightPlan({FLAG: ExperimentPlan(units_per_day=1_000, baseline_rate=0.3)})
    ramp = [fl.flag(FLAG, ARMS, weights=[0.9, 0.1], tags=["unit:conversation"])]
    even = check(POLICY, FLAGS, plan=plan).experiment(FLAG).duration
    uneven = check(POLICY, ramp, plan=plan).experiment(FLAG).duration
    assert even is not None and uneven is not None
    assert uneven.rows[0].smallest_arm == 700
    assert uneven.rows[0].absolute > even.rows[0].absolute


# -- continuity in production ---------------------------------------------------------------


def test_an_in_memory_ledger_behind_several_instances_is_an_error() -> None:
    plan = PreflightPlan(deployment=Deployment(instances=3, ledger="memory"))
    assert [s for s, _ in found(check(POLICY, FLAGS, plan=plan), Rule.LEDGER_SHARED)] == [
        Severity.ERROR
    ]


def test_an_idle_ttl_shorter_than_a_conversation_is_a_warning() -> None:
    plan = PreflightPlan(
        {FLAG: ExperimentPlan(unit_life_seconds=2 * 3600)},
        Deployment(ttl_seconds={"conversation": 1800}),
    )
    ((severity, message),) = found(check(POLICY, FLAGS, plan=plan), Rule.IDLE_TTL)
    assert severity is Severity.WARNING and "(30m)" in message and "(2h)" in message


def test_a_user_ttl_shorter_than_the_experiment_window_is_a_warning() -> None:
    policy = UnitPolicy([Experiment(FLAG, "user", rollback=RollbackMode.CONTAIN)])
    plan = PreflightPlan(deployment=Deployment(ttl_seconds={"user": 7 * 86400}))
    report = check(policy, [fl.flag(FLAG, ARMS, tags=["unit:user"])], plan=plan)
    assert [s for s, _ in found(report, Rule.IDLE_TTL)] == [Severity.WARNING]


@pytest.fixture
def throwaway_redis(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ThrowawayRedis]:
    """A private Redis whose working directory is ``tmp_path``: a test that turns persistence
    on makes it write files there, never into the repository (Redis 7 refuses CONFIG SET dir)."""
    server = ThrowawayRedis()
    with monkeypatch.context() as scoped:
        scoped.chdir(tmp_path)
        server.start()
    try:
        yield server
    finally:
        server.stop()


def configure(url: str, **settings: str) -> None:
    client = redis.Redis.from_url(url)
    try:
        for name, value in settings.items():
            client.config_set(name.replace("_", "-"), value)
    finally:
        client.close()


def test_a_redis_without_persistence_is_a_warning(throwaway_redis: ThrowawayRedis) -> None:
    report = preflight(POLICY, FLAGS, plan=redis_plan(throwaway_redis.url))
    assert found(report, Rule.REDIS_PERSISTENCE)[0][0] is Severity.WARNING
    assert found(report, Rule.REDIS_EVICTION) == [(Severity.OK, "maxmemory-policy noeviction")]


def test_a_redis_that_evicts_at_its_memory_limit_is_a_warning(
    throwaway_redis: ThrowawayRedis,
) -> None:
    configure(throwaway_redis.url, maxmemory="64mb", maxmemory_policy="volatile-lru")
    ((severity, message),) = found(
        preflight(POLICY, FLAGS, plan=redis_plan(throwaway_redis.url)), Rule.REDIS_EVICTION
    )
    assert severity is Severity.WARNING and "volatile-lru" in message


def test_a_redis_with_an_append_only_file_persists(throwaway_redis: ThrowawayRedis) -> None:
    configure(throwaway_redis.url, appendonly="yes")
    report = preflight(POLICY, FLAGS, plan=redis_plan(throwaway_redis.url))
    assert found(report, Rule.REDIS_PERSISTENCE) == [
        (Severity.OK, "Redis persists: append-only file")
    ]


def test_a_redis_with_snapshots_only_is_a_warning(throwaway_redis: ThrowawayRedis) -> None:
    configure(throwaway_redis.url, save="3600 1")
    ((severity, message),) = found(
        preflight(POLICY, FLAGS, plan=redis_plan(throwaway_redis.url)), Rule.REDIS_PERSISTENCE
    )
    assert severity is Severity.WARNING and "RDB snapshots only" in message


def test_a_redis_syncing_its_append_only_file_lazily_is_a_warning(
    throwaway_redis: ThrowawayRedis,
) -> None:
    configure(throwaway_redis.url, appendonly="yes", appendfsync="no")
    ((severity, message),) = found(
        preflight(POLICY, FLAGS, plan=redis_plan(throwaway_redis.url)), Rule.REDIS_PERSISTENCE
    )
    assert severity is Severity.WARNING and "appendfsync" in message


def test_the_preflight_and_the_provider_use_the_same_words(
    throwaway_redis: ThrowawayRedis,
) -> None:
    configure(throwaway_redis.url, maxmemory="64mb", maxmemory_policy="allkeys-lru")
    report = preflight(POLICY, FLAGS, plan=redis_plan(throwaway_redis.url))
    store = RedisStore(throwaway_redis.url, key_prefix=f"words-{uuid.uuid4().hex}:")
    problems = store.durability_problems()
    store.close()
    warned = [
        m for rule in (Rule.REDIS_PERSISTENCE, Rule.REDIS_EVICTION) for _, m in found(report, rule)
    ]
    assert sorted(warned) == sorted(problems) and len(problems) == 2


def test_a_redis_that_refuses_config_get_gets_a_note_to_check_by_hand(
    throwaway_redis: ThrowawayRedis,
) -> None:
    admin = redis.Redis.from_url(throwaway_redis.url)
    admin.acl_setuser(
        "app", enabled=True, passwords=["+secret"], keys=["*"], commands=["+@all", "-config"]
    )
    admin.close()
    url = throwaway_redis.url.replace("redis://", "redis://app:secret@")
    ((severity, message),) = found(
        preflight(POLICY, FLAGS, plan=redis_plan(url)), Rule.REDIS_PERSISTENCE
    )
    assert severity is Severity.NOTE and "CONFIG GET refused" in message


def test_an_unreachable_redis_is_an_error() -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    assert [
        s for s, _ in found(preflight(POLICY, FLAGS, plan=redis_plan(url)), Rule.REDIS_REACHABLE)
    ] == [Severity.ERROR]


# -- flags from a live FeatBit environment, and the provider at start-up ---------------------


def test_flags_are_read_from_a_live_featbit_environment() -> None:
    with FeatBitTestServer() as server:
        server.set_flags(FLAGS)
        flags = flags_from_featbit(
            server.env_secret,
            server.streaming_url,
            server.event_url,
            websocket=WebSocketConfig(timeout=1.0),
        )
    report = check(POLICY, flags)
    assert report.experiment(FLAG).unit == "conversation"
    assert report.count(Severity.ERROR) == 0


def test_the_provider_logs_preflight_errors_and_warnings_once_at_start_up(
    make_provider: ProviderFactory, caplog: pytest.LogCaptureFixture
) -> None:
    plan = PreflightPlan(deployment=Deployment(instances=4))
    policy = UnitPolicy([Experiment(FLAG, "conversation")])  # no rollback, no metric
    provider = make_provider(FLAGS, policy, preflight=plan)
    with caplog.at_level(logging.INFO, logger="featbit_experiments"):
        provider.initialize(EvaluationContext())
        provider.initialize(EvaluationContext())
    logged = [(r.levelno, r.getMessage().split(":")[0]) for r in caplog.records]
    assert sorted(logged) == sorted(
        [
            (logging.ERROR, "preflight continuity.ledger_shared"),
            (logging.ERROR, f"preflight rollback.declared [{FLAG}]"),
            (logging.WARNING, f"preflight metrics.declared_for_experiment [{FLAG}]"),
        ]
    )
    assert provider.preflight_report is not None
    assert provider.preflight_report.exit_code() == 1


def test_the_provider_checks_its_own_redis_store_at_start_up(
    make_provider: ProviderFactory,
    throwaway_redis: ThrowawayRedis,
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = RedisStore(throwaway_redis.url, key_prefix=f"preflight-{uuid.uuid4().hex}:")
    provider = make_provider(FLAGS, POLICY, store=store, preflight=True)
    with caplog.at_level(logging.WARNING, logger="featbit_experiments"):
        provider.initialize(EvaluationContext())
    assert any("continuity.redis_persistence" in r.getMessage() for r in caplog.records)
    store.close()


def test_the_provider_runs_no_preflight_unless_asked(
    make_provider: ProviderFactory, caplog: pytest.LogCaptureFixture
) -> None:
    provider = make_provider(FLAGS, UnitPolicy([Experiment(FLAG, "conversation")]))
    with caplog.at_level(logging.DEBUG, logger="featbit_experiments"):
        provider.initialize(EvaluationContext())
    assert provider.preflight_report is None
    assert not [r for r in caplog.records if "preflight" in r.getMessage()]
