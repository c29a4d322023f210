"""A local FeatBit evaluation server for tests, speaking FeatBit's real wire protocol.

Tests point the real ``fbclient.FBClient`` (online mode) at this server so that the SDK's own
network code runs: the WebSocket data sync, reconnect and backoff, and the HTTP insights sender.
It is as strict as FeatBit's evaluation server (``featbit/featbit``,
``modules/evaluation-server``, read at ``366b4a1``), so that what passes here passes there:

* ``ws://127.0.0.1:<port>/streaming?token=<token>&type=server``: the request is validated as
  ``RequestValidator`` does (:func:`~tests.support.featbit_server_protocol.stream_rejection`:
  type, version, token structure, the secret's structure and GUID env ID, a 30 s clock window,
  the secret known and of the request's type); an invalid one is accepted and then closed with
  4003 ``"invalid request, close by server"``, as ``StreamingMiddleware`` does.
* Messages are ``{"messageType", "data"}`` JSON; both keys are required and the type is matched
  case-insensitively. ``data-sync`` with ``timestamp`` N gets ``eventType`` ``"full"`` when N is
  0 and ``"patch"`` otherwise, listing every flag and segment (archived ones included) updated
  after N, compared at full microsecond precision by default (FeatBit 5.0 on PostgreSQL; pass
  ``timestamp_precision=MILLISECOND`` for 5.1+). ``ping`` gets ``{"messageType":"pong",...}``,
  ``echo`` is echoed, anything else is ignored.
* Live changes (:meth:`FeatBitTestServer.push_flag`) are pushed as a single-entity ``patch`` to
  every open connection, like ``FeatureFlagChangeMessageConsumer``.
* HTTP on a second port (the SDK takes separate ``event_url`` and ``streaming_url``):
  ``GET /api/public/sdk/server/latest-all[?timestamp=N]`` and ``POST /api/public/insight/track``,
  authenticated as ``FeatBitAuthHandler`` does: a structurally valid secret is enough (its env
  ID is decoded, nothing is looked up), anything else is 401. Insights are bound as
  System.Text.Json binds them (:mod:`tests.support.featbit_server_insights`: 400/500 for the
  whole request); those sent with another environment's secret are answered 200 and kept
  apart from this environment's (:attr:`FeatBitTestServer.insights`).

Faults: :meth:`~FeatBitTestServer.stop` (connections refused), :meth:`~FeatBitTestServer.
drop_connections` and :meth:`~FeatBitTestServer.pause_streaming` (a stream cut, upgrades
refused), :meth:`~FeatBitTestServer.stall_streaming` (a stream that accepts and then never
answers again), and for insights ``insights_status`` (500, 429...), ``insights_delay`` and
``insights_hanging`` (POSTs never answered).

Both ports are reserved when the object is created (bound, not listening), so ``streaming_url``
and ``event_url`` are known before :meth:`FeatBitTestServer.start` and stay the same across
``stop()``/``start()``. While stopped, connections are refused, which is how a test simulates a
server that is down when the client starts, or one that flaps.

Everything runs on loopback in one daemon thread with its own asyncio event loop; ``stop()``
closes every socket and joins the thread with a timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import socket
import threading
import time
import uuid
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from http import HTTPStatus
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.protocol import State as WsState

from tests.support import featbit_server_records as records
from tests.support import flags as flag_builders
from tests.support.featbit_server_http import (
    HEADER_LIMIT,
    LOOPBACK,
    reserve_port,
    serve_http_connection,
)
from tests.support.featbit_server_insights import bind_insights
from tests.support.featbit_server_protocol import (
    TOKEN_EXPIRY_SECONDS,
    DecodedToken,
    SecretEntry,
    TimestampPrecision,
    decode_token,
    is_newer,
    make_env_secret,
    secret_env_id,
    stream_rejection,
    updated_at_ms,
)
from tests.support.featbit_server_records import (
    FlagEventRecord,
    InsightRequest,
    MetricEventRecord,
    StreamRequest,
)

if TYPE_CHECKING:
    from fbclient.config import Config

__all__ = [
    "INVALID_REQUEST_CLOSE_CODE",
    "DecodedToken",
    "FeatBitTestServer",
    "FlagEventRecord",
    "InsightRequest",
    "MetricEventRecord",
    "StreamRequest",
    "TimestampPrecision",
    "decode_token",
    "make_env_secret",
    "updated_at_ms",
]

STREAMING_PATH = "/streaming"
INSIGHTS_PATH = "/api/public/insight/track"
LATEST_ALL_PATH = "/api/public/sdk/server/latest-all"
INVALID_REQUEST_CLOSE_CODE = 4003
INVALID_REQUEST_CLOSE_REASON = "invalid request, close by server"
PONG_MESSAGE = '{"messageType":"pong","data":{}}'

_SHUTDOWN_TIMEOUT = 5.0
_INT64 = (-(2**63), 2**63 - 1)

_T = TypeVar("_T")


def _data_sync_message(
    event_type: str,
    feature_flags: Sequence[Mapping[str, Any]],
    segments: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    return flag_builders.data_sync(feature_flags, segments, event_type=event_type)


# --------------------------------------------------------------------------------------------
# The server


class FeatBitTestServer:
    """A FeatBit evaluation server on loopback for tests (see the module docstring).

    Typical use::

        with FeatBitTestServer() as server:
            server.set_flags([flags.flag("prompt-version", ["a", "b"])])
            client = FBClient(server.sdk_config(), start_wait=5)
    """

    def __init__(
        self,
        env_secret: str | None = None,
        *,
        env_id: uuid.UUID = flag_builders.ENV_ID,
        token_expiry_seconds: float = TOKEN_EXPIRY_SECONDS,
        timestamp_precision: TimestampPrecision = TimestampPrecision.MICROSECOND,
    ) -> None:
        self._env_secret = env_secret if env_secret is not None else make_env_secret(env_id)
        self._env_id = secret_env_id(self._env_secret) or env_id
        self._secrets = {
            self._env_secret: SecretEntry(self._env_secret, "server", self._env_id)
        }
        self._token_expiry_seconds = token_expiry_seconds
        self.timestamp_precision = timestamp_precision
        """How data syncs compare ``updatedAt`` (see :class:`TimestampPrecision`)."""
        self._lock = threading.RLock()
        self._flags: dict[str, dict[str, Any]] = {}
        self._segments: dict[str, dict[str, Any]] = {}
        self._connections: set[ServerConnection] = set()
        self._stream_requests: list[StreamRequest] = []
        self._data_sync_requests: list[int] = []
        self._insight_requests: list[InsightRequest] = []
        self._pings = 0
        self._paused = False
        self.insights_status: int = 200
        """Status for authorized insight POSTs; anything but 200 means nothing is delivered."""
        self.insights_delay: float = 0.0
        """Seconds to wait before answering an insight POST (the SDK's read timeout is 10 s)."""
        self.insights_hanging: bool = False
        """While True, insight POSTs are read and left unanswered, their connections open (an
        endpoint that hangs); set it back to False to let them be answered."""
        self._hanging_posts = 0
        self._stalled = False

        self._stream_sock: socket.socket | None = reserve_port(0)
        self._http_sock: socket.socket | None = reserve_port(0)
        self._stream_port: int = self._stream_sock.getsockname()[1]
        self._http_port: int = self._http_sock.getsockname()[1]

        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ws_server: Server | None = None
        self._http_server: asyncio.Server | None = None
        self._http_tasks: set[asyncio.Task[Any]] = set()
        self._http_writers: set[asyncio.StreamWriter] = set()
        self._closing: set[asyncio.Task[None]] = set()

    # ---------------------------------------------------------------- lifecycle

    def __enter__(self) -> FeatBitTestServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "running" if self.is_running else "stopped"
        return f"<FeatBitTestServer {state} ws={self._stream_port} http={self._http_port}>"

    @property
    def is_running(self) -> bool:
        return self._loop is not None

    def start(self) -> FeatBitTestServer:
        """Start serving on the reserved ports (again, after ``stop()``). Returns ``self``."""
        with self._lock:
            if self._loop is not None:
                return self
            if self._stream_sock is None or self._http_sock is None:
                raise RuntimeError("FeatBitTestServer was closed; create a new one")
            loop = asyncio.new_event_loop()
            thread = threading.Thread(
                target=self._run_loop, args=(loop,), name="featbit-test-server", daemon=True
            )
            self._loop, self._thread = loop, thread
        thread.start()
        try:
            asyncio.run_coroutine_threadsafe(self._open(), loop).result(_SHUTDOWN_TIMEOUT)
        except BaseException:
            self.stop(code=None)
            raise
        return self

    def stop(self, code: int | None = 1001, timeout: float = _SHUTDOWN_TIMEOUT) -> None:
        """Stop serving: close WebSockets with ``code`` (``None``: drop TCP without a close
        frame), close HTTP connections, join the thread. Ports stay reserved for ``start()``."""
        with self._lock:
            loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        self._check_not_loop_thread()
        try:
            if loop.is_running():
                future = asyncio.run_coroutine_threadsafe(self._shutdown(code), loop)
                with contextlib.suppress(Exception):
                    future.result(timeout + 1.0)
        finally:
            with contextlib.suppress(RuntimeError):  # the loop may already be closed
                loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout)
            with self._lock:
                self._loop = self._thread = None
                self._ws_server = self._http_server = None
                self._connections.clear()
                self._stalled = False
                self._hanging_posts = 0
                # The servers closed the listening sockets; take the same ports again.
                self._stream_sock = reserve_port(self._stream_port)
                self._http_sock = reserve_port(self._http_port)

    def close(self) -> None:
        """``stop()`` and release the reserved ports; the object cannot be restarted."""
        self.stop()
        with self._lock:
            for sock in (self._stream_sock, self._http_sock):
                if sock is not None:
                    sock.close()
            self._stream_sock = self._http_sock = None

    # ---------------------------------------------------------------- addresses

    @property
    def env_secret(self) -> str:
        return self._env_secret

    @property
    def env_id(self) -> uuid.UUID:
        """The environment this server serves (encoded in :attr:`env_secret`)."""
        return self._env_id

    @property
    def streaming_port(self) -> int:
        return self._stream_port

    @property
    def event_port(self) -> int:
        return self._http_port

    @property
    def streaming_url(self) -> str:
        """``Config.streaming_url``: the SDK appends ``/streaming``."""
        return f"ws://{LOOPBACK}:{self._stream_port}"

    @property
    def event_url(self) -> str:
        """``Config.event_url``: the SDK appends ``/api/public/insight/track``."""
        return f"http://{LOOPBACK}:{self._http_port}"

    def sdk_config(self, **overrides: Any) -> Config:
        """An online ``fbclient`` ``Config`` for this server, tuned for fast tests.

        Defaults: ``streaming_first_retry_delay=0.1``, ``events_flush_interval=0.2`` and
        ``websocket=WebSocketConfig(timeout=1.0)``. The last one bounds ``FBClient.stop()``: in
        about half the runs (fb-python-sdk 1.2.1 with websocket-client 1.8 or 1.9) the streaming
        thread stays blocked on the socket that ``stop()`` closed from another thread, and
        ``stop()`` waits out the join timeout of ``timeout + 1`` s (6 s with the default 5 s).
        Pass ``env_secret=...`` to connect with another secret.
        """

        from fbclient.config import Config, WebSocketConfig

        options: dict[str, Any] = {
            "streaming_first_retry_delay": 0.1,
            "events_flush_interval": 0.2,
            "websocket": WebSocketConfig(timeout=1.0),
            **overrides,
        }
        secret = options.pop("env_secret", self._env_secret)
        return Config(secret, self.event_url, self.streaming_url, **options)

    # ---------------------------------------------------------------- dataset

    def set_flags(
        self,
        flags: Iterable[Mapping[str, Any]],
        segments: Iterable[Mapping[str, Any]] = (),
    ) -> None:
        """Replace the whole dataset. Nothing is pushed; clients see it on their next data sync."""
        new_flags = {str(f["key"]): copy.deepcopy(dict(f)) for f in flags}
        new_segments = {str(s["id"]): copy.deepcopy(dict(s)) for s in segments}
        with self._lock:
            self._flags = new_flags
            self._segments = new_segments

    def push_flag(self, flag: Mapping[str, Any]) -> int:
        """Upsert ``flag`` and push a one-flag ``patch`` to every open connection now.

        The SDK applies it only if ``updatedAt`` is newer than what it holds (bump ``version``).
        Returns the number of connections it was sent to.
        """
        stored = copy.deepcopy(dict(flag))
        with self._lock:
            self._flags[str(stored["key"])] = stored
        return self._push(_data_sync_message("patch", [stored]))

    def push_segment(self, segment: Mapping[str, Any]) -> int:
        """Upsert ``segment`` and push a one-segment ``patch`` (``SegmentChangeMessageConsumer``).

        Returns the number of connections it was sent to.
        """
        stored = copy.deepcopy(dict(segment))
        with self._lock:
            self._segments[str(stored["id"])] = stored
        return self._push(_data_sync_message("patch", [], [stored]))

    def archive_flag(self, key: str, version: int) -> int:
        """Archive flag ``key`` at ``version`` (``flags.timestamp``) and push the tombstone."""
        with self._lock:
            current = copy.deepcopy(self._flags[key])
        current["isArchived"] = True
        current["updatedAt"] = flag_builders.timestamp(version)
        return self.push_flag(current)

    def payload(self, timestamp: int = 0) -> dict[str, Any]:
        """The ``data-sync`` envelope the server answers for a client at ``timestamp``."""
        precision = self.timestamp_precision
        with self._lock:
            flags = [
                copy.deepcopy(f)
                for f in self._flags.values()
                if is_newer(f, timestamp, precision)
            ]
            segments = [
                copy.deepcopy(s)
                for s in self._segments.values()
                if is_newer(s, timestamp, precision)
            ]
        return _data_sync_message("full" if timestamp == 0 else "patch", flags, segments)

    # ---------------------------------------------------------------- fault injection

    def drop_connections(self, code: int | None = 1011, reason: str = "") -> int:
        """Close every open WebSocket with ``code`` (``None``: abort TCP, no close frame).

        Any code but 4003 makes the SDK reconnect with backoff; 4003 is terminal for it.
        Returns the number of connections closed.
        """
        loop = self._loop
        if loop is None:
            return 0
        return self._call(loop, self._drop(code, reason))

    def pause_streaming(self, code: int | None = 1011) -> int:
        """Drop open WebSockets and answer new upgrades with HTTP 503 until ``resume_streaming``.

        HTTP endpoints keep working. Returns the number of connections dropped.
        """
        with self._lock:
            self._paused = True
        return self.drop_connections(code)

    def resume_streaming(self) -> None:
        with self._lock:
            self._paused = False

    def stall_streaming(self) -> int:
        """Freeze the stream, as a hung server or a broken proxy does: open WebSockets, and
        those opened from now on (the upgrade still succeeds), are never read or written again,
        so no data-sync, pong or close frame is answered. Lasts until :meth:`stop`. Returns the
        number of open connections stalled."""
        with self._lock:
            self._stalled = True
            connections = list(self._connections)
        loop = self._loop
        if loop is None:
            return 0
        return self._call(loop, self._stall(connections))

    @property
    def hanging_posts(self) -> int:
        """Insight POSTs received and not answered yet because of :attr:`insights_hanging`."""
        with self._lock:
            return self._hanging_posts

    # ---------------------------------------------------------------- observations

    @property
    def connection_count(self) -> int:
        """WebSockets currently open and accepted (not counting 4003-rejected ones)."""
        with self._lock:
            return len(self._connections)

    @property
    def stream_requests(self) -> list[StreamRequest]:
        """Every WebSocket handshake that completed, in order, accepted or rejected."""
        with self._lock:
            return list(self._stream_requests)

    @property
    def accepted_connections(self) -> int:
        with self._lock:
            return sum(1 for r in self._stream_requests if r.accepted)

    @property
    def rejected_connections(self) -> int:
        with self._lock:
            return sum(1 for r in self._stream_requests if not r.accepted)

    @property
    def data_sync_requests(self) -> list[int]:
        """The ``timestamp`` of every ``data-sync`` request received, in order."""
        with self._lock:
            return list(self._data_sync_requests)

    @property
    def pings(self) -> int:
        with self._lock:
            return self._pings

    @property
    def insight_requests(self) -> list[InsightRequest]:
        """Every insight POST received, with its status (401 wrong secret, 400 bad body, ...)."""
        with self._lock:
            return list(self._insight_requests)

    @property
    def insights(self) -> list[Mapping[str, Any]]:
        """All insight items delivered to this environment (POSTs answered 200), in order."""
        with self._lock:
            return [
                item
                for r in self._insight_requests
                if r.status == 200 and r.env_id == self._env_id
                for item in r.items
            ]

    def flag_events(self, flag_key: str | None = None) -> list[FlagEventRecord]:
        """Delivered flag evaluations, optionally only those of ``flag_key``."""
        return records.flag_events(self.insights, flag_key)

    def metric_events(self, event_name: str | None = None) -> list[MetricEventRecord]:
        """Delivered custom metrics (``track_metric``), optionally only ``event_name``."""
        return records.metric_events(self.insights, event_name)

    def clear_records(self) -> None:
        """Forget recorded requests (insights, data syncs, handshakes, pings); keep the data."""
        with self._lock:
            self._stream_requests.clear()
            self._data_sync_requests.clear()
            self._insight_requests.clear()
            self._pings = 0

    @staticmethod
    def wait_for(predicate: Callable[[], object], timeout: float = 5.0) -> bool:
        """Poll ``predicate``: ``True`` once it is truthy, ``False`` after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            if predicate():
                return True
            if time.monotonic() >= deadline:
                return bool(predicate())
            time.sleep(0.01)

    # ---------------------------------------------------------------- loop plumbing

    def _check_not_loop_thread(self) -> None:
        if threading.current_thread() is self._thread:
            raise RuntimeError("FeatBitTestServer control methods must not run on its loop")

    def _call(self, loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, _T]) -> _T:
        self._check_not_loop_thread()
        return asyncio.run_coroutine_threadsafe(coro, loop).result(_SHUTDOWN_TIMEOUT)

    def _push(self, message: Mapping[str, Any]) -> int:
        loop = self._loop
        if loop is None:
            return 0
        return self._call(loop, self._broadcast(json.dumps(message)))

    @staticmethod
    def _run_loop(loop: asyncio.AbstractEventLoop) -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_forever()
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            if pending:
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            loop.close()

    async def _open(self) -> None:
        with self._lock:
            stream_sock, http_sock = self._stream_sock, self._http_sock
            self._stream_sock = self._http_sock = None
        assert stream_sock is not None and http_sock is not None
        self._ws_server = await serve(
            self._serve_stream,
            sock=stream_sock,
            process_request=self._process_request,
            ping_interval=None,  # FeatBit SDKs keep alive with application-level pings
            close_timeout=1.0,
            open_timeout=5.0,
        )
        self._http_server = await asyncio.start_server(
            self._serve_http, sock=http_sock, limit=HEADER_LIMIT
        )

    async def _shutdown(self, code: int | None) -> None:
        await self._drop(code, "server shutting down" if code is not None else "")
        if self._ws_server is not None:
            self._ws_server.close(close_connections=True)
            # Give clients a moment to finish the closing handshake, then cut them off.
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._ws_server.wait_closed()), 0.5)
            for connection in list(self._ws_server.all_connections):
                connection.transport.abort()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._ws_server.wait_closed(), _SHUTDOWN_TIMEOUT)
        closing = list(self._closing)
        if closing:
            await asyncio.gather(*closing, return_exceptions=True)
        if self._http_server is not None:
            self._http_server.close()
            for writer in list(self._http_writers):
                writer.transport.abort()
            tasks = list(self._http_tasks)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._http_server.wait_closed(), _SHUTDOWN_TIMEOUT)

    async def _drop(self, code: int | None, reason: str) -> int:
        """Send close frames (or abort) and return once they are on the wire.

        Like ASP.NET's ``CloseOutputAsync`` this does not wait for the client to finish the
        closing handshake: websocket-client 1.9 sometimes never closes its TCP socket after a
        server close, so waiting would stall for ``close_timeout``. Closing finishes in the
        background and is aborted at ``close_timeout``.
        """
        with self._lock:
            connections = list(self._connections)
            self._connections.clear()
        for connection in connections:
            if code is None:
                connection.transport.abort()
            else:
                task = asyncio.get_running_loop().create_task(connection.close(code, reason))
                self._closing.add(task)
                task.add_done_callback(self._closing.discard)
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline and any(
            connection.state is WsState.OPEN for connection in connections
        ):
            await asyncio.sleep(0.005)
        return len(connections)

    async def _stall(self, connections: Iterable[ServerConnection]) -> int:
        stalled = 0
        for connection in connections:
            connection.transport.pause_reading()  # websockets resumes only what it paused
            stalled += 1
        return stalled

    async def _broadcast(self, message: str) -> int:
        with self._lock:
            if self._stalled:
                return 0
            connections = list(self._connections)
        sent = 0
        for connection in connections:
            try:
                await connection.send(message)
                sent += 1
            except ConnectionClosed:
                pass
        return sent

    # ---------------------------------------------------------------- WebSocket

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        path = urlsplit(request.path).path
        if path != STREAMING_PATH and not path.startswith(STREAMING_PATH + "/"):
            return connection.respond(HTTPStatus.NOT_FOUND, "Not Found\n")
        with self._lock:
            paused = self._paused
        if paused:
            return connection.respond(HTTPStatus.SERVICE_UNAVAILABLE, "streaming paused\n")
        return None

    def _validate(self, params: Mapping[str, str]) -> str:
        """Why the request is invalid (``RequestValidator.cs``), or ``""`` if valid."""
        return stream_rejection(
            params, self._secrets, token_expiry_seconds=self._token_expiry_seconds
        )

    async def _serve_stream(self, connection: ServerConnection) -> None:
        request = connection.request
        if request is None:
            return
        parsed = parse_qs(urlsplit(request.path).query, keep_blank_values=True)
        params = {key: values[-1] for key, values in parsed.items()}
        reason = self._validate(params)
        record = StreamRequest(
            path=request.path,
            params=params,
            headers={k.lower(): v for k, v in request.headers.raw_items()},
            accepted=not reason,
            reason=reason,
        )
        with self._lock:
            self._stream_requests.append(record)
            if not reason:
                self._connections.add(connection)
            stalled = self._stalled
        if stalled:
            connection.transport.pause_reading()
        if reason:
            await connection.close(INVALID_REQUEST_CLOSE_CODE, INVALID_REQUEST_CLOSE_REASON)
            return
        try:
            async for raw in connection:
                await self._on_stream_message(connection, raw)
        except ConnectionClosed:
            pass
        finally:
            with self._lock:
                self._connections.discard(connection)

    async def _on_stream_message(self, connection: ServerConnection, raw: str | bytes) -> None:
        with self._lock:
            if self._stalled:
                return
        try:
            message = json.loads(raw)
        except ValueError:
            return
        if not isinstance(message, dict) or "messageType" not in message or "data" not in message:
            return
        message_type = message["messageType"]
        if not isinstance(message_type, str):
            return
        data = message["data"]
        kind = message_type.lower()
        if kind == "ping":
            with self._lock:
                self._pings += 1
            await connection.send(PONG_MESSAGE)
        elif kind == "echo":
            await connection.send(json.dumps({"messageType": "echo", "data": data}))
        elif kind == "data-sync":
            timestamp = _data_sync_timestamp(data)
            if timestamp is None:
                return  # DataSyncService throws; MessageDispatcher logs it, nothing is sent
            with self._lock:
                self._data_sync_requests.append(timestamp)
            await connection.send(json.dumps(self.payload(timestamp)))

    # ---------------------------------------------------------------- HTTP

    async def _serve_http(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._http_tasks.add(task)
        self._http_writers.add(writer)
        try:
            await serve_http_connection(reader, writer, self._route_http)
        finally:
            self._http_writers.discard(writer)
            if task is not None:
                self._http_tasks.discard(task)

    async def _route_http(
        self, method: str, target: str, headers: Mapping[str, str], body: bytes
    ) -> tuple[int, bytes]:
        url = urlsplit(target)
        # FeatBitAuthHandler: a structurally valid secret authenticates; its env ID is decoded,
        # nothing is looked up. Without one, the fallback policy answers 401.
        env_id = secret_env_id(headers.get("authorization"))
        if url.path == INSIGHTS_PATH:
            if method != "POST":
                return 405, b""
            return await self._track(headers, body, env_id)
        if url.path == LATEST_ALL_PATH:
            if method != "GET":
                return 405, b""
            if env_id is None:
                return 401, b""
            raw = parse_qs(url.query).get("timestamp", ["0"])[-1]
            try:
                timestamp = int(raw)
            except ValueError:
                return 400, b""
            if env_id != self._env_id:
                return 200, b""  # an environment without flags: an empty payload
            payload = self.payload(timestamp)
            data = payload["data"]
            if not data["featureFlags"] and not data["segments"]:
                return 200, b""  # SdkController: an empty payload is an empty 200 body
            return 200, json.dumps(payload).encode("utf-8")
        return 404, b""

    async def _track(
        self, headers: Mapping[str, str], body: bytes, env_id: uuid.UUID | None
    ) -> tuple[int, bytes]:
        if self.insights_delay > 0:
            await asyncio.sleep(self.insights_delay)
        if self.insights_hanging:
            with self._lock:
                self._hanging_posts += 1
            try:
                while self.insights_hanging:
                    await asyncio.sleep(0.02)
            finally:
                with self._lock:
                    self._hanging_posts -= 1
        if env_id is None:
            status, items, error = 401, (), "no valid secret"
        else:
            bound = bind_insights(body)
            status, items, error = bound.status, bound.items, bound.error
            if status == 200:
                status = self.insights_status
        record = InsightRequest(
            authorization=headers.get("authorization"),
            status=status,
            items=items,
            headers=dict(headers),
            env_id=env_id,
            error=error,
        )
        with self._lock:
            self._insight_requests.append(record)
        return status, b""


def _data_sync_timestamp(data: Any) -> int | None:
    """``DataSyncService``: a missing timestamp is 0, a number that is not an int64 reads as
    0 (``TryGetInt64``), anything else throws (None here: no answer)."""
    if not isinstance(data, dict):
        return None
    if "timestamp" not in data:
        return 0
    value = data["timestamp"]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if isinstance(value, int) and _INT64[0] <= value <= _INT64[1]:
        return value
    return 0
