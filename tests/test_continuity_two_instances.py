"""Two service instances in two processes share one ledger on the machine's Redis.

Each instance is a spawned process with a real provider built by ``FeatBitProvider.connect``
against the FeatBit test server, evaluating through the OpenFeature client; rollouts change
through the server (a pushed patch with a bumped version), as they do in FeatBit.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.support import flags as fl
from tests.support.continuity_worker import Instance, InstanceSettings
from tests.support.featbit_server import FeatBitTestServer, updated_at_ms
from tests.support.redis_server import delete_prefix

STICKY, CONTAINED = "reply-style", "tool-policy"
CONTROL, TREATMENT = "control", "treatment"
EXPERIMENTS = (
    (STICKY, "conversation", "finish_active"),
    (CONTAINED, "conversation", "contain"),
)

InstanceFactory = Callable[[FeatBitTestServer], Instance]


def experiment_flag(key: str, treatment: float, version: int) -> dict[str, Any]:
    return fl.flag(
        key,
        [CONTROL, TREATMENT],
        variation_ids=[f"{key}-control", f"{key}-treatment"],
        weights=[1 - treatment, treatment],
        version=version,
    )


@pytest.fixture
def key_prefix(main_redis: str) -> Iterator[str]:
    prefix = f"test-two-instances:{uuid.uuid4().hex[:12]}:"
    yield prefix
    delete_prefix(main_redis, prefix)


@pytest.fixture
def start_instance(key_prefix: str, main_redis: str) -> Iterator[InstanceFactory]:
    started: list[Instance] = []

    def start(server: FeatBitTestServer) -> Instance:
        instance = Instance(
            InstanceSettings(
                server.env_secret,
                server.streaming_url,
                server.event_url,
                main_redis,
                key_prefix,
                EXPERIMENTS,
            )
        )
        started.append(instance)
        return instance

    yield start
    for instance in started:
        instance.stop()


def move_rollout(
    server: FeatBitTestServer, instances: list[Instance], flags: list[dict[str, Any]]
) -> None:
    """Push flag changes and wait until every instance's SDK has applied them."""
    for flag in flags:
        server.push_flag(flag)
    for instance in instances:
        for flag in flags:
            assert server.wait_for(lambda i=instance, f=flag: has_version(i, f))


def has_version(instance: Instance, flag: dict[str, Any]) -> bool:
    return bool(instance.call("flag_version", flag["key"]) == updated_at_ms(flag))


def first_conversation_in(instance: Instance, flag: str, variant: str) -> str:
    candidates = [f"conversation-{uuid.uuid4().hex[:10]}" for _ in range(64)]
    answers = instance.call("turns", (flag, candidates))
    for conversation, (value, _) in zip(candidates, answers, strict=True):
        if value == variant:
            return conversation
    raise AssertionError(f"none of 64 conversations landed in {variant!r}")


def test_a_conversation_keeps_or_moves_its_variant_across_instances_by_rollback_mode(
    start_instance: InstanceFactory,
) -> None:
    with FeatBitTestServer() as server:
        server.set_flags([experiment_flag(STICKY, 0.5, 1), experiment_flag(CONTAINED, 0.5, 1)])
        a, b = start_instance(server), start_instance(server)
        a.wait_ready()
        b.wait_ready()
        # A conversation starts on instance A in treatment (one per experiment).
        sticky_conversation = first_conversation_in(a, STICKY, TREATMENT)
        contained_conversation = first_conversation_in(a, CONTAINED, TREATMENT)

        # The rollout goes from 50% to 0% treatment in FeatBit.
        move_rollout(
            server,
            [a, b],
            [experiment_flag(STICKY, 0.0, 2), experiment_flag(CONTAINED, 0.0, 2)],
        )

        # The next turn lands on instance B.
        [(sticky_value, sticky_reason)] = b.call("turns", (STICKY, [sticky_conversation]))
        [(contained_value, _)] = b.call("turns", (CONTAINED, [contained_conversation]))
        new_conversation = f"conversation-{uuid.uuid4().hex[:10]}"
        [(new_sticky, _)] = b.call("turns", (STICKY, [new_conversation]))
        [(new_contained, _)] = b.call("turns", (CONTAINED, [new_conversation]))
        switched = b.call("guardrails", "variant_switched")

    assert (sticky_value, sticky_reason) == (TREATMENT, "CACHED")  # finish_active
    assert contained_value == CONTROL  # contain
    assert [(s["unitId"], s["fromVariationId"], s["toVariationId"]) for s in switched] == [
        (contained_conversation, f"{CONTAINED}-treatment", f"{CONTAINED}-control")
    ]
    assert (new_sticky, new_contained) == (CONTROL, CONTROL)


def test_a_thousand_new_conversations_at_once_from_two_instances_never_disagree(
    start_instance: InstanceFactory,
) -> None:
    """The instances see opposite rollouts (as when a change has reached only one of them),
    so without the shared ledger every conversation would get two variants."""
    with FeatBitTestServer() as all_control, FeatBitTestServer() as all_treatment:
        all_control.set_flags([experiment_flag(STICKY, 0.0, 1)])
        all_treatment.set_flags([experiment_flag(STICKY, 1.0, 1)])
        a, b = start_instance(all_control), start_instance(all_treatment)
        a.wait_ready()
        b.wait_ready()
        conversations = [f"conversation-{uuid.uuid4().hex[:10]}" for _ in range(1000)]
        a.send("turns_at_once", (STICKY, conversations, 8))
        b.send("turns_at_once", (STICKY, conversations, 8))
        on_a, on_b = a.answer(), b.answer()
        outages = a.call("guardrails", "store_unavailable") + b.call(
            "guardrails", "store_unavailable"
        )

    disagreements = [c for c, x, y in zip(conversations, on_a, on_b, strict=True) if x != y]
    assert len(on_a) == len(on_b) == 1000
    assert (disagreements, outages) == ([], [])
    assert set(on_a) <= {CONTROL, TREATMENT}
