"""Privacy covers logs: with hashing or omission on, no raw unit ID reaches any log record the
provider or fbclient emits. Every record of every logger is captured at DEBUG on the root
handler, through an offline provider and an online one (streaming and insights against the
FeatBit test server), and searched whole: message, arguments, exception text and extra fields.
"""

from __future__ import annotations

import gc
import logging
import traceback
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from openfeature.evaluation_context import EvaluationContext
from openfeature.track import TrackingEventDetails

from featbit_experiments import (
    Experiment,
    FeatBitProvider,
    InMemorySink,
    Metric,
    Privacy,
    UnitPolicy,
)
from tests.support import flags as fl
from tests.support.featbit_server import FeatBitTestServer

KEY = "0123456789abcdef-log-privacy-key"
EXPERIMENT, ORDINARY = "reply-style", "banner"
CONVERSATION, USER, ACCOUNT = "conv-secret-4711", "user-secret-0815", "acct-secret-42"
RAW_IDS = (CONVERSATION, USER, ACCOUNT)
POLICY = UnitPolicy(
    [Experiment(EXPERIMENT, "conversation")], [Metric("resolved", "conversation", (EXPERIMENT,))]
)
PRIVATE = [
    pytest.param(Privacy.hashed(KEY), id="hashed"),
    pytest.param(Privacy.omitted(), id="omitted"),
]

_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None)))


def flags() -> list[dict[str, Any]]:
    return [
        fl.flag(EXPERIMENT, ["concise", "detailed"]),
        fl.flag(ORDINARY, ["on", "off"], dispatch_key="keyId"),
    ]


def workload(provider: FeatBitProvider) -> None:
    """Experiment and ordinary evaluations, an outcome, refused contexts and end of unit."""
    context = EvaluationContext(
        USER, {"conversationId": CONVERSATION, "userId": USER, "accountId": ACCOUNT}
    )
    for _ in range(2):
        provider.resolve_string_details(EXPERIMENT, "concise", context)
    provider.resolve_string_details(ORDINARY, "off", context)
    provider.track("resolved", context, TrackingEventDetails(value=1.0))
    conflicting = EvaluationContext(attributes={"conversationId": CONVERSATION, "thread_id": "x-1"})
    provider.resolve_string_details(EXPERIMENT, "concise", conflicting)
    provider.end_unit("conversation", CONVERSATION)
    # The provider evaluates through fbclient's evaluator, which logs no key; an application
    # calling the same client directly gets fbclient's own evaluation line, keyed by the unit.
    provider.client.variation_detail(EXPERIMENT, {"key": CONVERSATION, "name": USER}, None)


def texts_of(record: logging.LogRecord) -> list[str]:
    texts = [record.getMessage(), repr(record.msg), repr(record.args), record.exc_text or ""]
    if record.exc_info and record.exc_info[1] is not None:
        texts.append("".join(traceback.format_exception(record.exc_info[1])))
    texts += [repr(value) for name, value in vars(record).items() if name not in _STANDARD]
    return texts


def leaks(records: list[logging.LogRecord]) -> list[str]:
    return [
        f"{record.name}: {record.getMessage()[:160]}"
        for record in records
        if any(raw in text for text in texts_of(record) for raw in RAW_IDS)
    ]


@pytest.fixture
def captured(caplog: pytest.LogCaptureFixture) -> Callable[[], list[logging.LogRecord]]:
    gc.collect()  # providers of earlier tests no longer hold the SDK's log filter
    caplog.set_level(logging.DEBUG)
    return lambda: list(caplog.records)


@pytest.mark.parametrize("privacy", PRIVATE)
def test_no_raw_unit_id_reaches_a_log_record_offline(
    privacy: Privacy, make_provider: Any, captured: Callable[[], list[logging.LogRecord]]
) -> None:
    workload(make_provider(flags(), POLICY, privacy=privacy, sinks=None))
    records = captured()
    assert any(r.name.startswith("fbclient") for r in records)  # fbclient did log
    assert leaks(records) == []


@pytest.mark.parametrize("privacy", PRIVATE)
def test_no_raw_unit_id_reaches_a_log_record_online(
    privacy: Privacy, captured: Callable[[], list[logging.LogRecord]]
) -> None:
    with FeatBitTestServer() as server:
        server.set_flags(flags())
        provider = FeatBitProvider.connect(
            server.env_secret,
            server.streaming_url,
            server.event_url,
            policy=POLICY,
            privacy=privacy,
            sinks=None,  # the default: the featbit_experiments logger
        )
        provider.initialize(EvaluationContext())
        workload(provider)
        provider.shutdown()
    assert leaks(captured()) == []


def test_the_evaluation_line_keeps_the_pseudonym_so_logs_still_join(
    make_provider: Any, captured: Callable[[], list[logging.LogRecord]]
) -> None:
    privacy = Privacy.hashed(KEY)
    workload(make_provider(flags(), POLICY, privacy=privacy, sinks=[InMemorySink()]))
    messages = [r.getMessage() for r in captured() if r.name.startswith("fbclient")]
    pseudonym = privacy.protect(CONVERSATION)
    assert any(f"User {pseudonym}, Feature Flag {EXPERIMENT}" in m for m in messages)


def test_with_raw_ids_the_sdk_logs_them_as_it_always_did(
    make_provider: Any, captured: Callable[[], list[logging.LogRecord]]
) -> None:
    """The search above can fail: without privacy, fbclient's evaluation line names the unit."""
    workload(make_provider(flags(), POLICY, sinks=[InMemorySink()]))
    assert any(CONVERSATION in leak for leak in leaks(captured()))


def test_flag_data_the_sdk_logs_whole_is_withheld(
    make_provider: Any, captured: Callable[[], list[logging.LogRecord]]
) -> None:
    """fbclient logs a data-sync message it cannot apply whole, targeted user keys included."""
    provider = make_provider(flags(), POLICY, privacy=Privacy.omitted(), sinks=[InMemorySink()])
    message = {"featureFlags": [{"targetUsers": [{"keyIds": [USER]}]}]}
    # A line of its own: the SDK loggers' repeat filter drops an error already logged in this
    # process within a minute (an earlier test, or an earlier pytest session, as mutmut runs).
    logging.getLogger("fbclient.utils").error(
        f"FB Python SDK: invalid data-sync message {uuid.uuid4().hex}; skipping message: %r",
        message,
    )
    [record] = [r for r in captured() if "data-sync" in r.getMessage()]
    assert leaks([record]) == [] and "withheld" in record.getMessage()
    assert provider.privacy.mode == "omit"
