"""Posting insight batches is bounded at stop: a post blocked on an endpoint that accepts and
never answers (plain HTTP waiting for a response, HTTPS waiting for the TLS handshake) ends
when the poster is cut, a post after the cut never connects, and a retry pause ends at the cut.
Against tests/support/hanging_server.py and the FeatBit test server, through fbclient's own
HTTP settings."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from fbclient.config import Config

from featbit_experiments.insight_posts import InsightPoster
from tests.support.featbit_server import FeatBitTestServer, make_env_secret
from tests.support.hanging_server import HangingServer

#: Long enough that a post or a pause that is not cut outlives the test's patience.
NEVER = 60.0


class Posting:
    """One post on its own thread, as an insight worker makes it."""

    def __init__(self, poster: InsightPoster) -> None:
        self.status: int | str | None = "not answered"
        self._thread = threading.Thread(target=self._post, args=(poster,), daemon=True)
        self._thread.start()

    def _post(self, poster: InsightPoster) -> None:
        self.status = poster.post("[]")

    def ended(self, timeout: float = 10.0) -> bool:
        self._thread.join(timeout)  # a hang, not a duration, is what this catches
        return not self._thread.is_alive()


@pytest.fixture
def hanging() -> Iterator[HangingServer]:
    with HangingServer() as server:
        yield server


def config_for(event_url: str, **options: Any) -> Config:
    from fbclient.config import HTTPConfig

    return Config(
        make_env_secret(),
        event_url,
        "ws://127.0.0.1:9",
        http=HTTPConfig(connect_timeout=NEVER, read_timeout=NEVER),
        **options,
    )


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_a_post_to_an_endpoint_that_never_answers_ends_when_cut(
    hanging: HangingServer, scheme: str
) -> None:
    poster = InsightPoster(config_for(f"{scheme}://127.0.0.1:{hanging.port}"), 1)
    posting = Posting(poster)
    assert FeatBitTestServer.wait_for(lambda: hanging.accepted == 1)
    assert not posting.ended(timeout=0.2)  # it really hangs
    assert poster.cut() == 1
    assert posting.ended()
    assert posting.status is None  # no answer: the caller counts the batch as undelivered


def test_a_post_after_the_cut_returns_at_once_without_connecting(hanging: HangingServer) -> None:
    poster = InsightPoster(config_for(f"http://127.0.0.1:{hanging.port}"), 1)
    poster.cut()
    assert poster.post("[]") is None
    assert hanging.accepted == 0


def test_a_retry_pause_ends_at_the_cut() -> None:
    with FeatBitTestServer() as server:
        server.insights_status = 500
        config = server.sdk_config(events_max_retries=3, events_retry_interval=NEVER)
        poster = InsightPoster(config, 1)
        posting = Posting(poster)
        assert server.wait_for(lambda: len(server.insight_requests) == 1)
        poster.cut()
        assert posting.ended()
        assert posting.status == 500 and len(server.insight_requests) == 1
