"""What the resolver hands on for an experiment evaluation, field by field: the result's
metadata, the guardrail beside a refusal, and the Assignment each consumer (an open scope, an
extra listener, the exposure recorder) receives on a first turn and on a ledger hit."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fbclient.client import FBClient
from fbclient.data_storage import InMemoryDataStorage
from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import FlagResolutionDetails, Reason
from openfeature.track import TrackingEventDetails

from featbit_experiments import (
    Assignment,
    Experiment,
    FeatBitProvider,
    InMemorySink,
    Privacy,
    UnitKey,
    UnitPolicy,
)
from featbit_experiments.scope import collect_assignments
from tests.support import flags as fl
from tests.support.featbit_server import FeatBitTestServer
from tests.support.stored_flags import StoredEdit, fill, offline_client, stored

FLAG = "reply-style"
EXPERIMENT = Experiment(FLAG, "conversation", experiment_key="reply-test")
POLICY = UnitPolicy([EXPERIMENT])
ARMS = ["concise", "detailed"]
CTX = EvaluationContext("u-1", {"conversationId": "c-1", "userId": "u-1", "accountId": "a-1"})
#: Every valid unit ID of CTX, the assigned one included (joins read them from the record).
OTHER_IDS = {"conversationId": "c-1", "userId": "u-1", "accountId": "a-1"}
UNIT_KEY = UnitKey("conversation", "c-1", "conversationId")

ProviderFactory = Callable[..., FeatBitProvider]


def served_flag(**options: Any) -> dict[str, Any]:
    """Everyone gets the second arm, so every expected value is known in advance."""
    return fl.flag(FLAG, ARMS, serve=1, **options)


def guardrail_record(sink: InMemorySink, name: str) -> dict[str, Any]:
    [record] = sink.guardrails(name)
    return {k: v for k, v in record.items() if k != "timestamp"}


def assignment(provider: FeatBitProvider, reason: str) -> Assignment:
    view = provider.resolver.view(FLAG)
    assert view is not None
    return Assignment(
        experiment=EXPERIMENT,
        unit_key=UNIT_KEY,
        variation_id=f"{FLAG}-v1",
        variant="detailed",
        value="detailed",
        reason=reason,
        flag_version=view.version,
        other_ids=OTHER_IDS,
    )


def test_a_served_turn_carries_the_variation_unit_source_and_context_id(
    make_provider: ProviderFactory,
) -> None:
    provider = make_provider([served_flag()], POLICY)
    view = provider.resolver.view(FLAG)
    assert view is not None

    first = provider.resolve_string_details(FLAG, "default", CTX)
    again = provider.resolve_string_details(FLAG, "default", CTX)

    metadata = {
        "experimentKey": "reply-test",
        "assignmentUnit": "conversation",
        "variationId": f"{FLAG}-v1",
        "version": view.version,
        "unitKeySource": "conversationId",
        "contextId": "conversation:c-1",
    }
    assert first == FlagResolutionDetails(
        value="detailed", reason=Reason.STATIC, variant="detailed", flag_metadata=metadata
    )
    assert again == FlagResolutionDetails(
        value="detailed", reason=Reason.CACHED, variant="detailed", flag_metadata=metadata
    )


def test_privacy_omit_leaves_the_context_id_out_of_the_metadata(
    make_provider: ProviderFactory,
) -> None:
    provider = make_provider([served_flag()], POLICY, privacy=Privacy(mode="omit"))
    details = provider.resolve_string_details(FLAG, "default", CTX)
    assert details.value == "detailed"
    assert "contextId" not in details.flag_metadata
    assert details.flag_metadata["unitKeySource"] == "conversationId"


def test_a_missing_unit_id_is_reported_with_the_experiment_and_the_ids_present(
    make_provider: ProviderFactory, sink: InMemorySink
) -> None:
    provider = make_provider([served_flag()], POLICY)
    details = provider.resolve_string_details(
        FLAG, "default", EvaluationContext("u-1", {"userId": "u-1"})
    )
    message = (
        "no conversation ID in the evaluation context (looked for conversationId, "
        "conversation_id, thread_id, threadId, session_id, sessionId)"
    )
    assert details == FlagResolutionDetails(
        value="default",
        reason=Reason.ERROR,
        error_code=ErrorCode.TARGETING_KEY_MISSING,
        error_message=message,
        flag_metadata={"experimentKey": "reply-test", "assignmentUnit": "conversation"},
    )
    assert guardrail_record(sink, "missing_unit_id") == {
        "event": "experiment_guardrail",
        "guardrail": "missing_unit_id",
        "message": message,
        "flagKey": FLAG,
        "experimentKey": "reply-test",
        "assignmentUnit": "conversation",
        "errorCode": "TARGETING_KEY_MISSING",
        "userId": "u-1",
    }


def test_a_foreign_dispatch_key_is_reported_with_the_unit_id_and_the_ids_present(
    make_provider: ProviderFactory, sink: InMemorySink
) -> None:
    provider = make_provider([fl.flag(FLAG, ARMS, dispatch_key="userId")], POLICY)
    details = provider.resolve_string_details(FLAG, "default", CTX)
    message = (
        "experiment 'reply-test' randomizes by conversation (conversationId) but FeatBit's "
        "fallthrough buckets on 'userId'; refusing rather than bucketing on another attribute"
    )
    assert details == FlagResolutionDetails(
        value="default",
        reason=Reason.ERROR,
        error_code=ErrorCode.GENERAL,
        error_message=message,
        flag_metadata={"experimentKey": "reply-test", "assignmentUnit": "conversation"},
    )
    assert guardrail_record(sink, "dispatch_key_mismatch") == {
        "event": "experiment_guardrail",
        "guardrail": "dispatch_key_mismatch",
        "message": message,
        "flagKey": FLAG,
        "experimentKey": "reply-test",
        "assignmentUnit": "conversation",
        "unitId": "c-1",
        **OTHER_IDS,
    }


def test_an_open_scope_gets_every_assignment_first_turn_and_ledger_hit_alike(
    make_provider: ProviderFactory,
) -> None:
    provider = make_provider([served_flag()], POLICY)
    with collect_assignments() as collected:
        provider.resolve_string_details(FLAG, "default", CTX)
        provider.resolve_string_details(FLAG, "default", CTX)
    assert collected == [assignment(provider, Reason.STATIC), assignment(provider, Reason.CACHED)]


def test_an_extra_listener_alone_gets_assignments_the_exposure_recorder_no_longer_needs(
    make_provider: ProviderFactory, sink: InMemorySink
) -> None:
    provider = make_provider([served_flag()], POLICY)
    provider.resolve_string_details(FLAG, "default", CTX)  # exposed: the recorder is done
    heard: list[Assignment] = []
    provider.resolver.assignment_listeners.append(heard.append)

    provider.resolve_string_details(FLAG, "default", CTX)

    assert heard == [assignment(provider, Reason.CACHED)]
    assert len(sink.of_kind("experiment_exposure")) == 1


def test_a_failing_listener_neither_fails_the_turn_nor_starves_the_next(
    make_provider: ProviderFactory, sink: InMemorySink, caplog: pytest.LogCaptureFixture
) -> None:
    provider = make_provider([served_flag()], POLICY)

    def broken(_: Assignment) -> None:
        raise RuntimeError("listener bug")

    heard: list[Assignment] = []
    provider.resolver.assignment_listeners.extend([broken, heard.append])

    details = provider.resolve_string_details(FLAG, "default", CTX)

    assert (details.value, details.error_code) == ("detailed", None)
    assert heard == [assignment(provider, Reason.STATIC)]
    assert [e["unitId"] for e in sink.of_kind("experiment_exposure")] == ["c-1"]
    [logged] = [r for r in caplog.records if r.exc_info]
    assert logged.getMessage() == f"assignment listener {broken!r} failed"


# -- FeatBit's data present before its stream is up --------------------------------------


class LastRunStorage(InMemoryDataStorage):
    """fbclient's ``DataStorage`` plug-in point as a persistent storage uses it: it holds the
    flags an earlier process left, and reports itself initialized only once this process's
    stream has synced (it never does here)."""

    @property
    def initialized(self) -> bool:
        return False


@pytest.fixture
def unsynced_provider(sink: InMemorySink) -> Iterator[FeatBitProvider]:
    """A provider over a client whose storage holds the flags while its stream has never
    connected: ``client.initialize`` is False, yet the flags are there to serve."""
    storage = fill(LastRunStorage(), [served_flag(), fl.flag("plain", ["on", "off"], serve=0)])
    server = FeatBitTestServer()  # never started: every connection is refused
    client = FBClient(server.sdk_config(data_storage=storage), start_wait=0)
    provider = FeatBitProvider(client, policy=POLICY, sinks=[sink], owns_client=True)
    try:
        assert not client.initialize
        yield provider
    finally:
        provider.shutdown()
        server.close()


def test_flags_already_in_the_store_are_served_before_the_stream_is_up(
    unsynced_provider: FeatBitProvider, sink: InMemorySink
) -> None:
    experiment = unsynced_provider.resolve_string_details(FLAG, "default", CTX)
    plain = unsynced_provider.resolve_string_details("plain", "default", CTX)
    unknown = unsynced_provider.resolve_string_details("unknown", "default", CTX)

    assert (experiment.value, experiment.error_code) == ("detailed", None)
    assert (plain.value, plain.error_code) == ("on", None)
    assert unknown == FlagResolutionDetails(
        value="default",
        reason=Reason.ERROR,
        error_code=ErrorCode.PROVIDER_NOT_READY,
        error_message="FeatBit data not synced",
    )
    assert guardrail_record(sink, "provider_not_ready") == {
        "event": "experiment_guardrail",
        "guardrail": "provider_not_ready",
        "message": "FeatBit data is not synced yet; serving the default",
        "flagKey": "unknown",
        "suppressed": 0,
    }


# -- what FeatBit or the flag's data cannot serve -----------------------------------------


@pytest.fixture
def stored_provider(sink: InMemorySink) -> Iterator[Callable[..., FeatBitProvider]]:
    made: list[FeatBitProvider] = []

    def make(flag: dict[str, Any], edit: StoredEdit | None = None) -> FeatBitProvider:
        client = offline_client(fill(InMemoryDataStorage(), [flag], edit))
        made.append(FeatBitProvider(client, policy=POLICY, sinks=[sink], owns_client=True))
        return made[-1]

    yield make
    for provider in made:
        provider.shutdown()


REFUSED_METADATA = {"experimentKey": "reply-test", "assignmentUnit": "conversation"}


def to_ghost(flag: dict[str, Any]) -> None:
    for share in flag["fallthrough"]["variations"]:
        share["id"] = "ghost"


def test_a_featbit_failure_serves_the_default_with_the_experiment_metadata(
    stored_provider: Callable[..., FeatBitProvider], sink: InMemorySink
) -> None:
    flag = served_flag()
    to_ghost(flag)  # FeatBit's evaluator fails on a split to an unknown variation
    details = stored_provider(flag).resolve_string_details(FLAG, "default", CTX)
    assert details == FlagResolutionDetails(
        value="default",
        reason=Reason.ERROR,
        error_code=ErrorCode.GENERAL,
        error_message="FeatBit: error in evaluation",
        flag_metadata=REFUSED_METADATA,
    )
    assert [g["flagKey"] for g in sink.guardrails("fallback_used")] == [FLAG]


def test_a_variation_the_flag_does_not_list_serves_the_default_naming_it(
    stored_provider: Callable[..., FeatBitProvider], sink: InMemorySink
) -> None:
    flag = served_flag()
    to_ghost(flag)

    def known_to_the_sdk(stored: dict[str, dict[str, Any]]) -> None:
        stored[FLAG]["variationMap"]["ghost"] = "spectral"  # the SDK serves it; the flag lacks it

    provider = stored_provider(flag, known_to_the_sdk)
    details = provider.resolve_string_details(FLAG, "default", CTX)
    message = f"flag '{FLAG}' has no variation 'ghost'"
    assert details == FlagResolutionDetails(
        value="default",
        reason=Reason.ERROR,
        error_code=ErrorCode.GENERAL,
        error_message=message,
        flag_metadata=REFUSED_METADATA,
    )
    # The unit holds an arm it is not served: never silently.
    assert guardrail_record(sink, "fallback_used") == {
        "event": "experiment_guardrail",
        "guardrail": "fallback_used",
        "message": f"{message}; the unit holds it but is served the caller's default",
        "flagKey": FLAG,
        "experimentKey": "reply-test",
        "assignmentUnit": "conversation",
        "unitId": "c-1",
        "errorCode": "GENERAL",
        "variationId": "ghost",
        **OTHER_IDS,
    }


def test_a_value_that_does_not_parse_refuses_the_experiment_before_anyone_is_assigned(
    stored_provider: Callable[..., FeatBitProvider], sink: InMemorySink
) -> None:
    """An arm whose value cannot be served as the asked type would be an exposure (ours and
    FeatBit's) for a unit that only ever sees the default: the experiment is refused for that
    type before the ledger claims the unit, with a guardrail."""
    flag = fl.flag(FLAG, [1, 2], variation_type="number", serve=1)
    flag["variations"][0]["value"] = "abc"  # only the arm nobody is served is broken
    provider = stored_provider(flag)
    details = provider.resolve_float_details(FLAG, 0.5, CTX)
    message = (
        f"flag '{FLAG}': variation value does not parse as number: could not convert "
        "string to float: 'abc'; experiment 'reply-test' is refused for FLOAT evaluations: "
        "no unit is assigned, every caller gets its default"
    )
    assert details == FlagResolutionDetails(
        value=0.5,
        reason=Reason.ERROR,
        error_code=ErrorCode.PARSE_ERROR,
        error_message=message,
        flag_metadata=REFUSED_METADATA,
    )
    assert guardrail_record(sink, "fallback_used") == {
        "event": "experiment_guardrail",
        "guardrail": "fallback_used",
        "message": message,
        "flagKey": FLAG,
        "experimentKey": "reply-test",
        "assignmentUnit": "conversation",
        "unitId": "c-1",
        "errorCode": "PARSE_ERROR",
        **OTHER_IDS,
    }
    assert sink.of_kind("experiment_exposure") == []
    assert len(provider.store) == 0  # nobody claimed


def test_an_integer_asked_of_an_arm_that_is_not_whole_refuses_the_experiment(
    stored_provider: Callable[..., FeatBitProvider], sink: InMemorySink
) -> None:
    flag = fl.flag(FLAG, [1, 2.5], variation_type="number", serve=0)
    provider = stored_provider(flag)
    details = provider.resolve_integer_details(FLAG, 7, CTX)
    assert (details.value, details.error_code) == (7, ErrorCode.TYPE_MISMATCH)
    assert [g["errorCode"] for g in sink.guardrails("fallback_used")] == ["TYPE_MISMATCH"]
    assert len(provider.store) == 0
    # The same arms asked as floats are served.
    assert provider.resolve_float_details(FLAG, 0.5, CTX).value == 1.0


def test_no_context_is_an_empty_one_the_missing_unit_refused(
    make_provider: ProviderFactory, sink: InMemorySink
) -> None:
    provider = make_provider([served_flag()], POLICY)
    details = provider.resolve_string_details(FLAG, "default", None)
    assert (details.value, details.error_code) == ("default", ErrorCode.TARGETING_KEY_MISSING)
    assert [g["flagKey"] for g in sink.guardrails("missing_unit_id")] == [FLAG]


def test_a_missing_or_refused_flag_serves_the_callers_default(
    make_provider: ProviderFactory,
) -> None:
    """Asked of the provider itself: the OpenFeature client puts the default back on any
    error, which would hide a resolver that lost it."""
    conflicting = fl.flag("tagged", ARMS, tags=["unit:user", "unit:conversation"])
    provider = make_provider([served_flag(), conflicting], POLICY)
    missing = provider.resolve_string_details("gone", "default", CTX)
    refused = provider.resolve_string_details("tagged", "default", CTX)
    assert (missing.value, missing.error_code) == ("default", ErrorCode.FLAG_NOT_FOUND)
    assert (refused.value, refused.error_code) == ("default", ErrorCode.GENERAL)


def test_outcomes_name_an_experiment_declared_only_by_its_flag_tag_once_assigned(
    make_provider: ProviderFactory, sink: InMemorySink
) -> None:
    """The policy does not know a tag-declared experiment: the resolver tells the tracker of
    it on assignment, so an outcome naming it is attributed to its unit."""
    tagged = fl.flag("tagged", ARMS, serve=1, tags=["unit:conversation"])
    provider = make_provider([tagged], UnitPolicy())
    rating = TrackingEventDetails(value=4.0, attributes={"experimentKey": "tagged"})

    provider.track("rating", CTX, rating)  # not assigned yet: an outcome of the user
    provider.resolve_string_details("tagged", "default", CTX)
    provider.track("rating", CTX, rating)

    outcomes = sink.of_kind("experiment_outcome")
    assert [(o.get("experimentKey"), o["assignmentUnit"], o["unitId"]) for o in outcomes] == [
        (None, "user", "u-1"),
        ("tagged", "conversation", "c-1"),
    ]
    assert outcomes[1]["variation"] == "detailed"


class SyncedWhenChecked(InMemoryDataStorage):
    """The stream's first sync landing at one exact moment: after an evaluation found no
    flag, before it asks whether the client is initialized (the data goes in first)."""

    _pending: tuple[int, Any] | None = None

    def sync_at_next_check(self, flags: list[dict[str, Any]]) -> None:
        self._pending = stored(flags)

    @property
    def initialized(self) -> bool:
        if self._pending is not None:
            version, data = self._pending
            self._pending = None
            self.init(data, version)
        return bool(super().initialized)


def test_a_flag_whose_first_sync_lands_mid_evaluation_is_served_not_reported_missing(
    sink: InMemorySink,
) -> None:
    storage = SyncedWhenChecked()
    provider = FeatBitProvider(
        offline_client(storage), policy=POLICY, sinks=[sink], owns_client=True
    )
    storage.sync_at_next_check([fl.flag("plain", ["on", "off"], serve=0)])
    try:
        details = provider.resolve_string_details("plain", "default", CTX)
    finally:
        provider.shutdown()
    assert (details.value, details.error_code) == ("on", None)
    assert sink.guardrails() == []
