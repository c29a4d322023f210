"""Assignment continuity through the real provider and OpenFeature client: rollback modes, the
kill switch, end of unit, fallbacks that never re-randomize, and unit change detection.

Rollout changes go through the FeatBit test server (a pushed patch with a bumped version), so
the real SDK's streaming applies them. Tests that need two "moments" of a flag without a
server use two offline providers sharing one store, which is what two instances on different
flag versions look like.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest
from fbclient.config import WebSocketConfig
from openfeature.client import OpenFeatureClient
from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import Reason

from featbit_experiments import (
    Experiment,
    FeatBitProvider,
    InMemorySink,
    RollbackMode,
    UnitPolicy,
)
from featbit_experiments.continuity import InMemoryStore
from tests.support import flags as fl
from tests.support.capture import CapturedInsights
from tests.support.featbit_server import FeatBitTestServer, updated_at_ms

FLAG = "reply-style"
CONTROL, TREATMENT = "concise", "detailed"
CONTROL_ID, TREATMENT_ID = f"{FLAG}-v0", f"{FLAG}-v1"

ProviderFactory = Callable[..., FeatBitProvider]
ClientFactory = Callable[[FeatBitProvider], OpenFeatureClient]


def experiment_flag(*, treatment: float = 0.5, version: int = 1, **options: Any) -> dict[str, Any]:
    return fl.flag(
        FLAG, [CONTROL, TREATMENT], weights=[1 - treatment, treatment], version=version, **options
    )


def policy(rollback: RollbackMode = RollbackMode.FINISH_ACTIVE, **options: Any) -> UnitPolicy:
    return UnitPolicy([Experiment(FLAG, "conversation", rollback=rollback, **options)])


def turn(conversation_id: str) -> EvaluationContext:
    return EvaluationContext(attributes={"conversationId": conversation_id, "userId": "u-1"})


def first_conversation_in(client: OpenFeatureClient, variant: str, prefix: str = "c") -> str:
    """Start conversations until one is assigned ``variant`` (its first turn)."""
    for n in range(200):
        conversation_id = f"{prefix}-{n}"
        if client.get_string_value(FLAG, "default", turn(conversation_id)) == variant:
            return conversation_id
    raise AssertionError(f"no conversation landed in {variant!r}")


# -- FeatBit test server ----------------------------------------------------------------------


@pytest.fixture
def server() -> Iterator[FeatBitTestServer]:
    with FeatBitTestServer() as running:
        running.set_flags([experiment_flag()])
        yield running


@pytest.fixture
def connect(server: FeatBitTestServer, sink: InMemorySink) -> Iterator[ProviderFactory]:
    made: list[FeatBitProvider] = []

    def make(policy: UnitPolicy, **options: Any) -> FeatBitProvider:
        provider = FeatBitProvider.connect(
            server.env_secret,
            server.streaming_url,
            server.event_url,
            policy=policy,
            sinks=[sink],
            streaming_first_retry_delay=0.1,
            events_flush_interval=0.2,
            # fbclient joins its streaming thread for websocket.timeout + 1 s on stop, and the
            # thread often needs all of it; a short timeout keeps teardown short.
            websocket=WebSocketConfig(timeout=0.5),
            **options,
        )
        made.append(provider)
        return provider

    yield make
    for provider in made:
        provider.shutdown()


def move_rollout(
    server: FeatBitTestServer, providers: Sequence[FeatBitProvider], flag: dict[str, Any]
) -> None:
    """Push a flag change and wait until every provider's SDK has applied it."""
    server.push_flag(flag)
    version = updated_at_ms(flag)
    for provider in providers:
        assert server.wait_for(lambda p=provider: flag_version(p) == version)


def flag_version(provider: FeatBitProvider) -> int | None:
    view = provider.resolver.view(FLAG)
    return None if view is None else view.version


# -- finish_active --------------------------------------------------------------------------


def test_finish_active_keeps_an_active_conversation_on_its_variant_after_the_rollout_moves(
    server: FeatBitTestServer, connect: ProviderFactory, of_client: ClientFactory
) -> None:
    provider = connect(policy(RollbackMode.FINISH_ACTIVE))
    client = of_client(provider)
    conversation = first_conversation_in(client, TREATMENT)
    move_rollout(server, [provider], experiment_flag(treatment=0.0, version=2))
    assert client.get_string_value(FLAG, "default", turn(conversation)) == TREATMENT


def test_finish_active_sends_new_conversations_to_the_current_rollout(
    server: FeatBitTestServer, connect: ProviderFactory, of_client: ClientFactory
) -> None:
    provider = connect(policy(RollbackMode.FINISH_ACTIVE))
    client = of_client(provider)
    first_conversation_in(client, TREATMENT)
    move_rollout(server, [provider], experiment_flag(treatment=0.0, version=2))
    new_turns = [client.get_string_value(FLAG, "default", turn(f"new-{n}")) for n in range(20)]
    assert set(new_turns) == {CONTROL}


def test_a_repeat_turn_is_served_from_the_ledger_without_a_featbit_insight(
    make_provider: ProviderFactory, of_client: ClientFactory
) -> None:
    insights = CapturedInsights()
    provider = make_provider([experiment_flag()], policy(), event_processor=insights.processor)
    client = of_client(provider)
    first = client.get_string_details(FLAG, "default", turn("c-1"))
    repeat = client.get_string_details(FLAG, "default", turn("c-1"))
    assert (repeat.value, repeat.reason) == (first.value, Reason.CACHED)
    assert len(insights.flag_events()) == 1


def test_a_kill_switch_wins_over_finish_active(
    server: FeatBitTestServer, connect: ProviderFactory, of_client: ClientFactory
) -> None:
    provider = connect(policy(RollbackMode.FINISH_ACTIVE))
    client = of_client(provider)
    conversation = first_conversation_in(client, TREATMENT)
    move_rollout(server, [provider], experiment_flag(version=2, enabled=False))
    details = client.get_string_details(FLAG, "default", turn(conversation))
    assert (details.value, details.reason) == (CONTROL, Reason.DISABLED)


def test_an_experiment_can_keep_active_units_on_their_variant_through_a_kill_switch(
    server: FeatBitTestServer, connect: ProviderFactory, of_client: ClientFactory
) -> None:
    provider = connect(policy(RollbackMode.FINISH_ACTIVE, kill_switch_wins=False))
    client = of_client(provider)
    conversation = first_conversation_in(client, TREATMENT)
    move_rollout(server, [provider], experiment_flag(version=2, enabled=False))
    assert client.get_string_value(FLAG, "default", turn(conversation)) == TREATMENT


# -- contain --------------------------------------------------------------------------------


def test_contain_moves_an_active_conversation_and_records_variant_switched(
    server: FeatBitTestServer,
    connect: ProviderFactory,
    of_client: ClientFactory,
    sink: InMemorySink,
) -> None:
    provider = connect(policy(RollbackMode.CONTAIN))
    client = of_client(provider)
    conversation = first_conversation_in(client, TREATMENT)
    move_rollout(server, [provider], experiment_flag(treatment=0.0, version=2))
    assert client.get_string_value(FLAG, "default", turn(conversation)) == CONTROL
    [switched] = sink.guardrails("variant_switched")
    assert switched["unitId"] == conversation
    assert (switched["fromVariationId"], switched["toVariationId"]) == (TREATMENT_ID, CONTROL_ID)
    assert (switched["experimentKey"], switched["assignmentUnit"]) == (FLAG, "conversation")


def test_contain_records_no_switch_while_the_variant_stays(
    make_provider: ProviderFactory, of_client: ClientFactory, sink: InMemorySink
) -> None:
    client = of_client(make_provider([experiment_flag()], policy(RollbackMode.CONTAIN)))
    for _ in range(3):
        client.get_string_value(FLAG, "default", turn("c-1"))
    assert sink.guardrails("variant_switched") == []


# -- end of unit ----------------------------------------------------------------------------


def test_end_unit_releases_a_conversation_to_the_current_rollout(
    server: FeatBitTestServer, connect: ProviderFactory, of_client: ClientFactory
) -> None:
    provider = connect(policy(RollbackMode.FINISH_ACTIVE))
    client = of_client(provider)
    conversation = first_conversation_in(client, TREATMENT)
    move_rollout(server, [provider], experiment_flag(treatment=0.0, version=2))
    assert provider.end_unit("conversation", conversation) is True
    assert client.get_string_value(FLAG, "default", turn(conversation)) == CONTROL


def test_end_unit_of_an_unknown_conversation_is_false(
    make_provider: ProviderFactory,
) -> None:
    provider = make_provider([experiment_flag()], policy())
    assert provider.end_unit("conversation", "never-seen") is False


# -- fallbacks never re-randomize -------------------------------------------------------------


def broken_flag(version: int) -> dict[str, Any]:
    """The experiment flag with a fallthrough FeatBit cannot evaluate ("error in evaluation")."""
    flag = experiment_flag(version=version)
    flag["fallthrough"]["variations"] = fl.serve("no-such-variation")
    return flag


def test_a_featbit_error_inside_an_active_unit_serves_the_ledger_variant(
    server: FeatBitTestServer, connect: ProviderFactory, of_client: ClientFactory
) -> None:
    provider = connect(policy(RollbackMode.CONTAIN))
    client = of_client(provider)
    conversation = first_conversation_in(client, TREATMENT)
    move_rollout(server, [provider], broken_flag(version=2))
    assert client.get_string_value(FLAG, "default", turn(conversation)) == TREATMENT


def test_a_featbit_error_with_no_known_variant_serves_the_default_with_fallback_used(
    server: FeatBitTestServer,
    connect: ProviderFactory,
    of_client: ClientFactory,
    sink: InMemorySink,
) -> None:
    provider = connect(policy(RollbackMode.CONTAIN))
    client = of_client(provider)
    move_rollout(server, [provider], broken_flag(version=2))
    details = client.get_string_details(FLAG, "default", turn("c-new"))
    assert (details.value, details.error_code) == ("default", ErrorCode.GENERAL)
    [fallback] = sink.guardrails("fallback_used")
    assert fallback["unitId"] == "c-new"


def test_a_variation_removed_from_the_flag_serves_the_default_and_is_never_re_randomized(
    make_provider: ProviderFactory, of_client: ClientFactory, sink: InMemorySink
) -> None:
    store = InMemoryStore()
    before = of_client(make_provider([experiment_flag()], policy(), store=store))
    conversation = first_conversation_in(before, TREATMENT)
    without_treatment = fl.flag(FLAG, [CONTROL], variation_ids=[CONTROL_ID], version=2)
    after = of_client(make_provider([without_treatment], policy(), store=store))
    turns = [after.get_string_details(FLAG, "default", turn(conversation)) for _ in range(2)]
    assert [(t.value, t.error_code) for t in turns] == [("default", ErrorCode.GENERAL)] * 2
    assert [g["variationId"] for g in sink.guardrails("fallback_used")] == [TREATMENT_ID] * 2


# -- unit change detection ------------------------------------------------------------------


def test_changing_the_unit_of_a_running_experiment_is_refused_with_unit_changed(
    make_provider: ProviderFactory, of_client: ClientFactory, sink: InMemorySink
) -> None:
    store = InMemoryStore()
    by_conversation = of_client(make_provider([experiment_flag()], policy(), store=store))
    by_conversation.get_string_value(FLAG, "default", turn("c-1"))
    by_user = UnitPolicy([Experiment(FLAG, "user")])
    client = of_client(make_provider([experiment_flag()], by_user, store=store))
    details = client.get_string_details(FLAG, "default", EvaluationContext("u-1"))
    assert (details.value, details.error_code) == ("default", ErrorCode.GENERAL)
    assert "new run_id" in (details.error_message or "")
    [changed] = sink.guardrails("unit_changed")
    assert (changed["recordedUnit"], changed["assignmentUnit"]) == ("conversation", "user")


def test_a_new_run_id_lifts_the_unit_change_refusal(
    make_provider: ProviderFactory, of_client: ClientFactory, sink: InMemorySink
) -> None:
    store = InMemoryStore()
    by_conversation = of_client(make_provider([experiment_flag()], policy(), store=store))
    by_conversation.get_string_value(FLAG, "default", turn("c-1"))
    rerun = UnitPolicy([Experiment(FLAG, "user", run_id="by-user")])
    client = of_client(make_provider([experiment_flag()], rerun, store=store))
    details = client.get_string_details(FLAG, "default", EvaluationContext("u-1"))
    assert details.error_code is None
    assert details.value in (CONTROL, TREATMENT)
    assert sink.guardrails("unit_changed") == []
