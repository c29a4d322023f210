"""Connection problems say in one line what failed and where: settings that cannot work are
refused by ``connect()``; network failures end ``initialize`` within ``ready_timeout`` with a
sentence naming the URL and the cause; the SDK's repeated log lines are collapsed. Everything
runs on loopback (a DNS failure is checked on the SDK's error text, with no lookup)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator

import pytest
from openfeature import api
from openfeature.exception import ProviderFatalError, ProviderNotReadyError

from featbit_experiments import ConfigurationError, FeatBitProvider
from featbit_experiments.connection_check import describe_sync_failure
from featbit_experiments.sdk_logs import RepeatedRecordFilter
from tests.support.featbit_server import FeatBitTestServer, make_env_secret
from tests.support.redis_server import free_port

SECRET = make_env_secret()


@pytest.fixture
def server() -> Iterator[FeatBitTestServer]:
    with FeatBitTestServer() as running:
        yield running


def start(provider: FeatBitProvider) -> None:
    try:
        api.set_provider_and_wait(provider, domain=f"conn-{uuid.uuid4().hex[:8]}")
    finally:
        provider.shutdown()


# -- refused at connect(): settings that cannot work -------------------------------------------


def test_swapped_urls_are_refused_naming_the_swap() -> None:
    with pytest.raises(ConfigurationError, match="swapped"):
        FeatBitProvider.connect(SECRET, "http://127.0.0.1:5100", "ws://127.0.0.1:5100")


def test_an_event_url_with_a_websocket_scheme_is_refused_naming_it() -> None:
    with pytest.raises(ConfigurationError, match=r"event_url 'ws://127\.0\.0\.1:5100'"):
        FeatBitProvider.connect(SECRET, "ws://127.0.0.1:5100", "ws://127.0.0.1:5100")


def test_a_url_without_a_scheme_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="is not a URL"):
        FeatBitProvider.connect(SECRET, "127.0.0.1:5100", "http://127.0.0.1:5100")


@pytest.mark.parametrize(
    "secret",
    ["", "my-secret", SECRET + "=", SECRET[:22] + "A" * 21 + "!", SECRET[:22] + "A" * 22],
)
def test_a_secret_not_in_featbits_format_is_refused(secret: str) -> None:
    with pytest.raises(ConfigurationError, match="env_secret"):
        FeatBitProvider.connect(secret, "ws://127.0.0.1:5100", "http://127.0.0.1:5100")


def test_the_refusal_is_one_line() -> None:
    with pytest.raises(ConfigurationError) as refused:
        FeatBitProvider.connect("my-secret", "ws://127.0.0.1:5100", "http://127.0.0.1:5100")
    assert "\n" not in str(refused.value)


# -- at initialize: what the network did, within ready_timeout ---------------------------------


def test_a_refused_port_names_the_url_and_the_cause() -> None:
    port = free_port()
    provider = FeatBitProvider.connect(
        SECRET, f"ws://127.0.0.1:{port}", f"http://127.0.0.1:{port}", ready_timeout=1.5, sinks=[]
    )
    with pytest.raises(ProviderNotReadyError) as not_ready:
        start(provider)
    message = str(not_ready.value)
    assert f"ws://127.0.0.1:{port}/streaming" in message and "connection refused" in message
    assert "\n" not in message


def test_wss_to_a_plain_server_is_a_tls_failure(server: FeatBitTestServer) -> None:
    provider = FeatBitProvider.connect(
        server.env_secret,
        server.streaming_url.replace("ws://", "wss://"),
        server.event_url,
        ready_timeout=1.5,
        sinks=[],
    )
    with pytest.raises(
        ProviderNotReadyError, match=r"wss://127\.0\.0\.1:\d+/streaming: TLS failed"
    ):
        start(provider)


def test_a_secret_featbit_refuses_is_fatal_and_says_so(server: FeatBitTestServer) -> None:
    provider = FeatBitProvider.connect(
        make_env_secret(), server.streaming_url, server.event_url, ready_timeout=3, sinks=[]
    )
    with pytest.raises(ProviderFatalError, match="refused the environment secret"):
        start(provider)


def test_the_failure_is_logged_once_on_the_library_logger(caplog: pytest.LogCaptureFixture) -> None:
    port = free_port()
    provider = FeatBitProvider.connect(
        SECRET, f"ws://127.0.0.1:{port}", f"http://127.0.0.1:{port}", ready_timeout=1, sinks=[]
    )
    with (
        caplog.at_level(logging.WARNING, logger="featbit_experiments"),
        pytest.raises(ProviderNotReadyError),
    ):
        start(provider)
    ours = [r for r in caplog.records if r.name == "featbit_experiments"]
    assert [r.getMessage().count(f"127.0.0.1:{port}") for r in ours] == [1]


def test_repeated_sdk_failures_reach_the_log_at_most_once(caplog: pytest.LogCaptureFixture) -> None:
    port = free_port()
    provider = FeatBitProvider.connect(
        SECRET,
        f"ws://127.0.0.1:{port}",
        f"http://127.0.0.1:{port}",
        ready_timeout=1.5,
        sinks=[],
        streaming_first_retry_delay=0.05,  # many reconnect attempts within the wait
    )
    with caplog.at_level(logging.INFO), pytest.raises(ProviderNotReadyError):
        start(provider)
    refused = [r for r in caplog.records if "Connection refused" in r.getMessage()]
    assert len([r for r in refused if r.name == "fbclient.utils"]) <= 1
    assert len([r for r in refused if r.name == "websocket"]) <= 1


# -- the classification of the SDK's error text ------------------------------------------------


@pytest.mark.parametrize(
    ("error_type", "text", "cause"),
    [
        (
            "Network error",
            "[Errno -2] Name or service not known",
            "DNS cannot resolve host 'fb.example'",
        ),
        ("Network error", "[Errno -3] Temporary failure in name resolution", "DNS cannot resolve"),
        ("Network error", "[Errno 111] Connection refused", "connection refused"),
        (
            "WebSocket error",
            "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed",
            "TLS failed",
        ),
        ("WebSocket error", "Handshake status 404 Not Found", "WebSocket upgrade was refused"),
        ("Request invalid", "Request invalid", "refused the environment secret"),
        ("Network error", "timed out", "timed out"),
        (None, None, "connected but no data arrived"),
    ],
)
def test_the_sdk_error_is_named(error_type: str | None, text: str | None, cause: str) -> None:
    message = describe_sync_failure("wss://fb.example/streaming", error_type, text, 5)
    assert message.startswith("FeatBit at wss://fb.example/streaming: ")
    assert cause in message and "5s" in message


# -- the filter that collapses repeats ----------------------------------------------------------


def record(message: str, *, exc: bool = False) -> logging.LogRecord:
    exc_info = (ValueError, ValueError("x"), None) if exc else None
    return logging.LogRecord(
        "fbclient.utils", logging.WARNING, __file__, 1, message, None, exc_info
    )


def test_a_message_passes_once_then_again_after_the_interval_with_its_count() -> None:
    now = [0.0]
    collapse = RepeatedRecordFilter(interval=60, clock=lambda: now[0])
    passed = [collapse.filter(record("Streaming WebSocket Failure")) for _ in range(5)]
    now[0] = 61.0
    later = record("Streaming WebSocket Failure", exc=True)
    assert passed == [True, False, False, False, False]
    assert collapse.filter(later)
    assert later.getMessage().endswith("(repeated 4 times in 61s)") and later.exc_info is None


def test_distinct_messages_each_pass() -> None:
    collapse = RepeatedRecordFilter(interval=60, clock=lambda: 0.0)
    assert collapse.filter(record("refused")) and collapse.filter(record("timed out"))


def test_the_sdks_info_lines_are_never_collapsed() -> None:
    """Only repeated warnings and errors are failures worth collapsing; an application that
    turned fbclient's per-evaluation INFO line on gets every one."""
    from featbit_experiments.sdk_logs import RepeatedRecordFilter

    collapse = RepeatedRecordFilter(interval=60.0, clock=lambda: 0.0)

    def record(level: int) -> logging.LogRecord:
        return logging.LogRecord("fbclient.utils", level, __file__, 1, "same line", None, None)

    assert [collapse.filter(record(logging.INFO)) for _ in range(3)] == [True, True, True]
    assert [collapse.filter(record(logging.WARNING)) for _ in range(3)] == [True, False, False]
