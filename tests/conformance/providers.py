"""The providers the suites ask for ("a stable provider", "a not ready provider", ...), each one
our ``FeatBitProvider`` over a real ``fbclient`` in the state the scenario names.

No doubles: every status comes from something that really happens to a FeatBit client.

* stable: an offline client fed the conformance flags from a bootstrap file, registered with
  ``set_provider_and_wait``.
* not ready: an online client pointed at a loopback port that refuses connections, registered
  with the non-blocking ``set_provider``; ``initialize`` is still waiting for the first sync.
* error: the same client with a very short ``ready_timeout``: ``initialize`` gives up, raises
  ``ProviderNotReadyError`` and the SDK marks the provider ERROR.
* fatal: a client that has been stopped (FeatBit's ``StateType.OFF``): ``initialize`` raises
  ``ProviderFatalError``. An invalid env secret would be the natural trigger, but fb-python-sdk
  1.2.1 with websocket-client 1.9 reports the server's 4003 close as a transient error and
  retries forever, so it never reaches OFF.
* stale: an online client that synced from :class:`FeatBitTestServer` and then lost its stream;
  FeatBit reports INTERRUPTED and the provider emits PROVIDER_STALE.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fbclient.config import WebSocketConfig
from openfeature import api
from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import ProviderFatalError, ProviderNotReadyError
from openfeature.flag_evaluation import FlagResolutionDetails
from openfeature.provider import ProviderStatus

from featbit_experiments import FeatBitProvider, InMemorySink
from tests.conformance.flags import conformance_flags
from tests.support import flags as fl
from tests.support.featbit_server import FeatBitTestServer

#: Long enough that a "not ready" provider is still initializing when the scenario ends.
NOT_READY_WAIT = 60.0
#: Short enough that an "error" provider gives up at once.
ERROR_WAIT = 0.05
#: Upper bound while waiting for FeatBit to report a lost stream (normally milliseconds).
STALE_WAIT = 10.0

_FAST_RECONNECT: dict[str, Any] = {
    "streaming_first_retry_delay": 0.1,
    "events_flush_interval": 0.2,
    # Bounds FBClient.stop() after a reconnect (see FeatBitTestServer.sdk_config).
    "websocket": WebSocketConfig(timeout=1.0),
}


class RecordingProvider(FeatBitProvider):
    """``FeatBitProvider`` that keeps the context of its last boolean evaluation.

    ``contextMerging.feature`` checks the context a provider receives; this reads it at the
    provider boundary, then resolves through FeatBit as usual.
    """

    last_context: EvaluationContext | None = None

    def resolve_boolean_details(
        self,
        flag_key: str,
        default_value: bool,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[bool]:
        self.last_context = evaluation_context
        return super().resolve_boolean_details(flag_key, default_value, evaluation_context)


class Providers:
    """Builds and registers providers for one scenario; :meth:`close` releases what it made.

    Args:
        workdir: Where the bootstrap file is written.
        sink: Receives the providers' guardrail events (kept off the log).
    """

    def __init__(self, workdir: Path, sink: InMemorySink) -> None:
        self._bootstrap = workdir / "conformance-flags.json"
        self._bootstrap.write_text(fl.bootstrap_json(conformance_flags()), encoding="utf-8")
        self._sink = sink
        self._cleanup = contextlib.ExitStack()
        self._builders: dict[str, Callable[[str], FeatBitProvider]] = {
            "stable": self._stable,
            "not ready": self._not_ready,
            "error": self._error,
            "fatal": self._fatal,
            "stale": self._stale,
        }

    def register(self, status: str, domain: str) -> FeatBitProvider:
        """Register a provider in ``status`` for ``domain`` and return it."""
        try:
            build = self._builders[status]
        except KeyError:
            raise ValueError(f"no {status!r} provider; known: {sorted(self._builders)}") from None
        return build(domain)

    def register_recording(self, domain: str) -> RecordingProvider:
        provider = RecordingProvider.offline(
            self._bootstrap, sinks=[self._sink], disabled_serves_default=True
        )
        assert isinstance(provider, RecordingProvider)
        api.set_provider_and_wait(provider, domain)
        return provider

    def close(self) -> None:
        self._cleanup.close()

    # -- one builder per status ----------------------------------------------------------

    def _stable(self, domain: str) -> FeatBitProvider:
        provider = FeatBitProvider.offline(
            self._bootstrap, sinks=[self._sink], disabled_serves_default=True
        )
        api.set_provider_and_wait(provider, domain)
        return provider

    def _unreachable(self, ready_timeout: float) -> FeatBitProvider:
        server = FeatBitTestServer()  # never started: its reserved ports refuse connections
        self._cleanup.callback(server.close)
        return FeatBitProvider.connect(
            server.env_secret,
            server.streaming_url,
            server.event_url,
            sinks=[self._sink],
            ready_timeout=ready_timeout,
            **_FAST_RECONNECT,
        )

    def _not_ready(self, domain: str) -> FeatBitProvider:
        provider = self._unreachable(NOT_READY_WAIT)
        api.set_provider(provider, domain)
        return provider

    def _error(self, domain: str) -> FeatBitProvider:
        provider = self._unreachable(ERROR_WAIT)
        with contextlib.suppress(ProviderNotReadyError):
            api.set_provider_and_wait(provider, domain)
        return provider

    def _fatal(self, domain: str) -> FeatBitProvider:
        provider = self._unreachable(NOT_READY_WAIT)
        provider.client.stop()
        with contextlib.suppress(ProviderFatalError):
            api.set_provider_and_wait(provider, domain)
        return provider

    def _stale(self, domain: str) -> FeatBitProvider:
        server = FeatBitTestServer()
        server.set_flags(conformance_flags())
        server.start()
        self._cleanup.callback(server.close)
        provider = FeatBitProvider.connect(
            server.env_secret,
            server.streaming_url,
            server.event_url,
            sinks=[self._sink],
            ready_timeout=STALE_WAIT,
            **_FAST_RECONNECT,
        )
        api.set_provider_and_wait(provider, domain)
        server.pause_streaming()
        client = api.get_client(domain)
        deadline = time.monotonic() + STALE_WAIT
        while client.get_provider_status() != ProviderStatus.STALE:
            if time.monotonic() > deadline:
                raise AssertionError("FeatBit never reported the lost stream")
            time.sleep(0.01)
        return provider
