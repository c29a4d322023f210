"""The async path with a remote ledger store: what the provider answers on the event loop
(an ordinary flag, a refusal, an unexpected failure) is the same result the sync path gives,
and the telemetry listener sees it with the caller's flag key and context."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fbclient.data_storage import InMemoryDataStorage
from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import FlagResolutionDetails, Reason

from featbit_experiments import Experiment, FeatBitProvider, InMemorySink, UnitPolicy
from featbit_experiments import telemetry_names as names
from featbit_experiments.continuity import RedisStore
from tests.support import flags as fl
from tests.support.stored_flags import fill, offline_client
from tests.test_telemetry import Spans

FLAG = "reply-style"
POLICY = UnitPolicy([Experiment(FLAG, "conversation")])
CTX = EvaluationContext("u-1", {"conversationId": "c-1", "userId": "u-1"})
MISSING_CONVERSATION = (
    "no conversation ID in the evaluation context (looked for conversationId, "
    "conversation_id, thread_id, threadId, session_id, sessionId)"
)

ProviderFactory = Callable[..., FeatBitProvider]


@pytest.fixture
def store(main_redis: str) -> Iterator[RedisStore]:
    """A remote store: every experiment turn the store must answer would wait on Redis."""
    store = RedisStore(main_redis, key_prefix=f"test-{uuid.uuid4().hex[:8]}:", local_cache=False)
    yield store
    store.close()


@pytest.fixture
def spans() -> Iterator[Spans]:
    spans = Spans()
    yield spans
    spans.exporter.clear()


def evaluation_events(spans: Spans) -> list[dict[str, Any]]:
    return spans.events(names.FEATURE_FLAG_EVALUATION_EVENT)


async def test_an_ordinary_flag_is_answered_and_recorded_as_on_the_sync_path(
    make_provider: ProviderFactory, store: RedisStore, spans: Spans
) -> None:
    provider = make_provider([fl.flag("banner", ["on", "off"], serve=1)], POLICY, store=store)
    with spans.tracer.start_as_current_span("turn"):
        details = await provider.resolve_string_details_async("banner", "default", CTX)
    expected = provider.resolve_string_details("banner", "default", CTX)
    assert details == expected
    assert (details.value, details.variant, details.reason) == ("off", "off", Reason.STATIC)
    [event] = evaluation_events(spans)
    assert event[names.FEATURE_FLAG_KEY] == "banner"
    assert event[names.FEATURE_FLAG_RESULT_VARIANT] == "off"
    assert event[names.FEATURE_FLAG_CONTEXT_ID] == "u-1"


async def test_no_context_is_an_empty_one_the_missing_unit_refused_on_the_loop(
    make_provider: ProviderFactory, store: RedisStore, sink: InMemorySink, spans: Spans
) -> None:
    provider = make_provider([fl.flag(FLAG, ["a", "b"])], POLICY, store=store)
    before = store.round_trips
    with spans.tracer.start_as_current_span("turn"):
        details = await provider.resolve_string_details_async(FLAG, "default", None)
    assert details == FlagResolutionDetails(
        value="default",
        reason=Reason.ERROR,
        error_code=ErrorCode.TARGETING_KEY_MISSING,
        error_message=MISSING_CONVERSATION,
        flag_metadata={"experimentKey": FLAG, "assignmentUnit": "conversation"},
    )
    assert store.round_trips == before
    assert [g["flagKey"] for g in sink.guardrails("missing_unit_id")] == [FLAG]
    [event] = evaluation_events(spans)
    assert event[names.FEATURE_FLAG_KEY] == FLAG
    assert names.FEATURE_FLAG_CONTEXT_ID not in event


# -- an unexpected failure below the resolver ----------------------------------------------


@pytest.fixture
def broken_flag_provider(store: RedisStore, sink: InMemorySink) -> Iterator[FeatBitProvider]:
    """A client whose storage holds a flag with ``rules`` that is not a list: data FeatBit's
    own validation would refuse, read by the plan (a TypeError nobody anticipated)."""
    broken = fl.flag("broken", ["a", "b"])
    broken["rules"] = 5
    client = offline_client(fill(InMemoryDataStorage(), [broken]))
    provider = FeatBitProvider(client, policy=POLICY, store=store, sinks=[sink], owns_client=True)
    yield provider
    provider.shutdown()


UNEXPECTED = FlagResolutionDetails(
    value="default",
    reason=Reason.ERROR,
    error_code=ErrorCode.GENERAL,
    error_message="unexpected provider error: 'int' object is not iterable",
)


async def test_an_unexpected_failure_is_the_default_with_its_cause_logged_and_recorded(
    broken_flag_provider: FeatBitProvider, spans: Spans, caplog: pytest.LogCaptureFixture
) -> None:
    with (
        caplog.at_level(logging.ERROR, "featbit_experiments"),
        spans.tracer.start_as_current_span("turn"),
    ):
        details = await broken_flag_provider.resolve_string_details_async("broken", "default", CTX)
    assert details == UNEXPECTED
    [logged] = [r for r in caplog.records if r.name == "featbit_experiments"]
    assert logged.getMessage() == "unexpected error resolving flag 'broken'"
    assert logged.exc_info is not None and logged.exc_info[0] is TypeError
    [event] = evaluation_events(spans)
    assert event[names.FEATURE_FLAG_KEY] == "broken"
    assert event[names.FEATURE_FLAG_ERROR_MESSAGE] == UNEXPECTED.error_message
    assert event[names.FEATURE_FLAG_CONTEXT_ID] == "u-1"


def test_the_sync_path_answers_an_unexpected_failure_alike(
    broken_flag_provider: FeatBitProvider, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, "featbit_experiments"):
        details = broken_flag_provider.resolve_string_details("broken", "default", CTX)
    assert details == UNEXPECTED
    [logged] = [r for r in caplog.records if r.name == "featbit_experiments"]
    assert logged.getMessage() == "unexpected error resolving flag 'broken'"
